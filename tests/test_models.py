import pytest
import torch

from ddlvad.models import MODELS, build_model, model_T
from ddlvad.models.unet import widths


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("C", [1, 3])
@pytest.mark.parametrize("kernels", [(3, 5, 7), (3, 3, 3, 3)])
def test_every_variant_maps_clip_to_middle_frame(name, C, kernels):
    T = model_T(name, 3)
    m = build_model(name, C=C, T=T, latent=16, kernels=kernels)
    X = torch.rand(2, C, T, 32, 48)
    y = m(X)
    assert y.shape == (2, C, 32, 48)
    assert float(y.detach().min()) >= 0.0 and float(y.detach().max()) <= 1.0


def test_c3dsu_uses_time_but_unet_cannot():
    torch.manual_seed(0)
    m = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3,)).eval()
    X = torch.rand(1, 1, 3, 32, 32)
    X2 = X.clone()
    X2[:, :, 0] = torch.rand(1, 1, 32, 32)  # change only a neighbour frame
    assert not torch.allclose(m(X), m(X2))
    with pytest.raises(ValueError, match="T = 1"):
        build_model("unet", C=1, T=3, latent=16, kernels=(3,))


def test_even_T_and_bad_latent_rejected():
    with pytest.raises(ValueError, match="odd"):
        build_model("c3dsu", C=1, T=4, latent=16, kernels=(3,))
    with pytest.raises(ValueError, match="multiple of 8"):
        widths(20)
    with pytest.raises(ValueError, match="unknown model"):
        build_model("resnet", C=1, T=3, latent=16, kernels=(3,))


# Parameter counts pinned per variant (C = 3, latent 64): a change to the architecture must
# show up here. Authors' code: kernels 3/5/7 + 1x1 final conv; paper text: four 3x3 branches.
# The C3DSU adds exactly sum_c (27 c^2 + c) for c in widths(64) = 147,000 Conv3D parameters.
PINNED = {
    ("unet", (3, 5, 7)): 1_419_002,
    ("c3dsu", (3, 5, 7)): 1_566_002,
    ("unet", (3, 3, 3, 3)): 681_031,
    ("c3dsu", (3, 3, 3, 3)): 828_031,
}


@pytest.mark.parametrize("name,kernels", sorted(PINNED))
def test_parameter_count_pinned(name, kernels):
    m = build_model(name, C=3, T=model_T(name, 3), latent=64, kernels=kernels)
    assert sum(p.numel() for p in m.parameters()) == PINNED[(name, kernels)]


def test_conv3d_skip_parameter_difference():
    extra = sum(27 * c * c + c for c in widths(64))
    assert PINNED[("c3dsu", (3, 5, 7))] - PINNED[("unet", (3, 5, 7))] == extra


def test_c3dsu_skip_equals_middle_step_of_same_padded_conv3d():
    # The skips use a Conv3D without temporal padding; its single output step must be the
    # middle step of the "same"-padded Conv3D the architecture describes.
    torch.manual_seed(0)
    m = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3,))
    conv = m.skips[1]
    same = torch.nn.Conv3d(conv.in_channels, conv.out_channels, (3, 3, 3), padding=1)
    same.load_state_dict(conv.state_dict())
    x = torch.rand(2, conv.in_channels, 3, 8, 8)
    with torch.no_grad():
        assert torch.allclose(conv(x)[:, :, 0], same(x)[:, :, 1], atol=1e-6)


def test_speedups_keep_outputs_and_checkpoint_keys():
    """channels_last changes the memory format only; compile keeps the state_dict keys."""
    from types import SimpleNamespace

    from ddlvad.train.loop import apply_speedups

    torch.manual_seed(0)
    model = build_model("c3dsu", C=1, T=3, latent=16, kernels=(3, 5, 7)).eval()
    X = torch.rand(2, 1, 3, 32, 32)
    ref = model(X)
    keys = list(model.state_dict())
    apply_speedups(model, SimpleNamespace(channels_last=True, compile=False))
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert torch.allclose(model(X), ref, atol=1e-5)
    apply_speedups(model, SimpleNamespace(channels_last=False, compile=True))
    assert list(model.state_dict()) == keys  # in-place compile: no "_orig_mod." prefix
