"""Public-boundary behaviour of the neuron modules: gradients, dtypes, errors."""
import pytest
import torch

from quadfire.neurons import IF, LIF, PLIF, QIF, NeuronSpec


def all_neurons():
    return [QIF(), QIF(reset="soft"), QIF(learnable="scalar"), QIF(learnable="channel", channels=3),
            QIF(surrogate="noise", sigma=0.7), QIF(surrogate="band-below"), QIF(surrogate="atan"),
            LIF(), LIF(reset="soft", surrogate="sigmoid"), PLIF(), PLIF(learnable="channel", channels=3),
            IF()]


@pytest.mark.parametrize("neuron", all_neurons(), ids=repr)
def test_gradients_reach_inputs_and_parameters(neuron):
    torch.manual_seed(0)
    x = (torch.randn(6, 4, 3, 5) + 0.6).requires_grad_()
    neuron(x).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, prm in neuron.named_parameters():
        assert prm.grad is not None and torch.isfinite(prm.grad).all(), name
        assert prm.grad.abs().sum() > 0, name


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("cls", [QIF, LIF])
def test_dtypes(dtype, cls):
    x = (torch.randn(5, 8, 3) + 0.5).to(dtype).requires_grad_()
    out = cls().run(x)
    assert out.spikes.dtype == dtype and out.spikes.shape == x.shape
    out.spikes.float().sum().backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad.float()).all()
    # half inputs run with float32 state: same spikes as float32 on the rounded input
    ref = cls().run(x.detach().float()).spikes
    assert torch.equal(out.spikes.float(), ref)


def test_learnable_init_matches_given_values():
    a, u1, u2 = QIF(a=0.3, u1=-0.1, u2=0.4, learnable="channel", channels=2).values()
    assert torch.allclose(a, torch.tensor(0.3), atol=1e-5)
    assert torch.allclose(u1, torch.tensor(-0.1), atol=1e-5)
    assert torch.allclose(u2, torch.tensor(0.4), atol=1e-5)


@pytest.mark.parametrize("kwargs, condition", [
    (dict(a=0.0), "a > 0"),
    (dict(a=-1.0), "a > 0"),
    (dict(u1=0.6, u2=0.5), "u1 < u2"),
    (dict(u2=0.5, v_th=0.5), "u2 < v_th"),
    (dict(u2=1.5, v_th=1.0), "u2 < v_th"),
    (dict(a=4.0, u1=0.0, u2=0.5), r"a\*\(u2 - u1\) < 2"),
    (dict(v_reset=1.0), "v_reset < v_th"),
    (dict(v_min=0.1), "v_min"),
    (dict(v_min=-10.0), "v_min"),
    (dict(a=float("nan")), "finite"),
    (dict(reset="zero"), "reset must be"),
    (dict(learnable="yes"), "learnable must be"),
    (dict(learnable="channel"), "channels="),
    (dict(v_min="low"), "v_min must be"),
])
def test_invalid_qif_parameters(kwargs, condition):
    with pytest.raises(ValueError, match=condition) as err:
        QIF(**kwargs)
    if "reset" not in kwargs and "learnable" not in kwargs and kwargs.get("v_min") != "low":
        assert "got" in str(err.value)  # names the values given


@pytest.mark.parametrize("cls, kwargs, condition", [
    (LIF, dict(tau=0.5), "tau >= 1"),
    (LIF, dict(v_reset=1.0), "v_reset < v_th"),
    (LIF, dict(surrogate="band"), "derived from QIF"),
    (PLIF, dict(tau=1.0), "tau > 1"),
    (IF, dict(v_reset=2.0), "v_reset < v_th"),
])
def test_invalid_lif_parameters(cls, kwargs, condition):
    with pytest.raises(ValueError, match=condition):
        cls(**kwargs)


@pytest.mark.parametrize("x, exc, msg", [
    (torch.zeros(4, 3, dtype=torch.int64), TypeError, "floating-point"),
    (torch.zeros(4), ValueError, r"\[T, N, \.\.\.\]"),
    ([1.0, 2.0], TypeError, "torch.Tensor"),
])
def test_bad_inputs(x, exc, msg):
    with pytest.raises(exc, match=msg):
        QIF()(x)


def test_channel_mismatch_and_bad_state():
    with pytest.raises(ValueError, match="expects input"):
        QIF(learnable="channel", channels=3)(torch.zeros(2, 1, 4))
    with pytest.raises(ValueError, match="state must have"):
        QIF()(torch.zeros(2, 3, 4), state=torch.zeros(3))


def test_empty_sequences():
    assert QIF()(torch.zeros(0, 3)).shape == (0, 3)
    assert QIF()(torch.zeros(4, 0)).shape == (4, 0)


def test_no_hidden_state_between_calls():
    q = QIF()
    x = torch.rand(5, 7) * 2
    assert torch.equal(q(x), q(x))


def test_neuron_spec():
    make = NeuronSpec("qif", {"learnable": "channel", "a": 0.3}).make
    n = make(16)
    assert isinstance(n, QIF) and n.channels == 16
    assert NeuronSpec(lambda c: LIF()).make(3).__class__ is LIF
    with pytest.raises(ValueError, match="unknown neuron"):
        NeuronSpec("hh")
