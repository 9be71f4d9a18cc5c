"""The training loop on the digits recipe: learning, run-directory files, exact resume after a
real SIGTERM (at an epoch boundary and mid-epoch), corrupt checkpoints, losses, schedule."""
import json
import os
import signal

import pytest
import torch
import torch.nn.functional as F

from quadfire.errors import DataLoaderWorkerError, NonFiniteError
from quadfire.train import checkpoint, engine
from quadfire.train.config import load_config
from quadfire.train.optim import build_optimizer, lr_factor, param_groups
from quadfire.train.recipes import read_recipe


def small_cfg(tmp_path, name, *overrides):
    """The digits recipe with a narrow convnet: the same code path, seconds per epoch."""
    return load_config(read_recipe("digits-qif"), [
        f"out_dir={tmp_path}", f"run_name={name}", "progress=false", "tensorboard=false",
        "model_kwargs={width: 8, hidden: 32}", "data.batch_size=128", "epochs=2", "lr=5e-3",
        "warmup_epochs=0.5", "weight_decay=1e-4", "label_smoothing=0.1", "grad_clip=5",
        *overrides])


def signal_once_on_call(func, at_call):
    """Wrap `func` so its `at_call`-th call delivers a real SIGTERM to this process."""
    calls = {"n": 0}

    def wrapped(*a, **k):
        calls["n"] += 1
        if calls["n"] == at_call:
            os.kill(os.getpid(), signal.SIGTERM)
        return func(*a, **k)
    return wrapped


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("full")
    cfg = small_cfg(tmp, "full", "tensorboard=true")
    return cfg, engine.fit(cfg)


def test_training_learns_and_writes_the_run_directory(uninterrupted):
    cfg, report = uninterrupted
    assert report.accuracy > 50 and not report.interrupted  # chance: 10%
    assert report.epochs_completed == 2 and report.replicas_identical
    run_dir = cfg.run_dir
    assert {"config.yaml", "metrics.csv", "report.json", "last.pt", "tb"} <= {
        p.name for p in run_dir.iterdir()}
    assert load_config(run_dir / "config.yaml") == cfg
    rows = (run_dir / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,lr,train_loss,train_acc,test_loss,test_acc" and len(rows) == 3
    saved = json.loads((run_dir / "report.json").read_text())
    assert saved["accuracy"] == pytest.approx(report.accuracy)
    assert "paper_accuracy" in saved and saved["settings"]["data"]["dataset"] == "digits"
    rates = saved["layer_firing_rates"]
    assert len(rates) == 3 and all(0 < r < 1 for r in rates.values())
    assert any(p.name.startswith("events.out.tfevents") for p in (run_dir / "tb").iterdir())
    assert checkpoint.load(run_dir / "last.pt")["epoch"] == 2


@pytest.mark.parametrize("where", ["epoch-boundary", "mid-epoch"])
def test_sigterm_then_resume_matches_uninterrupted(tmp_path, monkeypatch, uninterrupted, where):
    _, full = uninterrupted
    cfg = small_cfg(tmp_path, "stopped")
    with monkeypatch.context() as m:
        if where == "epoch-boundary":  # signal while evaluating epoch 0: stop after it
            m.setattr(engine, "evaluate", signal_once_on_call(engine.evaluate, 1))
        else:  # signal during training step 16 (epoch 1, step 4 of 12)
            criterion = signal_once_on_call(engine.loss_fn(cfg), 16)
            m.setattr(engine, "loss_fn", lambda c: criterion)
        stopped = engine.fit(cfg)
    assert stopped.interrupted and stopped.signal == signal.SIGTERM
    state = checkpoint.load(cfg.run_dir / "last.pt")
    assert (state["epoch"], state["step"]) == ((1, 0) if where == "epoch-boundary" else (1, 4))
    assert stopped.replica_digests != full.replica_digests
    resumed = engine.fit(cfg, resume=cfg.run_dir / "last.pt")
    assert not resumed.interrupted and resumed.epochs_completed == 2
    assert resumed.replica_digests == full.replica_digests  # bit-identical weights
    # wall time adds up over the interruption: the part before the stop is carried over
    assert 0 < state["wall_s"] <= stopped.wall_s < resumed.wall_s
    assert resumed.accuracy == full.accuracy
    assert resumed.best_accuracy == full.best_accuracy
    # every row as an uninterrupted run wrote it: the interrupted epoch's lr is its first
    # step's, and its loss and accuracy count the steps trained before the stop too
    full_cfg = uninterrupted[0]
    assert (cfg.run_dir / "metrics.csv").read_text() == \
        (full_cfg.run_dir / "metrics.csv").read_text()
    again = engine.fit(cfg, resume=cfg.run_dir / "last.pt")  # already finished: evaluate only
    assert again.accuracy == full.accuracy and again.epochs_completed == 2
    # the best accuracy is the run's, not only that of the epochs trained since the resume
    assert again.best_accuracy == full.best_accuracy > 0


def test_corrupt_checkpoint_refuses_to_resume_and_is_kept(tmp_path):
    cfg = small_cfg(tmp_path, "corrupt", "epochs=1")
    path = cfg.run_dir / "last.pt"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(checkpoint.CheckpointError, match="corrupt or truncated"):
        engine.fit(cfg, resume=path)
    assert path.read_bytes() == b"PK\x03\x04 truncated"


@pytest.mark.parametrize("loss", ["ce", "tet"])
@pytest.mark.parametrize("eps", [0.0, 0.1, 0.3])
def test_label_smoothing_matches_torch(loss, eps):
    cfg = load_config(None, [f"loss={loss}", f"label_smoothing={eps}", "tet_lambda=0.2"])
    out = torch.randn(3, 5, 7, dtype=torch.float64)
    y = torch.randint(0, 7, (5,))
    if loss == "ce":
        expected = F.cross_entropy(out.mean(0), y, label_smoothing=eps)
    else:
        per_step = F.cross_entropy(out.flatten(0, 1), y.repeat(3), label_smoothing=eps)
        expected = 0.8 * per_step + 0.2 * (out - 1.0).square().mean()
    torch.testing.assert_close(engine.loss_fn(cfg)(out, y), expected)


def test_schedule_warmup_then_cosine():
    assert lr_factor(0, 100, 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(10, 100, 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10, 0.0) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10, 0.1) == pytest.approx(0.1)
    values = [lr_factor(s, 100, 10, 0.0) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:]))


def test_no_weight_decay_on_norms_biases_and_neurons():
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.BatchNorm2d(4),
                                torch.nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 5e-4)
    assert {tuple(p.shape) for p in decay["params"]} == {(4, 1, 3, 3), (2, 4)}
    assert no_decay["weight_decay"] == 0 and len(no_decay["params"]) == 4
    for name in ("sgd", "adam", "adamw"):
        cfg = load_config(None, [f"optimizer={name}", "weight_decay=5e-4"])
        opt = build_optimizer(model, cfg)
        assert [g["weight_decay"] for g in opt.param_groups] == [5e-4, 0.0]


def test_data_order_is_a_function_of_seed_and_epoch():
    loader = torch.utils.data.DataLoader(
        list(range(20)), batch_size=20,
        sampler=torch.utils.data.RandomSampler(range(20), generator=torch.Generator()))
    cfg = load_config(None, ["seed=3"])
    orders = []
    for epoch in (0, 1, 0):
        engine.start_epoch(loader, cfg, epoch, rank=0)
        orders.append(next(iter(loader)).tolist())
    assert orders[0] == orders[2] != orders[1]


class Poisoned(torch.utils.data.Dataset):
    """A dataset whose `at`-th read (counted in the process that reads it) is spoilt: a NaN
    pixel, or the reading worker process killed outright."""

    def __init__(self, data, at, spoil):
        self.data, self.at, self.spoil, self.reads = data, at, spoil, 0

    def __len__(self):
        return len(self.data)

    def __getitem__(self, i):
        x, y = self.data[i]
        self.reads += 1
        if self.reads == self.at:
            if self.spoil == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            x = x.clone()
            x.view(-1)[0] = float(self.spoil)
        return x, y


def spoilt_run(tmp_path, monkeypatch, name, at, spoil, workers=0, *overrides):
    """A 2-epoch smoke run (2 steps of 2 samples per epoch) whose `at`-th sample is spoilt."""
    from quadfire.data import Loader
    from quadfire.train.recipes import config_for
    real = engine.build_loaders

    def loaders(cfg, T, distributed=False):
        train, test, info = real(cfg, T, distributed=distributed)
        spoilt = Loader(Poisoned(train.dataset, at, spoil), batch_size=train.batch_size,
                        sampler=train.sampler, num_workers=workers,
                        persistent_workers=workers > 0)
        return spoilt, test, info
    monkeypatch.setattr(engine, "build_loaders", loaders)
    return config_for("digits-qif", ["epochs=2", f"out_dir={tmp_path}", f"run_name={name}",
                                     *overrides], smoke=True)


def finite_state(path):
    state = checkpoint.load(path)["model"]
    return all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point())


def test_a_nonfinite_batch_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch):
    cfg = spoilt_run(tmp_path, monkeypatch, "stop", 5, "nan")  # epoch 2, step 1
    with pytest.raises(NonFiniteError, match=r"non-finite (BN statistics|gradients|loss) at "
                                             r"epoch 2, step 1 of 2.*last.pt was not "
                                             r"overwritten.*nonfinite=skip"):
        engine.fit(cfg)
    state = checkpoint.load(cfg.run_dir / "last.pt")
    assert (state["epoch"], state["step"]) == (1, 0) and finite_state(cfg.run_dir / "last.pt")


def test_nonfinite_skip_leaves_weights_and_bn_statistics_untouched(tmp_path, monkeypatch,
                                                                   capsys):
    cfg = spoilt_run(tmp_path, monkeypatch, "skip", 3, "inf", 0, "nonfinite=skip")
    report = engine.fit(cfg)
    assert report.skipped_steps == 1 and not report.interrupted
    assert "epoch 1, step 2 of 2: skipped" in capsys.readouterr().err
    assert finite_state(cfg.run_dir / "last.pt")


def test_a_dead_worker_saves_the_position_before_the_error(tmp_path, monkeypatch):
    """A worker killed on its own (here SIGKILL, as the out-of-memory killer does) surfaces at
    the next batch fetch, between steps: the run saves where it was and says how to resume."""
    cfg = spoilt_run(tmp_path, monkeypatch, "killed", 7, "kill", 1)  # epoch 2, batch 2
    with pytest.raises(DataLoaderWorkerError, match=r"worker.*resume with --resume"):
        engine.fit(cfg)
    state = checkpoint.load(cfg.run_dir / "last.pt")
    assert state["epoch"] == 1 and state["step"] in (0, 1) and finite_state(cfg.run_dir / "last.pt")


def test_exact_resume_with_augmentation_and_dropout(tmp_path, monkeypatch):
    """The digits convnet draws no random numbers per step, so it cannot tell whether a
    mid-epoch resume restores the RNG states. The PLIF paper's net (dropout masks fixed over
    time) on Fashion-MNIST with random crops draws them both in the data and in the model."""
    import numpy as np
    from test_data_mnist import write_idx

    rng = np.random.default_rng(0)
    folder = tmp_path / "data" / "fashion-mnist"
    for split, n in (("train", 96), ("t10k", 32)):
        write_idx(folder, f"{split}-images-idx3-ubyte", rng.integers(0, 256, (n, 28, 28),
                                                                     dtype=np.uint8), True)
        write_idx(folder, f"{split}-labels-idx1-ubyte", rng.integers(0, 10, n).astype(np.uint8),
                  True)

    def cfg(name):
        return load_config(read_recipe("fmnist-plifnet-t8-qif"), [
            f"out_dir={tmp_path}", f"run_name={name}", "progress=false", "tensorboard=false",
            "T=2", "epochs=2", "model_kwargs={channels: 4, dropout: 0.5, vote: 2}",
            f"data.root={tmp_path / 'data'}", "data.crop_padding=2", "data.cutout=6"])
    full = engine.fit(cfg("full"))
    stopped_cfg = cfg("stopped")
    with monkeypatch.context() as m:  # SIGTERM in training step 9: epoch 2, step 3 of 6
        criterion = signal_once_on_call(engine.loss_fn(stopped_cfg), 9)
        m.setattr(engine, "loss_fn", lambda c: criterion)
        stopped = engine.fit(stopped_cfg)
    state = checkpoint.load(stopped_cfg.run_dir / "last.pt")
    assert stopped.interrupted and (state["epoch"], state["step"]) == (1, 3)
    resumed = engine.fit(stopped_cfg, resume=stopped_cfg.run_dir / "last.pt")
    assert resumed.replica_digests == full.replica_digests
    assert (stopped_cfg.run_dir / "metrics.csv").read_text() == \
        (tmp_path / "full" / "metrics.csv").read_text()
