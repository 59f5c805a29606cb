"""Pseudo-anomaly creator, eqs (1)-(2): X_A = (1 - M) X + M ((1 - s) X + s A)."""

from __future__ import annotations

import torch
from torch import nn

MODES = ("none", "static", "dynamic")


class PseudoAnomalyCreator(nn.Module):
    """Blends uniform noise A ~ U(0, 1) into the masked object with weight s.

    ``dynamic``: s = sigmoid(l) with one trainable scalar l (init ``l_init`` = 0 -> s = 0.5).
    ``static``: s is a fixed buffer (SDL). ``none``: no pseudo-anomalies (``enabled`` is False).
    """

    def __init__(self, mode: str = "dynamic", *, sigma: float = 0.5, l_init: float = 0.0) -> None:
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"pseudo-anomaly mode must be one of {MODES}, got {mode!r}")
        if not 0.0 <= sigma <= 1.0:
            raise ValueError(f"static sigma must lie in [0, 1], got {sigma}")
        self.mode = mode
        if mode == "dynamic":
            self.l = nn.Parameter(torch.tensor(float(l_init)))
        else:
            self.register_buffer("s_fixed", torch.tensor(float(sigma)))

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def sigma(self) -> torch.Tensor:
        """The anomaly weight s (0-dim tensor; carries grad to l in dynamic mode)."""
        return torch.sigmoid(self.l) if self.mode == "dynamic" else self.s_fixed

    def forward(
        self, X: torch.Tensor, M: torch.Tensor, A: torch.Tensor | None = None
    ) -> torch.Tensor:
        """X: (B, C, T, H, W) in [0, 1]; M: (B, 1, T, H, W) binary; A: noise like X.

        Returns X_A, same shape as X.
        """
        if A is None:
            A = torch.rand_like(X)
        s = self.sigma()
        X_bar_A = (1 - s) * X + s * A  # eq (1)
        return (1 - M) * X + M * X_bar_A  # eq (2)
