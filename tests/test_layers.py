"""Time folding, tdBN (statistics over time, scale, folding into convs) and the encoder."""
import copy
import gc
import math
import weakref

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from quadfire.errors import InputError
from quadfire.layers import ConvBN, Encoder, StemOnceEncoder, TdBN, TimeFold, conv_bn, fold_tdbn
from quadfire.models import create_model


pytestmark = pytest.mark.usefixtures("one_thread")


def test_timefold_equals_per_step_application():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    x = torch.randn(5, 2, 3, 6, 6)
    torch.testing.assert_close(TimeFold(conv)(x), torch.stack([conv(xt) for xt in x.unbind(0)]))
    assert TimeFold(nn.Flatten())(x).shape == (5, 2, 3 * 36)


def test_timefold_rejects_non_time_major_input():
    with pytest.raises(ValueError, match=r"TimeFold\(Linear\).*\[T, N, \.\.\.\].*got shape \(4,\)"):
        TimeFold(nn.Linear(4, 2))(torch.randn(4))


@given(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(1, 4),
       st.sampled_from([1.0, 1 / math.sqrt(2)]), st.floats(0.25, 2.0), st.integers(0, 1000))
def test_tdbn_train_output_has_zero_mean_and_scale_alpha_vth(T, N, C, hw, alpha, v_th, seed):
    g = torch.Generator().manual_seed(seed)
    x = 3 + 2 * torch.randn(T, N, C, hw, hw, generator=g, dtype=torch.float64)
    if T * N * hw * hw < 4:
        return
    bn = TdBN(C, alpha, v_th).double()
    y = bn(x)
    dims = (0, 1, 3, 4)
    xv = x.var(dim=dims, unbiased=False)
    expected_std = alpha * v_th * torch.sqrt(xv / (xv + bn.eps))
    torch.testing.assert_close(y.mean(dim=dims), torch.zeros(C, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(y.std(dim=dims, unbiased=False), expected_std)


def test_tdbn_statistics_span_time_not_each_step():
    # Step t has mean t: per-step BN would centre every step; tdBN centres the whole sequence,
    # so step means stay spread around 0 and the running mean is the mean over all steps.
    T, N, C = 4, 8, 3
    x = torch.randn(T, N, C, 5, 5) * 0.1 + torch.arange(T, dtype=torch.float32).view(T, 1, 1, 1, 1)
    bn = TdBN(C, momentum=1.0)
    y = bn(x)
    step_means = y.mean(dim=(1, 2, 3, 4))
    assert (step_means[-1] - step_means[0]) > 2.0
    per_step = torch.stack([nn.functional.batch_norm(xt, None, None, training=True)
                            for xt in x.unbind(0)])
    assert not torch.allclose(y, per_step, atol=1e-2)
    torch.testing.assert_close(bn.running_mean, x.mean(dim=(0, 1, 3, 4)))


def test_tdbn_checks_its_input():
    with pytest.raises(ValueError, match=r"TdBN\(4\) expects input \[T, N, 4, \.\.\.\]"):
        TdBN(4)(torch.randn(2, 3, 5, 6, 6))
    with pytest.raises(ValueError, match="alpha > 0"):
        TdBN(4, alpha=0.0)
    with pytest.raises(ValueError, match="outputs"):
        ConvBN(nn.Conv2d(3, 5, 3), TdBN(4))


def _randomize_bn(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, TdBN):
            with torch.no_grad():
                m.weight.copy_(1 + 0.3 * torch.randn(m.num_features, generator=g))
                m.bias.copy_(0.2 * torch.randn(m.num_features, generator=g))


def test_fold_tdbn_on_convbn_float32():
    torch.manual_seed(0)
    unit = nn.Sequential(conv_bn(3, 6, alpha=1 / math.sqrt(2), v_th=0.7),
                         ConvBN(nn.Conv2d(6, 6, 1, bias=True), TdBN(6)))
    _randomize_bn(unit)
    for _ in range(3):
        unit(torch.randn(2, 4, 3, 5, 5) * 2 + 1)
    x = torch.randn(3, 2, 3, 5, 5)
    folded = fold_tdbn(unit)
    assert not any(isinstance(m, TdBN) for m in folded.modules())
    assert unit.training, "fold_tdbn must not change the original model"
    torch.testing.assert_close(folded(x), unit.eval()(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name,shape,options", [
    ("convnet", (2, 1, 8, 8), {}), ("resnet19", (2, 3, 8, 8), {}),
    ("sew_resnet18", (1, 3, 32, 32), {}), ("vggsnn", (1, 2, 16, 16), {"image_size": 16})])
def test_fold_tdbn_gives_the_same_eval_outputs(name, shape, options):
    torch.manual_seed(0)
    model = create_model(name, T=2, **options).double()
    _randomize_bn(model)
    with torch.no_grad():
        for _ in range(2):
            model(torch.rand(*shape, dtype=torch.float64) * 2)
    x = torch.rand(*shape, dtype=torch.float64) * 2
    model.eval()
    with torch.no_grad():
        ref, out = model(x), fold_tdbn(model)(x)
    assert ref.abs().sum() > 0
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=1e-5)


def test_encoder_repeats_images_and_passes_frames():
    enc = Encoder(3, 2)
    img = torch.rand(4, 2, 5, 5)
    out = enc(img)
    assert out.shape == (3, 4, 2, 5, 5) and all(torch.equal(o, img) for o in out.unbind(0))
    frames = torch.rand(7, 4, 2, 5, 5)
    assert enc(frames) is frames


def test_encoder_errors():
    with pytest.raises(ValueError, match=r"\[N, 2, H, W\].*\[T, N, 2, H, W\].*\(4, 3, 5, 5\)"):
        Encoder(3, 2)(torch.rand(4, 3, 5, 5))
    with pytest.raises(TypeError, match="floating point"):
        Encoder(3, 2)(torch.zeros(4, 2, 5, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match="T must be a positive int"):
        Encoder(0, 2)
    with pytest.raises(ValueError, match=r"vectors \[N, 7\] or sequences \[T, N, 7\].*\(4, 6\)"):
        Encoder(3, 7, spatial_dims=0)(torch.rand(4, 6))


def test_stem_once_encoder_matches_encoder_then_stem():
    torch.manual_seed(0)
    # float64: in float32 the tdBN backward's cancellations differ in the last bits.
    stem = conv_bn(1, 4, spike_input=False).double()
    twin = copy.deepcopy(stem)
    x = torch.rand(5, 1, 6, 6, dtype=torch.float64)
    once = StemOnceEncoder(3, 1, stem)(x)
    every = twin(Encoder(3, 1)(x))
    torch.testing.assert_close(once, every)
    (g1,) = torch.autograd.grad(once.square().sum(), stem.conv.module.weight)
    (g2,) = torch.autograd.grad(every.square().sum(), twin.conv.module.weight)
    torch.testing.assert_close(g1, g2)
    torch.testing.assert_close(stem.bn.running_mean, twin.bn.running_mean)
    frames = torch.rand(2, 5, 1, 6, 6, dtype=torch.float64)  # event frames: stem per frame
    assert StemOnceEncoder(3, 1, stem)(frames).shape == (2, 5, 4, 6, 6)
    with pytest.raises(ValueError, match="built for 6x6 inputs"):
        StemOnceEncoder(3, 1, stem, image_size=6)(torch.rand(5, 1, 8, 8, dtype=torch.float64))


def test_encoder_of_vectors_repeats_them_and_passes_sequences():
    enc = Encoder(3, 7, spatial_dims=0)
    vec = torch.rand(4, 7)
    assert enc(vec).shape == (3, 4, 7) and torch.equal(enc(vec)[2], vec)
    seq = torch.rand(28, 4, 7)
    assert enc(seq) is seq


@pytest.mark.parametrize("flag", [False, True])
def test_spike_inputs_are_saved_as_uint8_with_identical_gradients(flag):
    torch.manual_seed(0)
    conv = nn.Conv2d(4, 6, 3, padding=1)
    x = (torch.rand(3, 2, 4, 6, 6) > 0.5).float()
    x_ref, expected = weakref.ref(x), torch.autograd.grad(TimeFold(conv)(x).square().sum(), conv.weight)
    out = TimeFold(conv, spike_input=flag)(x)
    del x
    gc.collect()
    # Autograd keeps the float input alive unless it saved the uint8 copy instead.
    assert (x_ref() is None) == flag
    assert torch.equal(torch.autograd.grad(out.square().sum(), conv.weight)[0], expected[0])


def test_uint8_packing_is_used_only_when_exact():
    from quadfire.layers.spikes import as_uint8_exact
    assert as_uint8_exact(torch.tensor([0.0, 1.0, 2.0])).dtype == torch.uint8
    assert as_uint8_exact(torch.tensor([0.0, 0.5])) is None
    assert as_uint8_exact(torch.tensor([-1.0, 1.0])) is None
    assert as_uint8_exact(torch.tensor([256.0])) is None
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 2, 5, 5, requires_grad=True)
    g_plain = torch.autograd.grad(TimeFold(conv)(x).sum(), conv.weight)
    g_flag = torch.autograd.grad(TimeFold(conv, spike_input=True)(x).sum(), conv.weight)
    assert torch.equal(g_plain[0], g_flag[0])


def test_no_time_step_is_an_input_error():
    """Event input with T' = 0 frames used to divide by zero when time was unfolded."""
    with pytest.raises(InputError, match="needs at least one step"):
        Encoder(3, 2)(torch.rand(0, 4, 2, 5, 5))
    with pytest.raises(InputError, match=r"T >= 1, got shape \(0, 4, 2, 5, 5\)"):
        TimeFold(nn.Conv2d(2, 3, 3))(torch.rand(0, 4, 2, 5, 5))


def test_encoder_names_the_image_size_the_model_was_built_for():
    with pytest.raises(InputError, match=r"built for 8x8 inputs \(image_size=8\), got 16x16"):
        Encoder(3, 1, image_size=8)(torch.rand(2, 1, 16, 16))
    assert Encoder(3, 1, image_size=8)(torch.rand(2, 1, 8, 8)).shape == (3, 2, 1, 8, 8)
