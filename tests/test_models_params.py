"""Parameter counts of the published architectures (models are built, never run)."""
import pytest

from quadfire.models import create_model


def n_params(model):
    return sum(p.numel() for p in model.parameters())


def test_resnet19_cifar10_parameter_count():
    assert 12.5e6 <= n_params(create_model("resnet19", num_classes=10)) <= 12.8e6


@pytest.mark.parametrize("name", ["spiking_resnet34", "sew_resnet34"])
def test_resnet34_imagenet_parameter_count(name):
    assert abs(n_params(create_model(name, num_classes=1000)) - 21.8e6) <= 0.02 * 21.8e6


def test_parameter_count_does_not_depend_on_neuron_without_learnable_parameters():
    fixed = n_params(create_model("convnet", neuron="lif"))
    assert n_params(create_model("convnet", neuron="qif")) == fixed
    extra = n_params(create_model("convnet", neuron="plif", neuron_kwargs={"learnable": "channel"}))
    assert extra == fixed + 32 + 64 + 128


@pytest.mark.parametrize("kind, stride, alpha", [("spiking", 1, 2 ** -0.5),
                                                 ("spiking", 2, 2 ** -0.5), ("sew", 2, 1.0)])
def test_residual_branches_are_normalised_to_alpha_v_th(kind, stride, alpha):
    """tdBN's rule for a spiking residual block: both added branches are normalised to
    std alpha * v_th with alpha = 1/sqrt(2), so their sum has the variance v_th^2 of any
    other pre-activation; SEW blocks add spikes, not tdBN outputs, and keep alpha = 1."""
    import torch
    from quadfire.models.blocks import BLOCKS
    from quadfire.neurons import NeuronSpec

    torch.manual_seed(0)
    v_th = 1.5
    cin = 4 if stride == 1 else 3
    block = BLOCKS[kind](cin, 4, stride, NeuronSpec("qif", {"v_th": v_th})).train()
    outputs = {}
    for name in ("conv2", "shortcut"):
        getattr(block, name).register_forward_hook(
            lambda m, i, out, name=name: outputs.__setitem__(name, out))
    x = torch.randn(2, 8, cin, 6, 6)
    block(x)
    std = outputs["conv2"].transpose(0, 2).reshape(4, -1).std(1, unbiased=False)
    torch.testing.assert_close(std, torch.full((4,), alpha * v_th), rtol=1e-3, atol=0)
    if stride == 2:  # the downsampling shortcut is a tdBN branch too
        std = outputs["shortcut"].transpose(0, 2).reshape(4, -1).std(1, unbiased=False)
        torch.testing.assert_close(std, torch.full((4,), alpha * v_th), rtol=1e-3, atol=0)
