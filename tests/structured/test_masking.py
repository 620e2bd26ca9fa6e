"""pk.structured.masking: fading filters out with alpha, after their BatchNorm."""

import torch

import pruning_kit as pk
from pruning_kit import structured as st
from structured_support import randomize_batchnorm


def test_alpha_zero_mask_equals_the_cut_model_with_batchnorm():
    """The alpha mask sits after BatchNorm: at alpha = 0 the masked model and the cut one agree
    even when the removed filters are not zero."""
    torch.manual_seed(1)
    x = torch.rand(2, 3, 32, 32)
    model = pk.models.vgg(11, width=0.25).eval()
    randomize_batchnorm(model)
    removed = st.select_filters(model, 0.5, x)
    small = st.remove_filters(model, removed, x).eval()
    mask = st.mask_filters(model, removed, x, alpha=0.0)
    with torch.no_grad():
        assert torch.allclose(model(x), small(x), atol=1e-5)
        mask.alpha = 1.0
        unmasked = model(x)
    mask.remove()
    with torch.no_grad():
        assert torch.equal(unmasked, model(x))   # alpha 1 is the untouched model
