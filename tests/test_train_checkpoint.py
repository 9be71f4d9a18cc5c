"""Atomic checkpoints: round trip, RNG restore, corrupt files are clear errors."""
import random

import numpy as np
import pytest
import torch

from quadfire.train import checkpoint as ckpt


def _state():
    model = torch.nn.Linear(3, 2)
    return {"model": model.state_dict(), "optimizer": {}, "epoch": 2, "rng": ckpt.rng_state()}


def test_roundtrip_and_rng_restore(tmp_path):
    torch.manual_seed(1); np.random.seed(1); random.seed(1)
    state = _state()
    path = ckpt.save(state, tmp_path / "last.pt")
    expected = (torch.rand(3), np.random.rand(3), random.random())
    torch.manual_seed(99); np.random.seed(99); random.seed(99)
    loaded = ckpt.load(path)
    assert loaded["epoch"] == 2
    assert torch.equal(loaded["model"]["weight"], state["model"]["weight"])
    ckpt.set_rng_state(loaded["rng"])
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1])
    assert got[2] == expected[2]
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp files left


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_checkpoint_is_a_clear_error(tmp_path, damage):
    path = ckpt.save(_state(), tmp_path / "last.pt")
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00junk" * 50,
                      "empty": b""}[damage])
    with pytest.raises(ckpt.CheckpointError, match="corrupt or truncated"):
        ckpt.load(path)


def test_not_a_checkpoint_and_missing(tmp_path):
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ckpt.CheckpointError, match="not a quadfire checkpoint"):
        ckpt.load(tmp_path / "other.pt")
    with pytest.raises(ckpt.CheckpointError, match="not found"):
        ckpt.load(tmp_path / "nope.pt")


def test_failed_write_keeps_last_good(tmp_path, monkeypatch):
    path = ckpt.save(_state(), tmp_path / "last.pt")
    good = path.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")
    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        ckpt.save(_state(), path)
    assert path.read_bytes() == good
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
