"""pk.quant.folding: a batch norm folded into the convolution before it (Jacob et al. 2018, Eq. 14)."""

import pytest
import torch
from torch import nn

import pruning_kit as pk
from pruning_kit.quant import fold_batchnorm, fold_batchnorms


def trained_looking_bn(channels, seed=0, affine=True):
    """A BatchNorm2d with running statistics and gamma/beta far from their defaults."""
    torch.manual_seed(seed)
    bn = nn.BatchNorm2d(channels, affine=affine)
    with torch.no_grad():
        bn.running_mean.uniform_(-1.0, 1.0)
        bn.running_var.uniform_(0.2, 3.0)
        if affine:
            bn.weight.uniform_(0.5, 2.0)
            bn.bias.uniform_(-0.5, 0.5)
    return bn.eval()


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("affine", [True, False])
def test_folded_conv_equals_conv_then_batch_norm_in_eval_mode(bias, affine):
    torch.manual_seed(1)
    conv = nn.Conv2d(3, 5, 3, stride=2, padding=1, bias=bias)
    bn = trained_looking_bn(5, affine=affine)
    x = torch.randn(4, 3, 9, 9)
    folded = fold_batchnorm(conv, bn)
    assert isinstance(folded, nn.Conv2d) and folded.bias is not None
    assert (folded.stride, folded.padding, folded.kernel_size) == (conv.stride, conv.padding,
                                                                  conv.kernel_size)
    with torch.no_grad():
        assert torch.allclose(folded(x), bn(conv(x)), atol=1e-5)


def test_folding_follows_eq_14_and_agrees_with_torch():
    torch.manual_seed(2)
    conv, bn = nn.Conv2d(2, 4, 3).eval(), trained_looking_bn(4, seed=3)
    folded = fold_batchnorm(conv, bn)
    factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    # Eq. 14: each output channel's weights times gamma / sigma; the bias shifted and scaled
    assert torch.allclose(folded.weight, conv.weight * factor.reshape(-1, 1, 1, 1), atol=1e-6)
    assert torch.allclose(folded.bias, bn.bias + factor * (conv.bias - bn.running_mean), atol=1e-6)
    reference = torch.nn.utils.fusion.fuse_conv_bn_eval(conv, bn)
    assert torch.allclose(folded.weight, reference.weight, atol=1e-6)
    assert torch.allclose(folded.bias, reference.bias, atol=1e-6)


def test_folding_leaves_conv_and_bn_unchanged():
    conv, bn = nn.Conv2d(1, 2, 3), trained_looking_bn(2)
    before = {k: v.clone() for k, v in {**conv.state_dict(), **{f"bn.{k}": v for k, v in
                                                                 bn.state_dict().items()}}.items()}
    fold_batchnorm(conv, bn)
    after = {**conv.state_dict(), **{f"bn.{k}": v for k, v in bn.state_dict().items()}}
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_fold_batchnorm_errors():
    conv, bn = nn.Conv2d(1, 2, 3), trained_looking_bn(2)
    with pytest.raises(ValueError, match="conv must be a torch.nn.Conv2d"):
        fold_batchnorm(nn.Linear(2, 2), bn)
    with pytest.raises(TypeError, match="bn must be a torch.nn.BatchNorm2d"):
        fold_batchnorm(conv, nn.BatchNorm1d(2))
    with pytest.raises(ValueError, match="normalises 3 channels but conv has 2"):
        fold_batchnorm(conv, nn.BatchNorm2d(3))
    with pytest.raises(ValueError, match="no running statistics"):
        fold_batchnorm(conv, nn.BatchNorm2d(2, track_running_stats=False))
    pruned = pk.prune.magnitude(nn.Sequential(nn.Conv2d(1, 2, 3)), 0.5)[0]
    with pytest.raises(ValueError, match="pk.prune.finalize"):
        fold_batchnorm(pruned, bn)


def test_fold_batchnorms_on_vgg_removes_every_batch_norm_and_keeps_the_outputs():
    torch.manual_seed(4)
    model = pk.models.vgg(11, width=0.125, in_channels=1, image_size=28)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
    model.eval()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    folded = fold_batchnorms(model)
    assert len(folded.folded) == 8 and folded.folded[0] == "features.0"
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert isinstance(folded.features[1], nn.Identity) and not folded.training
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-4)
    # the model itself is untouched
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()) == 8


def test_fold_batchnorms_leaves_batch_norms_it_cannot_see_and_bakes_in_masks():
    resnet = pk.models.resnet(20).eval()
    folded = fold_batchnorms(resnet)
    # a ResNet block calls self.bn1 in forward: not a Sequential neighbour, left in place
    assert isinstance(folded.layer1[0].bn1, nn.BatchNorm2d)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(folded(x), resnet(x), atol=1e-5)
    pruned = pk.prune.magnitude(nn.Sequential(nn.Conv2d(1, 4, 3), trained_looking_bn(4)), 0.5)
    folded = fold_batchnorms(pruned)
    assert folded.folded == ["0"] and int((folded[0].weight == 0).sum()) == 18
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fold_batchnorms("vgg")
