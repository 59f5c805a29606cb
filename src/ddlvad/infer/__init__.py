"""Inference on footage: the numpy-facing detector, predict, live mode, overlay, ONNX export.

They score through ``ddlvad.scoring.engine``. This file holds only the names the command
line offers (imported by ``ddlvad --help``, so nothing heavy); the modules of this package
import torch.
"""

INPUT_HELP = (
    "a video file, a folder of frames or of videos, a camera index, or an rtsp:// / http:// URL"
)
