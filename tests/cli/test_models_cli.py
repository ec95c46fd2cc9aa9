"""`themis models`: lists the sample models from the registry, without importing torch."""

from __future__ import annotations

import json
import subprocess
import sys

from themis.cli.app import app


def test_models_table(cli_runner) -> None:
    result = cli_runner.invoke(app, ["models"])
    assert result.exit_code == 0
    for text in ("resnet50", "25,557,032", "bert_base", "small_cnn", "mlp", "3x224x224"):
        assert text in result.stdout


def test_models_json(cli_runner) -> None:
    data = json.loads(cli_runner.invoke(app, ["models", "--json"]).stdout)
    params = {m["name"]: m["params"] for m in data["models"]}
    assert params["resnet50"] == 25_557_032 and params["resnet18"] == 11_689_512 and params["mobilenet_v2"] == 3_504_872
    assert data["schema_version"] >= 1


def test_models_and_profile_help_do_not_import_torch() -> None:
    probe = (
        "import sys\nfrom themis.cli.app import app\n"
        "for argv in (['models'], ['profile', '--help'], ['profile', 'mlp', '--help']):\n"
        "    try:\n        app(argv)\n    except SystemExit:\n        pass\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"
