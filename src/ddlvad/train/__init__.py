"""Training: ``loop`` (Adam, DDL loss, checkpoints, resume), ``data`` (training videos,
held-out tails), ``clips`` (training clips with object masks), ``loss`` (eqs 3-7),
``resume``, ``distributed`` (DDP under torchrun), ``ema`` (weight EMA), ``calibrate`` (the
alert threshold) and ``scenes`` (one run per scene)."""
