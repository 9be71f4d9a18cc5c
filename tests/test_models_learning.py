"""The digits convnet learns: a short real training run with each loss."""
import pytest
import torch
from sklearn.datasets import load_digits

from quadfire.models import create_model
from quadfire.train.losses import make_loss


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    x = torch.tensor(d.images / 16.0, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(d.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@pytest.mark.parametrize("loss", ["ce", "tet"])
def test_convnet_learns_digits_in_two_epochs(digits, loss):
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        (xtr, ytr), (xte, yte) = digits
        model = create_model("convnet", neuron="qif", T=4)
        opt = torch.optim.Adam(model.parameters(), lr=2e-3)
        fn = make_loss(loss)
        for _ in range(2):
            for i in range(0, len(ytr), 64):
                opt.zero_grad()
                fn(model(xtr[i:i + 64]), ytr[i:i + 64]).backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = (model(xte).mean(0).argmax(1) == yte).float().mean().item()
    finally:
        torch.set_num_threads(before)
    assert acc >= 0.9, f"{loss}: test accuracy {acc:.3f} after 2 epochs"
