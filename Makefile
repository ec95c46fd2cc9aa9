# themis: `make demo` and `make test` work from a fresh clone with only Python 3.11 and pip.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# torch is pinned to the CPU build that pip can install without pulling CUDA wheels.
TORCH  := torch==2.13.0

.PHONY: demo test test-readme bench install browser clean gpu-check

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[profile,test,replay,ray]'
	touch $@

install: $(VENV)/.installed

# Headless Chromium for the HTML report test (Debian's package; needs root, as in CI).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing and not root: the report rendering test will be skipped"; fi; }

demo: install
	$(BIN)/themis demo --out-dir out/demo

test: install browser
	$(BIN)/python -m pytest -q -m "not benchmark and not readme"

test-readme: install
	$(BIN)/python -m pytest -q -m readme tests/cli/test_readme_runs.py

bench: install
	$(BIN)/python benchmarks/run.py

# On a machine with an NVIDIA GPU whose python3 already has torch, pynvml, pandas, pyarrow,
# typer, rich, numpy and scipy (no network, no venv): profiles resnet50 and bert_base on cuda
# into $(OUT) (default out/gpu-check). Runs from this tree; nothing is installed.
gpu-check:
	python3 benchmarks/gpu_check.py

clean:
	rm -rf $(VENV) out .pytest_cache
