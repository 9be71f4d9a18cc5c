"""The names users reach for first are importable from the package itself."""
import torch

import quadfire


def test_front_door():
    assert quadfire.__version__ and quadfire.__version__ != "0+unknown"
    assert "resnet19" in quadfire.list_models()
    model = quadfire.create_model("convnet", neuron=quadfire.QIF(), T=2)
    assert model(torch.rand(3, 1, 8, 8)).shape == (2, 3, 10)
    for cls in (quadfire.QIF, quadfire.LIF, quadfire.PLIF, quadfire.IF):
        assert cls()(torch.rand(2, 5)).shape == (2, 5)
