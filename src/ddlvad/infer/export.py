"""``ddlvad export --run DIR``: the run's model as ONNX (run by ``ddlvad.scoring.backends``).

``DIR/model.onnx``: input ``clips`` (batch, C, T, H, W) float32 in [0, 1] -> output
``recon`` (batch, C, H, W), the reconstructed middle frame, as the torch model. For C3DSU
(T > 1) also the stream engine's two graphs (see ``ddlvad.models.stream``):
``model_encoder.onnx`` ``frames`` (n, C, H, W) -> ``f1..f4`` (n, c_l, h_l, w_l), and
``model_head.onnx`` ``s1..s4`` (batch, c_l, T, h_l, w_l) -> ``recon`` (batch, C, H, W).
Batch dimensions are dynamic. Scoring (error map, patch max, median filter) stays outside
the graphs, in the scoring engine (``ddlvad.scoring.engine``).

After writing, each path is checked against the torch fp32 model at batch 1 and 3: the
largest absolute difference of reconstructions (random clips) and of frame scores (a random
video through the scoring engine, the run's protocol, each backend) must stay within
``TOLERANCE``; the figures go to ``DIR/model.onnx.json``. Needs the ``onnx`` extra.
"""

from __future__ import annotations

import copy
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ddlvad.io import atomic_write, atomic_write_json
from ddlvad.models.blocks import set_fast_path
from ddlvad.models.stream import stream_modules
from ddlvad.rundir import ONNX_FILE, ONNX_REPORT, ONNX_STREAM_FILES, load_trained
from ddlvad.scoring.backends import EXPORTED_FROM, Backend, TorchForward, ort_forward
from ddlvad.scoring.engine import ScoreEngine
from ddlvad.scoring.protocol import ScoreProtocol

TOLERANCE = 1e-4  # max |onnxruntime - torch| on reconstructions (in [0, 1]) and frame scores
OPSET = 17
LEVELS = 4  # encoder feature maps (C3DSU)


def require_onnx():
    try:
        import onnx
    except ImportError as e:
        raise ImportError("ONNX export needs the onnx extra: pip install 'ddlvad[onnx]'") from e
    return onnx


def _write_onnx(module, args: tuple, tmp: str, names: tuple[list, list], meta: dict) -> None:
    """Export ``module(*args)`` with a dynamic dimension 0 on every input and output."""
    onnx = require_onnx()
    ins, outs = names
    axes = {n: {0: "batch"} for n in ins + outs}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module,
            args,
            tmp,
            input_names=ins,
            output_names=outs,
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,  # the dynamo exporter needs onnxscript, which is not a dependency
        )
    m = onnx.load(tmp)
    for k, v in meta.items():
        m.metadata_props.add(key=k, value=str(v))
    onnx.checker.check_model(m)
    onnx.save(m, tmp)


def save_onnx(path: Path, module, args: tuple, names: tuple[list, list], meta: dict) -> Path:
    """Export atomically: a failed export leaves no file behind."""
    return atomic_write(path, lambda tmp: _write_onnx(module, args, tmp, names, meta))


def _recon_diff(model, forward: Backend, cfg, stream: bool, batches=(1, 3)) -> float:
    """Max |onnxruntime - torch fp32| of the reconstructions of random clips."""
    d, T = cfg.data, model.T
    g = torch.Generator().manual_seed(0)
    out = 0.0
    for b in batches:
        X = torch.rand(b, d.channels, T, d.height, d.width, generator=g)  # (B, C, T, H, W)
        with torch.inference_mode():
            y_torch = model(X)
        if stream:  # encode the B*T frames, regroup per clip
            feats = forward.encode(X.transpose(1, 2).reshape(b * T, d.channels, d.height, d.width))
            y_ort = forward.head([f.reshape(b, T, *f.shape[1:]).transpose(1, 2) for f in feats])
        else:
            y_ort = forward(X)
        out = max(out, float((y_torch - y_ort).abs().max()))
    return out


def _score_diff(model, forward: Backend, cfg, stream: bool, batches=(1, 3)) -> float:
    """Max |onnxruntime - torch fp32| of the frame scores of a random video, each through the
    scoring engine (the run's patch grid; the median filter is not applied)."""
    d, T = cfg.data, model.T
    rng = np.random.default_rng(0)
    video = rng.integers(0, 256, (T + 4, d.height, d.width, d.channels), dtype=np.uint8)
    protocol = ScoreProtocol.from_config(cfg).replace(gain=0)  # the graphs, not the footage
    ref = TorchForward(model, "fp32", "cpu")
    out = 0.0
    for b in batches:
        a, _ = ScoreEngine(protocol, ref, T, batch_size=b).score_video(video)
        o, _ = ScoreEngine(protocol, forward, T, batch_size=b, stream=stream).score_video(video)
        out = max(out, float(np.abs(a - o).max()))
    return out


def _diffs(model, forward: Backend, cfg, stream: bool) -> dict[str, float]:
    return {
        "max_abs_diff_recon": _recon_diff(model, forward, cfg, stream),
        "max_abs_diff_score": _score_diff(model, forward, cfg, stream),
    }


def onnx_graphs(model: torch.nn.Module, cfg) -> list[tuple[str, Any, tuple, tuple]]:
    """(file name, module, example inputs, (input names, output names)) per graph.

    The modules are an eval-mode copy of ``model`` on the reference kernels: the exporter
    cannot trace the fast path's merged weights, and ``model`` itself is left as it was."""
    model = set_fast_path(copy.deepcopy(model), False).eval()
    d, T = cfg.data, model.T
    X = torch.rand(2, d.channels, T, d.height, d.width)  # (B, C, T, H, W)
    graphs = [(ONNX_FILE, model, (X,), (["clips"], ["recon"]))]
    stream = stream_modules(model)  # in eval mode: the exporter restores each module's mode
    if stream is None:
        return graphs
    enc, head = stream
    with torch.no_grad():
        feats = enc(X[:, :, 0])
    stacked = tuple(f[:, :, None].expand(-1, -1, T, -1, -1).contiguous() for f in feats)
    fnames = [f"f{i + 1}" for i in range(LEVELS)]
    snames = [f"s{i + 1}" for i in range(LEVELS)]
    return graphs + [
        (ONNX_STREAM_FILES[0], enc, (X[:, :, 0],), (["frames"], fnames)),
        (ONNX_STREAM_FILES[1], head, stacked, (snames, ["recon"])),
    ]


def export_onnx(run_dir: str | Path, *, check: bool = True) -> dict[str, Any]:
    """Write ``run_dir/model.onnx`` (and the stream graphs for C3DSU); return a report."""
    run_dir = Path(run_dir)
    ckpt: dict[str, Any] = {}
    cfg, model = load_trained(run_dir, info=ckpt)
    require_onnx()
    d, T = cfg.data, model.T
    meta = {"ddlvad_fingerprint": cfg.fingerprint(), "ddlvad_run": run_dir.resolve()}
    meta[EXPORTED_FROM] = ckpt["sha256"]  # checked at load (scoring.backends.ort_forward)
    graphs = onnx_graphs(model, cfg)
    for name, module, args, names in graphs:
        save_onnx(run_dir / name, module, args, names, meta)
    report: dict[str, Any] = {
        "files": [name for name, *_ in graphs],
        "opset": OPSET,
        "input": {"clips": ["batch", d.channels, T, d.height, d.width]},
        "output": {"recon": ["batch", d.channels, d.height, d.width]},
        "fingerprint": cfg.fingerprint(),
        "tolerance": TOLERANCE,
        "checkpoint": ckpt,  # the weights exported (file, epoch, step, sha256)
    }
    if check:
        report["clip"] = _diffs(model.eval(), ort_forward(run_dir), cfg, False)
        if len(graphs) > 1:
            report["stream"] = _diffs(model, ort_forward(run_dir, True), cfg, True)
        worst = max(v for k in ("clip", "stream") for v in report.get(k, {}).values())
        report["match"] = worst <= TOLERANCE
    atomic_write_json(run_dir / ONNX_REPORT, report)
    return report
