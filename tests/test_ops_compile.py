"""torch.compile over fused neurons: custom-op registration, fake kernels, no graph breaks."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from quadfire.neurons import LIF, QIF
from quadfire.ops import cpu, fused, pack


@pytest.fixture(scope="module", autouse=True)
def built():
    cpu.require()


class ConvQIF(nn.Module):
    """conv -> per-channel learnable QIF -> linear -> QIF, on [T, N, C, H, W]."""

    def __init__(self, discretization: str = "euler"):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.spike1 = QIF(learnable="channel", channels=3, discretization=discretization)
        self.fc = nn.Linear(3 * 4 * 4, 5)
        self.spike2 = QIF(reset="soft")

    def forward(self, x):
        steps, n = x.shape[:2]
        y = self.conv(x.flatten(0, 1)).unflatten(0, (steps, n))
        return self.spike2(self.fc(self.spike1(y).flatten(2)))


def _grads(model, x):
    model.zero_grad()
    out = model(x)
    (out * torch.linspace(-1, 1, out.shape[-1])).sum().backward()
    return out, [p.grad.clone() for p in model.parameters()]


# opcheck's own aot_dispatch_dynamic step reads .grad of a non-leaf it creates internally
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.parametrize("op", ["forward", "backward"])
def test_custom_ops_pass_opcheck(op):
    """Each op alone; their autograd is `fused.Fused`, tested through the models below."""
    x = torch.randn(5, 12) + 0.5
    u0 = torch.zeros(12)
    p = QIF(learnable="scalar").params(2)
    t = pack.pack(p, (12,), torch.float32, x.device)
    table = t.table.detach()
    fwd, bwd = fused.OPS["cpu"]
    args = (x, u0, table, list(pack.forward_settings(p, t, need_h=True)))
    if op == "backward":
        _, _, h = fwd(*args)
        settings = pack.backward_settings(p, t)._replace(state_grad=1)
        args = (torch.randn(5, 12), torch.randn(12), None, h, u0, table, list(settings),
                torch.float32)
        fwd = bwd
    result = torch.library.opcheck(fwd, args)
    assert all(v == "SUCCESS" for v in result.values()), result


@pytest.mark.parametrize("discretization", ["euler", "exact", "hybrid"])
def test_fullgraph_compile_forward_and_backward_aot(discretization):
    """The exact map's derived rows (exp(a d), ...) are computed inside the compiled graph."""
    torch.manual_seed(0)
    model = ConvQIF(discretization)
    x = torch.randn(4, 3, 2, 4, 4) + 0.5
    compiled = torch.compile(model, fullgraph=True, backend="aot_eager")
    out, grads = _grads(compiled, x)
    ref, ref_grads = _grads(model, x)
    assert torch.equal(out, ref)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)


def test_fullgraph_compile_with_inductor():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 8), QIF(), nn.Linear(8, 4), LIF())
    x = torch.randn(5, 3, 6) + 0.5
    compiled = torch.compile(model, fullgraph=True)
    out, grads = _grads(compiled, x)
    ref, ref_grads = _grads(model, x)
    assert torch.equal(out, ref)
    for g, r in zip(grads, ref_grads):
        torch.testing.assert_close(g, r, rtol=1e-5, atol=1e-6)
