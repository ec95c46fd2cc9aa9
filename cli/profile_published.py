"""`themis profile published MODEL`: a GPU profile from NVIDIA's published measurements, for
planning a GPU fleet on a machine without that GPU (labelled `published` wherever it goes)."""

from __future__ import annotations

from pathlib import Path

import typer

from themis.cli import output


def published(
    model: str = typer.Argument(..., help="resnet50 or bert_base."),
    gpu: str = typer.Option(..., "--gpu", help="As published: V100-16GB (DGX-1), V100-32GB (DGX-2), A100-40GB (DGX A100), A100-80GB (DGX A100), T4-16GB."),
    precision: str = typer.Option("FP32", "--precision", help="As published: FP32, TF32, AMP (mixed precision), FP16, with +XLA where published."),
    framework: str = typer.Option(None, "--framework", help="PyTorch, TensorFlow1 or MXNet, where several published the same GPU and precision.", show_default="the only one"),
    out: Path = typer.Option(..., "--out", help="Profile file to write (.parquet)."),
    as_json: bool = output.JSON_OPTION,
) -> None:
    """Write a profile of MODEL on a GPU from NVIDIA DeepLearningExamples' published tables.

    [b]Example[/b]: themis profile published resnet50 --gpu T4-16GB --precision AMP --framework PyTorch --out t4.parquet
    """
    from themis.profiler.published import write_published_gpu_profile
    from themis.profiler.run import ProfileResult
    from themis.profiler.table import read_profile
    from themis.reports.profile_tables import show_profile

    path = write_published_gpu_profile(out, model, gpu, precision, framework)
    frame = read_profile(path)
    result = ProfileResult(frame, frame.attrs["environment"], path)
    output.render(result, as_json=as_json, out=None, show=lambda console: show_profile(console, frame, result.environment, path))
