"""`quadfire train / eval / recipes / compare` through the real CLI entry point."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from quadfire.cli import main
from quadfire.train import checkpoint

from system import always_overcommit

NARROW = ["--set", "model_kwargs={width: 8, hidden: 32}", "--set", "progress=false",
          "--set", "tensorboard=false", "--set", "lr=5e-3"]
TINY = NARROW + ["--set", "data.batch_size=128"]


def _table(out: str, title: str) -> dict[str, list[str]]:
    """The study table printed after `title`: {variant: its columns}."""
    lines = out[out.index(title):].splitlines()
    assert lines[1].split()[:2] == ["variant", "neuron"] and "test acc %" in lines[1]
    rows = {}
    for line in lines[2:]:
        if not line.strip() or line.startswith("wrote "):
            break
        rows[line.split()[0]] = line.split()[1:]
    return rows


def test_demo_one_epoch_prints_qif_and_lif(tmp_path, capsys):
    """`quadfire demo` is the digits demo (here 1 epoch of a narrow convnet)."""
    assert main(["demo", "--set", "epochs=1", "--set", f"out_dir={tmp_path}", *NARROW]) == 0
    rows = _table(capsys.readouterr().out, "digits demo")
    assert set(rows) == {"qif", "lif"}
    for neuron, seeds, acc, best, rate, *_ in rows.values():
        assert 50 < float(acc) <= 100 and 0 < float(rate) < 1
    saved = json.loads((tmp_path / "demo" / "study.json").read_text())
    assert [r["variant"] for r in saved["runs"]] == ["qif", "lif"]
    # The demo retrains on every call (it is the main job), writing over its own runs only.
    assert main(["demo", "--set", "epochs=1", "--set", f"out_dir={tmp_path}", *NARROW]) == 0
    assert "reusing" not in capsys.readouterr().err


def test_train_without_a_recipe_points_at_the_demo_and_the_recipes(capsys):
    """No recipe, or a setting's name alone, is a user's mistake: one line that says what to
    run instead, and exit 2."""
    assert main(["train"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "quadfire demo" in err[0] and "quadfire recipes" in err[0]
    assert main(["train", "digits"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "digits-qif and digits-lif" in err[0] and "compare digits" in err[0]


def test_eval_reproduces_the_training_accuracy(tmp_path, capsys):
    assert main(["train", "digits-qif", "--set", "epochs=1", "--set", f"out_dir={tmp_path}",
                 *TINY]) == 0
    run_dir = tmp_path / "digits-qif-s0"
    trained = json.loads((run_dir / "report.json").read_text())
    capsys.readouterr()
    assert main(["eval", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "test accuracy" in out and "SOPs" in out and "body.1" in out
    report = json.loads((run_dir / "report.json").read_text())
    assert report["eval"]["accuracy"] == pytest.approx(trained["accuracy"])
    assert report["eval"]["firing_rate"] == pytest.approx(trained["firing_rate"])
    assert report["eval"]["energy_pj"]["total"] > 0


def test_compare_smoke_reports_mean_and_std(tmp_path, capsys):
    assert main(["compare", "digits", "--smoke", "--seeds", "0", "1",
                 "--set", f"out_dir={tmp_path}"]) == 0
    rows = _table(capsys.readouterr().out, "compare digits")
    assert list(rows) == ["qif", "lif"] and "+-" in " ".join(rows["qif"])
    assert sorted(p.name for p in (tmp_path / "study-digits").iterdir() if p.is_dir()) == [
        "lif-s0", "lif-s1", "qif-s0", "qif-s1"]


def test_recipes_lists_every_setting(capsys):
    assert main(["recipes"]) == 0
    out = capsys.readouterr().out
    assert "cifar10-resnet19-t4-qif" in out and "96.86" in out and "imagenet" in out
    # Another work's figure is never shown as the paper's: each row says whose it is.
    assert "paper %" not in out
    line = next(ln for ln in out.splitlines() if ln.startswith("fmnist-csnn-t4-qif "))
    assert "93.08" in line and "IF neurons" in line


@pytest.mark.parametrize("args, message", [
    (["train", "digits-qif", "--set", "lrr=1"], "unknown config key(s) ['lrr']; valid keys:"),
    (["train", "digits-qif", "--set", "data.batch_size=0"], "data.batch_size must be a positive int"),
    (["train", "nope-qif"], "shipped recipes:"),
    (["train", "digits-qif", "--resume", "missing.pt"], "checkpoint not found: missing.pt"),
    (["eval", "nowhere"], "checkpoint not found"),
    (["train", "--resume"], "--resume without a recipe needs the checkpoint path"),
])
def test_user_errors_are_one_line_messages(args, message, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_smoke_with_mixed_precision_and_clipping(amp, tmp_path):
    assert main(["train", "digits-qif", "--smoke", "--set", f"amp={amp}", "--set", "grad_clip=1",
                 "--set", "optimizer=sgd", "--set", "weight_decay=5e-4",
                 "--set", f"out_dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "digits-qif-s0" / "report.json").read_text())
    assert report["settings"]["amp"] == amp and report["smoke"]
    assert main(["eval", str(tmp_path / "digits-qif-s0"), "--smoke"]) == 0
    # autocast is applied: the same steps in full precision end with other weights (scaling
    # by a power of two, all fp16's GradScaler adds, would change no bit)
    assert main(["train", "digits-qif", "--smoke", "--set", "amp=none", "--set", "grad_clip=1",
                 "--set", "optimizer=sgd", "--set", "weight_decay=5e-4",
                 "--set", f"out_dir={tmp_path / 'full'}"]) == 0
    full = json.loads((tmp_path / "full" / "digits-qif-s0" / "report.json").read_text())
    assert full["replica_digests"] != report["replica_digests"]


def test_compile_wraps_the_model_it_trains(tmp_path, monkeypatch):
    """compile=true hands the network to torch.compile (the run below trains what it
    returns); the equality with eager is checked by the next test."""
    import torch
    compiled = []

    def spy(model, **kwargs):
        compiled.append(model)
        return model
    monkeypatch.setattr(torch, "compile", spy)
    assert main(["train", "digits-qif", "--smoke", "--set", "compile=true", "--set",
                 f"out_dir={tmp_path}"]) == 0
    assert len(compiled) == 1 and type(compiled[0]).__name__ == "SpikingNet"


def _train_until_first_checkpoint(tmp_path):
    """A real `quadfire train` process (50 epochs), returned once its first last.pt exists
    (or it ended, or 240 s passed): (process, checkpoint path)."""
    cmd = [sys.executable, "-m", "quadfire.cli", "train", "digits-qif", "--set", "epochs=50",
           "--set", f"out_dir={tmp_path}", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    ckpt = tmp_path / "digits-qif-s0" / "last.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    return proc, ckpt


def test_sigterm_to_the_cli_checkpoints_and_exits_143(tmp_path):
    """A real `quadfire train` process, sent SIGTERM once its first checkpoint exists."""
    proc, ckpt = _train_until_first_checkpoint(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "resume with --resume" in err
    state = checkpoint.load(ckpt)
    assert 1 <= state["epoch"] < 50
    assert json.loads((ckpt.parent / "report.json").read_text())["interrupted"]


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_checkpoints_and_exits_130_and_a_second_one_stops_at_once(tmp_path, presses):
    """One Ctrl-C: the step finishes, last.pt is written, exit 130. A second one right after:
    the run stops at once (no waiting for the epoch), still with exit 130, no traceback and a
    checkpoint that loads (a press during its write waits for the file to be complete)."""
    proc, ckpt = _train_until_first_checkpoint(tmp_path)
    for _ in range(presses):
        proc.send_signal(signal.SIGINT)
        time.sleep(0.05)
    out, err = proc.communicate(timeout=240)
    # The second press may come after the first one's stop is complete, while the interpreter
    # exits: Python then restores the default SIGINT action and dies by it, which a shell
    # reports as 130 all the same.
    assert proc.returncode in ((130,) if presses == 1 else (130, -signal.SIGINT)), err[-2000:]
    assert "Traceback" not in err
    assert 1 <= checkpoint.load(ckpt)["epoch"] < 50
    lines = err.strip().splitlines()
    assert lines[-1] in ([f"stopped by signal 2; resume with --resume {ckpt}"] if presses == 1
                         else [f"stopped by signal 2; resume with --resume {ckpt}",
                               "quadfire train: interrupted"]), lines[-3:]
    if lines[-1].startswith("stopped"):
        assert json.loads((ckpt.parent / "report.json").read_text())["interrupted"]


def test_sigterm_to_the_process_group_with_workers_checkpoints_and_exits_143(tmp_path):
    """What `timeout`, Slurm and `kill -- -PGID` do: SIGTERM to the main process and its
    DataLoader workers at once. The workers leave it to the main process, which stops after
    the current step, writes last.pt and exits 143."""
    cmd = [sys.executable, "-m", "quadfire.cli", "train", "digits-qif", "--set", "epochs=50",
           "--set", f"out_dir={tmp_path}", "--set", "data.workers=2", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True)
    ckpt = tmp_path / "digits-qif-s0" / "last.pt"
    deadline = time.time() + 240
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGTERM)  # the session leader's group: main and workers
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    assert "Traceback" not in err and "resume with --resume" in err
    state = checkpoint.load(ckpt)
    assert 1 <= state["epoch"] < 50
    assert json.loads((ckpt.parent / "report.json").read_text())["interrupted"]


def test_resume_from_a_checkpoint_alone_continues_its_run(tmp_path, capsys, monkeypatch):
    from quadfire.train import engine

    real = engine.evaluate

    def evaluate_then_stop(*a, **k):  # Ctrl-C while the first epoch is evaluated
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)
    with monkeypatch.context() as m:
        m.setattr(engine, "evaluate", evaluate_then_stop)
        assert main(["train", "digits-qif", "--set", "epochs=2", "--set", f"out_dir={tmp_path}",
                     *TINY]) == 130
    ckpt = tmp_path / "digits-qif-s0" / "last.pt"
    assert checkpoint.load(ckpt)["epoch"] == 1
    assert main(["train", "--resume", str(ckpt)]) == 0
    assert checkpoint.load(ckpt)["epoch"] == 2
    rows = (ckpt.parent / "metrics.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]


def test_download_flag_sets_the_data_option_in_order():
    from quadfire.cli import build_parser
    from quadfire.train.recipes import config_for

    args = build_parser().parse_args(["train", "cifar10-resnet19-t4-qif", "--set", "epochs=1",
                                      "--download"])
    assert args.overrides == ["epochs=1", "data.download=true"]
    cfg = config_for(args.recipe, args.overrides, smoke=False)
    assert cfg.data.download is True and cfg.epochs == 1
    later = build_parser().parse_args(["train", "cifar10-resnet19-t4-qif", "--download",
                                       "--set", "data.download=false"])
    assert config_for(later.recipe, later.overrides, smoke=False).data.download is False


def test_compiled_training_matches_eager(tmp_path):
    """`compile=true` wraps the model in torch.compile (inductor on CPU, fused neurons as custom
    ops); one epoch must train like eager: compiled kernels may round differently, so spikes can
    flip here and there, but accuracy and firing rate stay close."""
    reports = {}
    for flag in ("false", "true"):
        out = tmp_path / flag
        assert main(["train", "digits-qif", "--set", "epochs=1", "--set", f"compile={flag}",
                     "--set", f"out_dir={out}", *NARROW]) == 0
        reports[flag] = json.loads((out / "digits-qif-s0" / "report.json").read_text())
    eager, compiled = reports["false"], reports["true"]
    assert compiled["settings"]["compile"] is True
    assert abs(compiled["accuracy"] - eager["accuracy"]) < 3.0
    assert abs(compiled["firing_rate"] - eager["firing_rate"]) < 0.01


def test_a_last_batch_of_one_sample_does_not_stop_the_epoch(tmp_path):
    """T = 1 and 1438 training digits in batches of 479 leave one sample over, which batch
    normalisation cannot normalise alone: the batch is dropped, not the epoch."""
    assert main(["train", "digits-qif", "--set", "T=1", "--set", "epochs=1", "--set",
                 f"out_dir={tmp_path}", *NARROW, "--set", "data.batch_size=479"]) == 0
    state = checkpoint.load(tmp_path / "digits-qif-s0" / "last.pt")
    assert state["epoch"] == 1 and state["scheduler"]["last_epoch"] == 3


@pytest.mark.skipif(always_overcommit(),
                    reason="always-overcommit kernels grant the allocation; filling it would "
                           "meet the out-of-memory killer")
def test_a_model_too_large_for_memory_is_one_line(tmp_path, capsys):
    assert main(["train", "digits-qif", "--smoke", "--set", f"out_dir={tmp_path}", "--set",
                 "model_kwargs={width: 8, hidden: 100000000000}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'hidden': 100000000000} does not fit in memory" in err[0] and \
        "asked for 102400000000000 bytes" in err[0], err


def test_debug_shows_the_traceback_of_a_user_error(monkeypatch, capsys):
    from quadfire.errors import CheckpointError

    assert main(["train", "digits-qif", "--resume", "missing.pt"]) == 2
    with pytest.raises(CheckpointError, match="checkpoint not found: missing.pt"):
        main(["--debug", "train", "digits-qif", "--resume", "missing.pt"])
    monkeypatch.setenv("QUADFIRE_DEBUG", "1")
    with pytest.raises(CheckpointError, match="checkpoint not found: missing.pt"):
        main(["train", "digits-qif", "--resume", "missing.pt"])


def test_the_report_sets_the_paper_accuracy_beside_the_achieved_one(tmp_path):
    assert main(["train", "digits-qif", "--smoke", "--set", "paper_accuracy=42.5", "--set",
                 "paper_reference=a paper", "--set", f"out_dir={tmp_path}"]) == 0
    report = json.loads((tmp_path / "digits-qif-s0" / "report.json").read_text())
    assert (report["paper_accuracy"], report["paper_reference"]) == (42.5, "a paper")
    assert report["accuracy_minus_paper"] == pytest.approx(report["accuracy"] - 42.5)
