"""Make the files the README's examples name, in the working directory (see README, "Commands").

Traces are copies of the bundled real traces; `model.pt` (TorchScript), `model.pt2`
(`torch.export`, dynamic batch) and `mypkg/models.py` (a factory) hold a small CNN and MLP;
`fleet.yaml` is a fleet of two services on those traces.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from themis.data import bundled_trace

TRACES = {"azure_llm.csv": "azure_llm_2023_code", "traffic.csv": "azure_llm_2023_code",
          "d01.csv": "azure_functions_2019", "d02.csv": "azure_functions_2019"}

FLEET = """defaults:
  profile: resnet18.parquet
  slo_ms: 300
services:
  - name: code-assistant
    trace: azure_llm.csv
  - name: functions
    trace: d01.csv
    top: 5
    scale: 2
"""

FACTORY = '''import torch


def build() -> torch.nn.Module:
    """A small MLP over 128 features."""
    return torch.nn.Sequential(torch.nn.Linear(128, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10))
'''


def main() -> None:
    import torch

    for name, bundled in TRACES.items():
        shutil.copy(bundled_trace(bundled), name)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(8, 10)).eval()
    torch.jit.script(net).save("model.pt")
    example = (torch.randn(2, 3, 32, 32),)
    exported = torch.export.export(net, example, dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=1024)},))
    torch.export.save(exported, "model.pt2")
    Path("mypkg").mkdir(exist_ok=True)
    Path("mypkg/__init__.py").write_text("")
    Path("mypkg/models.py").write_text(FACTORY)
    Path("fleet.yaml").write_text(FLEET)
    print("wrote " + ", ".join([*TRACES, "model.pt", "model.pt2", "mypkg/models.py", "fleet.yaml"]))


if __name__ == "__main__":
    main()
