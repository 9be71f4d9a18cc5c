"""The registry, and one test that walks every registered model with every neuron."""
import pytest
import torch

from quadfire.errors import ConfigError, InputError
from quadfire.layers import TdBN
from quadfire.models import create_model, list_models, register_model
from quadfire.neurons import NEURONS, QIF
from quadfire.neurons.base import MultiStepNeuron


pytestmark = pytest.mark.usefixtures("one_thread")


# A small input each architecture accepts: (channels, size, builder options). The full-size
# settings (32x32 CIFAR, 48x48 DVS, 224x224 ImageNet) are only needed for parameter counts;
# models added later default to 3 x 32 x 32.
TINY = {"convnet": (1, 8, {}), "resnet19": (3, 8, {}), "vggsnn": (2, 16, {"image_size": 16}),
        "csnn": (1, 8, {"image_size": 8, "widths": (4, 8), "hidden": 16}),
        "plif_net": (1, 8, {"image_size": 8, "channels": 4})}
# Sequence models take time-major vectors [T, N, features]: (T, features, builder options).
SEQUENCES = {"seq_mlp": (3, 7, {"in_channels": 7, "hidden": 16})}


@pytest.mark.parametrize("neuron", sorted(NEURONS))
@pytest.mark.parametrize("name", list_models())
def test_every_model_with_every_neuron(name, neuron):
    torch.manual_seed(0)
    kw = {"learnable": "channel"} if neuron == "plif" else {}
    if name in SEQUENCES:
        steps, features, options = SEQUENCES[name]
        x = torch.rand(steps, 2, features)
    else:
        steps = 2
        c, size, options = TINY.get(name, (3, 32, {}))
        x = torch.rand(2, c, size, size)
    model = create_model(name, neuron=neuron, T=2, num_classes=5, neuron_kwargs=kw, **options)
    out = model(x)
    assert out.shape == (steps, 2, 5)
    assert torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{name}/{neuron}: parameters without gradient: {missing}"
    assert any(isinstance(m, MultiStepNeuron) for m in model.modules())


def test_event_frames_bring_their_own_T():
    model = create_model("convnet", T=4)
    assert model(torch.rand(3, 2, 1, 8, 8)).shape == (3, 2, 10)


def test_neuron_instance_is_copied_per_layer():
    model = create_model("convnet", neuron=QIF(a=0.5, v_th=1.5))
    qifs = [m for m in model.modules() if isinstance(m, QIF)]
    assert len(qifs) == 3 and len({id(q) for q in qifs}) == 3
    assert all(q.a == 0.5 for q in qifs)
    assert all(bn.v_th == 1.5 for bn in model.modules() if isinstance(bn, TdBN))


def test_v_th_from_neuron_kwargs_sets_tdbn_scale():
    model = create_model("convnet", neuron="lif", neuron_kwargs={"v_th": 0.5})
    bns = [m for m in model.modules() if isinstance(m, TdBN)]
    assert bns and all(bn.scale == 0.5 for bn in bns)


def test_factory_neuron_with_v_th_for_tdbn():
    model = create_model("convnet", neuron=lambda c: QIF(v_th=2.0), neuron_kwargs={"v_th": 2.0})
    assert all(bn.scale == 2.0 for bn in model.modules() if isinstance(bn, TdBN))
    assert model(torch.rand(2, 1, 8, 8)).shape == (4, 2, 10)
    with pytest.raises(ValueError, match="may only hold 'v_th'"):
        create_model("convnet", neuron=lambda c: QIF(), neuron_kwargs={"a": 0.3})
    with pytest.raises(ValueError, match="cannot be applied to a neuron instance"):
        create_model("convnet", neuron=QIF(), neuron_kwargs={"a": 0.3})


def test_bad_input_errors_name_the_problem():
    model = create_model("convnet")
    with pytest.raises(ValueError, match=r"\[N, 1, H, W\]"):
        model(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ValueError, match="unknown neuron"):
        create_model("convnet", neuron="hh")
    with pytest.raises(ValueError, match="num_classes"):
        create_model("convnet", num_classes=0)
    with pytest.raises(ValueError, match="T must be"):
        create_model("convnet", T=0)


def test_register_refuses_a_duplicate_name():
    def convnet(**kw):
        raise AssertionError
    with pytest.raises(ValueError, match="already registered"):
        register_model(convnet)


def test_model_compiles_as_one_graph_and_matches_eager():
    torch.manual_seed(0)
    model = create_model("convnet")
    x = torch.rand(3, 1, 8, 8)
    eager = model(x)
    (g_eager,) = torch.autograd.grad(eager.square().sum(), model.body[0].conv.module.weight)
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")(x)
    (g_comp,) = torch.autograd.grad(compiled.square().sum(), model.body[0].conv.module.weight)
    torch.testing.assert_close(compiled, eager)
    torch.testing.assert_close(g_comp, g_eager)


def test_seq_mlp_depth_and_encoding_layer():
    from quadfire.analysis.monitor import encoding_layers

    model = create_model("seq_mlp", T=4, num_classes=20, in_channels=700, hidden=8, layers=3)
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linears] == [(700, 8), (8, 8), (8, 8), (8, 20)]
    assert encoding_layers(model) == {linears[0]}
    assert model(torch.rand(6, 2, 700)).shape == (6, 2, 20)  # sequences bring their own T
    assert model(torch.rand(2, 700)).shape == (4, 2, 20)     # vectors are repeated T times
    with pytest.raises(ValueError, match="layers for model .seq_mlp. must be >= 1"):
        create_model("seq_mlp", layers=0)


@pytest.mark.parametrize("name, shape, size", [("convnet", (2, 1, 16, 16), 8),
                                               ("vggsnn", (2, 2, 32, 32), 48)])
def test_models_name_the_input_size_they_expect(name, shape, size):
    model = create_model(name, T=1, **({"width": 4, "hidden": 8} if name == "convnet" else {}))
    with pytest.raises(InputError, match=rf"built for {size}x{size} inputs"):
        model(torch.rand(*shape))


@pytest.mark.parametrize("name, kw, match", [
    ("convnet", {"width": "8"}, r"model_kwargs.width for model 'convnet' must be int, got '8'"),
    ("convnet", {"width": 0}, r"model_kwargs.width .* must be >= 1"),
    ("sew_resnet18", {"width": 8}, r"unknown model_kwargs \['width'\] for model "
                                   r"'sew_resnet18'; valid: \['in_channels'\]"),
    ("spiking_resnet34", {"in_channels": 1.5}, r"must be int, got 1.5"),
])
def test_model_options_are_checked_by_name_type_and_range(name, kw, match):
    with pytest.raises(ConfigError, match=match):
        create_model(name, **kw)
