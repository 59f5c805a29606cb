"""Model registry: name -> constructor. Every variant maps (B, C, T, H, W) -> (B, C, H, W)."""

from __future__ import annotations

from torch import nn

from ddlvad.config import model_T  # the registry's clip-length rule (UNet: T = 1)
from ddlvad.models.unet import C3DSU, UNet

__all__ = ["MODELS", "build_model", "model_T"]

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "c3dsu": C3DSU}


def build_model(
    name: str, *, C: int, T: int, latent: int, kernels: tuple[int, ...], final_kernel: int = 1
) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](C=C, T=T, latent=latent, kernels=tuple(kernels), final_kernel=final_kernel)
