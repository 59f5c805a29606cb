"""Exponential moving average (EMA) of the network's weights and BatchNorm statistics.

Training with Adam at a fixed step size ends wherever the last steps left the weights, and
at the ``cpu`` preset the same command has landed anywhere in a 20-point AUC band. An EMA of
the weights (``train.ema`` = its decay, e.g. 0.999: an average over the last ~1,000 steps)
smooths that last stretch; ``score.weights`` picks which weights ``test``, ``predict`` and
the threshold calibration use. It comes from PyTorch's own ``AveragedModel``.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

PREFIX = "module."  # AveragedModel keeps the averaged copy as .module


class WeightEMA:
    """An ``AveragedModel`` of ``model`` that is not a submodule of anything, so that no
    optimiser or DDP wrapper ever sees its copy of the weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.model = model
        self.avg = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)

    def update(self) -> None:
        """After each optimiser step: fold the model's weights and BN statistics in."""
        self.avg.update_parameters(self.model)

    @property
    def module(self) -> nn.Module:
        return self.avg.module

    def state_dict(self) -> dict[str, Any]:
        return self.avg.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.avg.load_state_dict(state)


def make_ema(model: nn.Module, decay: float) -> WeightEMA | None:
    """An EMA of ``model`` (parameters and buffers), or None when ``decay`` is 0."""
    return WeightEMA(model, decay) if decay > 0 else None


def ema_state(ck: dict[str, Any]) -> dict[str, Any] | None:
    """The averaged model's state_dict inside a checkpoint, or None when it kept no EMA."""
    state = ck.get("ema")
    if not state:
        return None
    return {k[len(PREFIX) :]: v for k, v in state.items() if k.startswith(PREFIX)}


def scoring_state(ck: dict[str, Any], weights: str) -> dict[str, Any]:
    """The weights to score with: the EMA when asked for and kept, else the last step's."""
    if weights == "ema":
        state = ema_state(ck)
        if state is not None:
            return state
    return ck["model"]
