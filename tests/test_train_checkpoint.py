"""Atomic checkpoints: round trip, RNG restore, corrupt files are clear errors."""
import os
import random
import signal
import time

import numpy as np
import pytest
import torch

from quadfire.cli import main
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


@pytest.mark.parametrize("previous", [False, True])
def test_a_signal_during_the_write_cannot_leave_no_checkpoint(tmp_path, monkeypatch, previous):
    """A signal whose handler raises (a second Ctrl-C; torch's SIGCHLD handler when a
    DataLoader worker dies) is held back until the new file is in place, then delivered."""
    path = tmp_path / "last.pt"
    if previous:
        ckpt.save(_state(), path)
    real_save = torch.save

    def save_while_signalled(*a, **k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)  # the handler would run here, half-way through the write
        return real_save(*a, **k)

    def interrupt(signum, frame):
        raise KeyboardInterrupt
    monkeypatch.setattr(torch, "save", save_while_signalled)
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            ckpt.save({**_state(), "epoch": 7}, path)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert ckpt.load(path)["epoch"] == 7
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    assert main(["train", "digits-qif", "--smoke", "--set", f"out_dir={out}"]) == 0
    return out / "digits-qif-s0"


def test_resume_and_eval_name_what_does_not_match(smoke_run, tmp_path, capsys):
    state = ckpt.load(smoke_run / "last.pt")
    state.pop("format")
    del state["scheduler"]
    partial = ckpt.save(state, tmp_path / "partial.pt")
    cases = [
        (["train", "--resume", str(partial)], "lacks the entries ['scheduler'] that resuming "
                                              "needs"),
        (["train", "--resume", str(smoke_run / "last.pt"), "--set", "model_kwargs={width: 4}"],
         "model_kwargs: {} in the run, {'width': 4} given"),
        (["eval", str(smoke_run), "--smoke", "--set", "model=resnet19"],
         "do not match this SpikingNet: "),
        (["eval", str(smoke_run), "--smoke", "--set", "model=vggsnn"],
         "cannot be rebuilt as 'vggsnn'"),
        (["train", "--resume", str(smoke_run)], "is a folder; expected a checkpoint file"),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_resume_continues_only_the_run_it_is(smoke_run, tmp_path, capsys):
    """Neuron, model, dataset, T, epochs, batch size, ... never change under --resume: one
    line, exit 2, naming the setting, the run's value and the value given; nothing written."""
    ckpt = str(smoke_run / "last.pt")
    before = {p.name: p.read_bytes() for p in smoke_run.iterdir() if p.name != ".lock"}
    out = ["--set", f"out_dir={tmp_path}"]
    cases = [
        (["train", "digits-lif", "--smoke", "--resume", ckpt] + out, "neuron: 'qif' in the run, "
                                                                     "'lif' given"),
        (["train", "--resume", ckpt, "--set", "epochs=3"], "epochs: 1 in the run, 3 given"),
        (["train", "--resume", ckpt, "--set", "data.batch_size=3"],
         "data.batch_size: 2 in the run, 3 given"),
        (["train", "--resume", ckpt, "--set", "T=2"], "T: 4 in the run, 2 given"),
        (["train", "--resume", ckpt, "--set", "model=csnn"], "model: 'convnet' in the run, "
                                                             "'csnn' given"),
        (["train", "--resume", ckpt, "--set", "data.dataset=fashion-mnist"],
         "data.dataset: 'digits' in the run, 'fashion-mnist' given"),
        (["train", "--resume", ckpt, "--set", "neuron_kwargs.a=0.5"], "neuron_kwargs: "),
    ]
    for argv, message in cases:
        capsys.readouterr()
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0] and "--resume continues the run" in err[0], \
            (argv, err)
    assert before == {p.name: p.read_bytes() for p in smoke_run.iterdir() if p.name != ".lock"}
    assert not (tmp_path / "digits-lif-s0").exists()  # refused before its folder was made
    # what only changes where and how it reports may change: a finished run is re-evaluated
    assert main(["train", "--resume", ckpt, "--smoke", "--set", "progress=false", "--set",
                 "tensorboard=false", "--set", "data.eval_batch_size=7"]) == 0


def test_a_full_disk_during_the_checkpoint_is_one_line(tmp_path, monkeypatch, capsys):
    """torch reports ENOSPC from its zip writer as a RuntimeError ("unexpected pos"), which no
    errno rule catches: it is named as a failed write, and the run's previous files stay."""
    def full(obj, f, *a, **k):
        f.write(b"PK\x03\x04partial")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")
    monkeypatch.setattr(torch, "save", full)
    assert main(["train", "digits-qif", "--smoke", "--set", f"out_dir={tmp_path}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "could not write the checkpoint" in err[0] and \
        "disk full" in err[0] and "unexpected pos 64 vs 0" in err[0], err
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "digits-qif-s0").iterdir())


@pytest.mark.parametrize("content", [b"0,0.001,2.3,10.0,2.2,12.0\n", b"\x00\xff garbage\x01",
                                     b"epoch,lr,train_loss,train_acc,test_loss,test_acc\nx,y\n"])
def test_a_damaged_metrics_file_on_resume_is_one_line(tmp_path, capsys, content):
    argv = ["train", "digits-qif", "--smoke", "--set", f"out_dir={tmp_path}", "--set",
            "epochs=2", "--set", "progress=false"]
    from quadfire.train import engine
    real, calls = engine.evaluate, []

    def stop_after_the_first_epoch(*a, **k):
        calls.append(1)
        if len(calls) == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        return real(*a, **k)
    with pytest.MonkeyPatch.context() as m:
        m.setattr(engine, "evaluate", stop_after_the_first_epoch)
        assert main(argv) == 143
    metrics = tmp_path / "digits-qif-s0" / "metrics.csv"
    metrics.write_bytes(content)
    capsys.readouterr()
    assert main(argv + ["--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{metrics} is not a metrics file" in err[0] and \
        "expected CSV with the header epoch,lr," in err[0], err
    assert metrics.read_bytes() == content
