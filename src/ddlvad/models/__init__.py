"""Model registry: name -> constructor, and the builders from a config.

Every variant maps (B, C, T, H, W) -> (B, C, H, W). ``create_model(cfg)`` builds the network
f that a config describes (fresh weights), ``create_pseudo(cfg)`` its pseudo-anomaly creator;
a run directory's loaders (``ddlvad.rundir``) put the trained weights into them.
"""

from __future__ import annotations

from torch import nn

from ddlvad.config import Config, model_T  # the registry's clip-length rule (UNet: T = 1)
from ddlvad.models.pseudo import PseudoAnomalyCreator
from ddlvad.models.unet import C3DSU, UNet

__all__ = ["MODELS", "build_model", "create_model", "create_pseudo", "model_T"]

MODELS: dict[str, type[nn.Module]] = {"unet": UNet, "c3dsu": C3DSU}


def build_model(
    name: str, *, C: int, T: int, latent: int, kernels: tuple[int, ...], final_kernel: int = 1
) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(MODELS)}")
    return MODELS[name](C=C, T=T, latent=latent, kernels=tuple(kernels), final_kernel=final_kernel)


def create_model(cfg: Config) -> nn.Module:
    """The network f that ``cfg`` describes (``cfg.model``, channels, clip length)."""
    m = cfg.model
    return build_model(
        m.name,
        C=cfg.data.channels,
        T=cfg.model_T,
        latent=m.latent,
        kernels=m.kernels,
        final_kernel=m.final_kernel,
    )


def create_pseudo(cfg: Config) -> PseudoAnomalyCreator:
    """The pseudo-anomaly creator that ``cfg.pseudo`` describes (fresh sigma)."""
    p = cfg.pseudo
    return PseudoAnomalyCreator(p.mode, sigma=p.sigma, l_init=p.l_init)
