"""Public-boundary behaviour of the neuron modules: gradients, dtypes, errors."""
import pytest
import torch

from quadfire.errors import ConfigError, InputTypeError, ParameterError
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


@pytest.mark.parametrize("kw", [dict(a=0.001), dict(a=1e-9), dict(u2=0.9999), dict(a=3.999),
                                dict(u1=0.999, u2=0.9995), dict(a=0.001, u2=0.99999)])
@pytest.mark.parametrize("learnable", ["scalar", "channel"])
def test_learnable_qif_takes_every_valid_initial_value(kw, learnable):
    """Parameters near a limit (small a*(u2 - u1), u2 close to v_th) are represented exactly
    instead of failing with a math domain error, and stay valid after an optimizer step."""
    full = {"a": 0.25, "u1": 0.0, "u2": 0.5, **kw}
    neuron = QIF(**kw, learnable=learnable, channels=2)
    got = [v.detach().double() for v in neuron.values()]
    for name, value in zip(("a", "u1", "u2"), got):
        assert torch.allclose(value, torch.tensor(full[name], dtype=torch.float64),
                              rtol=1e-3, atol=1e-6), name
    neuron(torch.randn(3, 4, 2, 5)).sum().backward()
    with torch.no_grad():
        for p in neuron.parameters():
            p -= 50 * p.grad.sign()  # a large step in any direction
    a, u1, u2 = (v.detach() for v in neuron.values())
    assert (a > 0).all() and (u1 < u2).all() and (u2 < 1).all() and (a * (u2 - u1) < 2).all()


@pytest.mark.parametrize("make, match", [
    (lambda: QIF(surrogate="rect", surrogate_width="0.5"), "surrogate_width must be a finite"),
    (lambda: QIF(surrogate_width=float("nan")), "surrogate_width must be a finite"),
    (lambda: QIF(surrogate="noise", sigma="1"), "sigma .* must be a finite number > 0"),
    (lambda: QIF(surrogate="noise", sigma=-1.0), "sigma .* must be a finite number > 0"),
    (lambda: LIF(surrogate_width="1"), "surrogate_width must be a finite"),
    (lambda: PLIF(tau="3"), "PLIF needs an initial tau > 1"),
    (lambda: NeuronSpec("qif", {"v_th": "1"}), "v_th must be a finite number"),
    (lambda: NeuronSpec("qif", [("a", 1)]), "neuron_kwargs must be a dict"),
])
def test_wrong_parameter_types_are_named(make, match):
    with pytest.raises(ParameterError if "neuron_kwargs" not in match else ConfigError,
                       match=match):
        make()


def test_a_float_state_is_a_type_error():
    with pytest.raises(InputTypeError, match=r"state must be a torch.Tensor of shape \(4, 3\).*"
                                             r"got float"):
        QIF()(torch.zeros(2, 4, 3), state=0.5)
