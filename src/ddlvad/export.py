"""``ddlvad export --run DIR``: the run's model as ONNX, ``DIR/model.onnx``.

Graph: input ``clips`` (batch, C, T, H, W) float32 in [0, 1] -> output ``recon``
(batch, C, H, W), the reconstructed middle frame; the batch dimension is dynamic. Scoring
(error map, patch max, median filter) stays outside the graph, in ``ddlvad.scoring``.

After writing, the export is checked against torch fp32 on random clips at batch 1 and 3:
the largest absolute difference of reconstructions and of frame scores must stay within
``TOLERANCE``; the figures go to ``DIR/model.onnx.json``. Needs the ``onnx`` extra
(``pip install ddlvad[onnx]``).
"""

from __future__ import annotations

import argparse
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from ddlvad.detector import ONNX_FILE
from ddlvad.io import atomic_write, atomic_write_json
from ddlvad.scoring import error_map, patch_max

TOLERANCE = 1e-4  # max |onnxruntime - torch| on reconstructions (in [0, 1]) and frame scores
OPSET = 17


def require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx extra: pip install 'ddlvad[onnx]'") from e
    return onnx


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            "the onnxruntime backend needs the onnx extra: pip install 'ddlvad[onnx]'"
        ) from e
    return onnxruntime


def _write_onnx(model: torch.nn.Module, X: torch.Tensor, tmp: str, opset: int, meta: dict):
    onnx = require_onnx()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            model,
            (X,),
            tmp,
            input_names=["clips"],
            output_names=["recon"],
            dynamic_axes={"clips": {0: "batch"}, "recon": {0: "batch"}},
            opset_version=opset,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
        )
    m = onnx.load(tmp)
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(m)
    onnx.save(m, tmp)


def compare_onnx(
    model: torch.nn.Module, path: str | Path, cfg, batches: tuple[int, ...] = (1, 3)
) -> dict[str, Any]:
    """Max |onnxruntime - torch fp32| on reconstructions and frame scores of random clips."""
    from ddlvad.detector import OrtForward

    ort = OrtForward(path)
    d, s = cfg.data, cfg.score
    T = model.T
    g = torch.Generator().manual_seed(0)
    d_rec = d_score = 0.0
    for b in batches:
        X = torch.rand(b, d.channels, T, d.height, d.width, generator=g)
        with torch.inference_mode():
            y_torch = model(X)
        y_ort = ort(X)
        x_t = X[:, :, T // 2]
        s_torch = patch_max(error_map(x_t, y_torch), s.patch, s.shifted)
        s_ort = patch_max(error_map(x_t, y_ort), s.patch, s.shifted)
        d_rec = max(d_rec, float((y_torch - y_ort).abs().max()))
        d_score = max(d_score, float((s_torch - s_ort).abs().max()))
    return {
        "max_abs_diff_recon": d_rec,
        "max_abs_diff_score": d_score,
        "tolerance": TOLERANCE,
        "checked_batches": list(batches),
        "match": d_rec <= TOLERANCE and d_score <= TOLERANCE,
    }


def export_onnx(
    run_dir: str | Path, out: str | Path | None = None, *, opset: int = OPSET, check: bool = True
) -> dict[str, Any]:
    """Write the run's model as ONNX (default ``run_dir/model.onnx``); return a report."""
    from ddlvad.evaluate import load_trained

    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / ONNX_FILE
    cfg, model = load_trained(run_dir)
    require_onnx()
    d = cfg.data
    X = torch.rand(2, d.channels, model.T, d.height, d.width, generator=torch.Generator())
    meta = {"ddlvad_fingerprint": cfg.fingerprint(), "ddlvad_run": run_dir.resolve()}
    atomic_write(out, lambda tmp: _write_onnx(model, X, tmp, opset, meta))
    report: dict[str, Any] = {
        "onnx": str(out),
        "opset": opset,
        "input": {"clips": ["batch", d.channels, model.T, d.height, d.width]},
        "output": {"recon": ["batch", d.channels, d.height, d.width]},
        "fingerprint": cfg.fingerprint(),
        "bytes": out.stat().st_size,
    }
    if check:
        report.update(compare_onnx(model, out, cfg))
    atomic_write_json(out.with_name(out.name + ".json"), report)
    return report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", required=True, help="run directory")
    p.add_argument("--out", help=f"ONNX file (default RUN/{ONNX_FILE})")
    p.add_argument("--opset", type=int, default=OPSET, help="ONNX opset version")
    p.add_argument(
        "--no-check", action="store_true", help="skip the onnxruntime vs torch comparison"
    )


def run(args: argparse.Namespace) -> int:
    report = export_onnx(args.run, args.out, opset=args.opset, check=not args.no_check)
    print(json.dumps(report, indent=2))
    if check_failed := (report.get("match") is False):
        print(
            f"ddlvad export: onnxruntime differs from torch by more than {TOLERANCE} "
            f"(recon {report['max_abs_diff_recon']:.2e}, score {report['max_abs_diff_score']:.2e})"
        )
    return 1 if check_failed else 0
