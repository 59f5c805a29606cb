"""Inference on footage: backends, the numpy-facing detector, predict, live mode, overlay,
ONNX export.

This file holds only the names the command line offers (imported by ``ddlvad --help``, so
nothing heavy); the modules of this package import torch.
"""

BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("clip", "stream")
INPUT_HELP = (
    "a video file, a folder of frames or of videos, a camera index, or an rtsp:// / http:// URL"
)
