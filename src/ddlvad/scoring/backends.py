"""Inference backends: a trained network as a function of (B, C, T, H, W) clips.

Every backend maps clips to reconstructed middle frames (B, C, H, W) and says whether it can
run the stream engine (``streams``): then ``encode`` takes (N, C, H, W) frames to the
encoder's four feature maps, and ``head`` takes per-level (B, c, T, h, w) features of a
window to (B, C, H, W) (see ``ddlvad.models.stream``).

- ``TorchForward``: the torch model, fp32 or bf16 autocast (only worth it on CPUs with
  native bf16: ``resolve_precision``).
- ``OrtForward`` / ``OrtStreamForward``: the graphs written by ``ddlvad export``
  (``rundir.ONNX_FILE`` / ``rundir.ONNX_STREAM_FILES``) through onnxruntime, CPU, fp32.
  They need the ``onnx`` extra.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import nn

from ddlvad.models.stream import stream_modules
from ddlvad.rundir import CHECKPOINT, ONNX_FILE, ONNX_REPORT, ONNX_STREAM_FILES
from ddlvad.scoring import PRECISIONS

EXPORTED_FROM = "ddlvad_checkpoint_sha256"  # ONNX metadata key: the checkpoint exported


class Backend(Protocol):
    """What the detector needs of a backend (``encode`` / ``head`` only when ``streams``)."""

    precision: str  # "fp32" or "bf16"
    streams: bool

    def __call__(self, X: torch.Tensor) -> torch.Tensor: ...

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]: ...

    def head(self, feats: list[torch.Tensor]) -> torch.Tensor: ...


def native_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str, device: str) -> str:
    """``auto`` -> bf16 on a CPU with native bf16, else fp32."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if str(device) == "cpu" and native_bf16() else "fp32"
    return precision


class TorchForward:
    """The torch model on (B, C, T, H, W) clips -> (B, C, H, W), fp32 or bf16 autocast."""

    def __init__(self, model: nn.Module, precision: str, device) -> None:
        self.model, self.precision, self.device = model.eval(), precision, torch.device(device)
        self.bf16 = precision == "bf16"
        self.stream = stream_modules(model)  # (encoder, head), or None
        self.streams = self.stream is not None

    def _ctx(self):
        if not self.bf16:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode(), self._ctx():
            return self.model(X.to(self.device)).float()

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, C, H, W) frames -> the encoder's four feature maps (stream engine)."""
        with torch.inference_mode(), self._ctx():
            return list(self.stream[0](x.to(self.device)))

    def head(self, feats: list[torch.Tensor]) -> torch.Tensor:
        """Per level (B, c, T, h, w) features -> (B, C, H, W) (stream engine)."""
        with torch.inference_mode(), self._ctx():
            return self.stream[1](*feats).float()


def require_onnxruntime():
    try:
        import onnxruntime
    except ImportError as e:
        raise ImportError(
            "the onnxruntime backend needs the onnx extra: pip install 'ddlvad[onnx]'"
        ) from e
    return onnxruntime


def _session(path: str | Path, threads: int = 0, checkpoint_sha: str | None = None):
    """An onnxruntime session of ``path``; ValueError naming the file when it is not a
    loadable ONNX model, or (``checkpoint_sha`` given) was exported from other weights."""
    ort = require_onnxruntime()
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads or torch.get_num_threads()
    try:
        sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's errors (InvalidProtobuf, Fail...) derive from Exception
        if not type(e).__module__.startswith("onnxruntime"):
            raise
        raise ValueError(
            f"{path}: not a loadable ONNX model ({type(e).__name__}); expected a file written "
            f"by ddlvad export: run `ddlvad export --run {Path(path).parent}` again"
        ) from None
    if checkpoint_sha is not None:
        _check_exported_from(sess, path, checkpoint_sha)
    return sess


def _check_exported_from(sess, path: str | Path, want: str) -> None:
    """ValueError unless the graph's metadata names the checkpoint whose sha256 is ``want``."""
    got = sess.get_modelmeta().custom_metadata_map.get(EXPORTED_FROM)
    if got != want:
        what = f"checkpoint sha256 {got[:12]}..." if got else "no checkpoint sha256"
        raise ValueError(
            f"{path}: records {what}, but the run's {CHECKPOINT} has sha256 {want[:12]}... "
            f"(another run's export, or an older one); run `ddlvad export --run "
            f"{Path(path).parent}` again"
        )


class OrtForward:
    """model.onnx through onnxruntime (CPU, fp32): (B, C, T, H, W) clips -> (B, C, H, W).

    ``checkpoint_sha``: refuse a graph exported from other weights than that checkpoint."""

    precision, streams = "fp32", False

    def __init__(self, path: str | Path, threads: int = 0, checkpoint_sha: str | None = None):
        self.sess = _session(path, threads, checkpoint_sha)

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.sess.run(["recon"], {"clips": X.numpy()})[0])


class OrtStreamForward:
    """The stream engine's encoder and head graphs through onnxruntime (CPU, fp32)."""

    precision, streams = "fp32", True

    def __init__(
        self,
        encoder: str | Path,
        head: str | Path,
        threads: int = 0,
        checkpoint_sha: str | None = None,
    ) -> None:
        self.enc = _session(encoder, threads, checkpoint_sha)
        self.hd = _session(head, threads, checkpoint_sha)

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.from_numpy(f) for f in self.enc.run(None, {"frames": x.numpy()})]

    def head(self, feats: list[torch.Tensor]) -> torch.Tensor:
        inputs = {f"s{i + 1}": np.ascontiguousarray(f.numpy()) for i, f in enumerate(feats)}
        return torch.from_numpy(self.hd.run(["recon"], inputs)[0])


def check_onnx(run_dir: str | Path, name: str = ONNX_FILE) -> Path:
    """``run_dir/name``, refusing a missing export or one older than the checkpoint."""
    run_dir = Path(run_dir)
    path, ckpt = run_dir / name, run_dir / CHECKPOINT
    if not path.exists():
        raise FileNotFoundError(f"{path}: not found; run `ddlvad export --run {run_dir}` first")
    if ckpt.exists() and ckpt.stat().st_mtime > path.stat().st_mtime:
        raise ValueError(f"{path} is older than {ckpt}; run `ddlvad export --run {run_dir}` again")
    return path


def ort_forward(run_dir: str | Path, stream: bool = False) -> OrtForward | OrtStreamForward:
    """The onnxruntime backend of a run: whole clips, or the stream engine's two graphs,
    each checked to be exported from the run's checkpoint (when it has one)."""
    ckpt = Path(run_dir) / CHECKPOINT
    sha = hashlib.sha256(ckpt.read_bytes()).hexdigest() if ckpt.is_file() else None
    if stream:
        paths = (check_onnx(run_dir, n) for n in ONNX_STREAM_FILES)
        return OrtStreamForward(*paths, checkpoint_sha=sha)
    return OrtForward(check_onnx(run_dir), checkpoint_sha=sha)


def onnx_info(run_dir: Path) -> dict[str, Any]:
    """Which weights an onnxruntime detector uses: model.onnx's sha256 and, when the export
    report recorded it, the checkpoint it was exported from."""
    path = run_dir / ONNX_FILE
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    info: dict[str, Any] = {"file": str(path), "sha256": digest}
    with contextlib.suppress(OSError, ValueError):
        report = json.loads((run_dir / ONNX_REPORT).read_text())
        info["exported_from"] = report.get("checkpoint")
    return info
