"""Losses: TET against its definition, the T = 1, lambda = 0 identity, errors."""
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from quadfire.train.losses import make_loss, mean_ce, rate_mse, tet_loss


def logits(T, N, K, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(T, N, K, generator=g, dtype=torch.float64), torch.randint(0, K, (N,), generator=g)


@given(st.integers(1, 5), st.integers(2, 8), st.integers(0, 100))
def test_tet_with_lambda_zero_and_T_one_is_ce_on_the_mean(N, K, seed):
    out, y = logits(1, N, K, seed)
    torch.testing.assert_close(tet_loss(out, y, lam=0.0), mean_ce(out, y))
    torch.testing.assert_close(mean_ce(out, y), F.cross_entropy(out[0], y))


@given(st.integers(1, 4), st.integers(1, 5), st.floats(0, 1), st.floats(-1, 2), st.integers(0, 100))
def test_tet_matches_its_definition(T, N, lam, phi, seed):
    out, y = logits(T, N, 4, seed)
    ce = sum(F.cross_entropy(o, y) for o in out.unbind(0)) / T
    mse = ((out - phi) ** 2).mean()
    torch.testing.assert_close(tet_loss(out, y, lam, phi), (1 - lam) * ce + lam * mse)


def test_tet_differs_from_mean_ce_over_time():
    out, y = logits(4, 6, 5)
    assert not torch.allclose(tet_loss(out, y, lam=0.0), mean_ce(out, y))


def test_make_loss_and_gradients():
    out, y = logits(3, 4, 5)
    out.requires_grad_(True)
    for name in ("ce", "tet", "mse"):
        make_loss(name)(out, y).backward()
        assert out.grad is not None and torch.isfinite(out.grad).all()
    torch.testing.assert_close(make_loss("tet", 0.2, 0.5)(out, y), tet_loss(out, y, 0.2, 0.5))


def test_errors_name_the_problem():
    out, y = logits(2, 3, 4)
    with pytest.raises(ValueError, match=r"\[T, N, classes\]"):
        mean_ce(out[0], y)
    with pytest.raises(ValueError, match="int64 class targets"):
        tet_loss(out, y.float())
    with pytest.raises(ValueError, match="disagree on N"):
        mean_ce(out, y[:2])
    with pytest.raises(ValueError, match="lambda"):
        tet_loss(out, y, lam=1.5)
    with pytest.raises(ValueError, match="unknown loss"):
        make_loss("hinge")
    with pytest.raises(ValueError, match="loss=mse needs 0"):
        make_loss("mse", label_smoothing=0.1)


def test_rate_mse_is_the_squared_error_of_the_mean_output_to_one_hot():
    out, y = logits(3, 4, 5)
    rates = out.mean(0)
    onehot = torch.zeros(4, 5, dtype=out.dtype)
    onehot[torch.arange(4), y] = 1
    torch.testing.assert_close(rate_mse(out, y), ((rates - onehot) ** 2).mean())
