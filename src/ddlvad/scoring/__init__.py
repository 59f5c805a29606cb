"""The frame-scoring engine and the test verb's library.

``protocol`` (``ScoreProtocol``: every scoring choice as one object), ``engine`` (frames in,
one score per frame out, whole videos or pushed frame by frame) with its steps: ``window``
(T-windows, edge rule), ``backends`` (torch, onnxruntime), ``frame`` (error map, patch max),
``gain`` (brightness), ``post`` (median, normalisation, alert ranges). Then ``metrics``
(frame and pixel AUC, EER, AP), ``evaluate`` (scores.csv, metrics.json), ``outputs`` (those
files published together and checked to belong together), ``protocols`` (every protocol side
by side from one pass), ``reconstruct`` (a torch model over a video) and ``threads``
(torch's thread count and OpenMP's wait policy on a shared CPU).

This file holds only the names the command line offers (imported by ``ddlvad --help``, so
nothing heavy).
"""

BACKENDS = ("torch", "onnxruntime")
PRECISIONS = ("auto", "fp32", "bf16")
ENGINES = ("clip", "stream")
