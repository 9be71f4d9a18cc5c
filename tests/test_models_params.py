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
