"""The run directory: one live run at a time (a lock the kernel releases when the holder dies),
and an existing run is replaced only when asked (--overwrite) or when it was a scratch run."""
import json
import os
import signal
import subprocess
import sys
import textwrap

import pytest

from quadfire.cli import main
from quadfire.errors import RunDirError
from quadfire.train import engine, rundir
from quadfire.train.report import RunReport


def finished_report(run_dir, scratch=False, interrupted=False, done=3, epochs=3):
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "report.json").write_text(json.dumps(
        {"accuracy": 90.0, "epochs_completed": done, "epochs": epochs,
         "interrupted": interrupted, "scratch": scratch, "settings": {"epochs": epochs}}))
    (run_dir / "last.pt").write_bytes(b"weights")
    (run_dir / "metrics.csv").write_text("epoch\n0\n")


def test_a_second_run_names_the_holder(tmp_path):
    with rundir.claim(tmp_path / "run"):
        with pytest.raises(RunDirError, match=rf"in use by another run \(pid {os.getpid()} on "
                                              rf"host .+, started 20\d\d-"):
            rundir.claim(tmp_path / "run")
    rundir.claim(tmp_path / "run").release()  # released with the first


def test_the_lock_goes_with_its_process(tmp_path):
    """Another process holding the lock is named; once it dies (SIGKILL, no cleanup at all)
    the lock is free again: the kernel drops an flock with its holder."""
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, json, os, time
        fd = os.open({str(tmp_path / rundir.LOCK_NAME)!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.write(fd, json.dumps({{"pid": os.getpid(), "host": "elsewhere",
                                  "started": "2026-01-01T00:00:00"}}).encode())
        print("locked", flush=True)
        time.sleep(120)""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunDirError, match=f"pid {holder.pid} on host elsewhere, started "
                                              f"2026-01-01"):
            rundir.RunLock(tmp_path).acquire()
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
    rundir.RunLock(tmp_path).acquire().release()


def test_forked_children_do_not_keep_the_lock(tmp_path):
    lock = rundir.RunLock(tmp_path).acquire()
    pid = os.fork()
    if pid == 0:  # the child closes its copy of the descriptor at fork
        os._exit(0 if lock.fd not in rundir._held else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    lock.release()
    rundir.RunLock(tmp_path).acquire().release()


@pytest.mark.parametrize("interrupted", [False, True])
def test_an_existing_run_is_never_replaced_unasked(tmp_path, interrupted):
    run = tmp_path / "run"
    finished_report(run, interrupted=interrupted, done=1 if interrupted else 3)
    kind = r"an interrupted run \(1 of 3" if interrupted else r"a finished run \(3 of 3"
    with pytest.raises(RunDirError, match=rf"already holds {kind} epochs\); continue it with "
                                          rf"--resume.*run_name=NAME.*--overwrite"):
        rundir.claim(run)
    assert (run / "last.pt").read_bytes() == b"weights"  # untouched
    rundir.claim(run, resume=run / "last.pt").release()  # resuming its own checkpoint is fine
    assert (run / "last.pt").exists()
    lock = rundir.claim(run, overwrite=True)
    assert lock.replaces and (run / "last.pt").exists()  # removed once the new run starts
    lock.release()
    rundir.clear(run)
    assert not any((run / name).exists() for name in rundir.RUN_FILES)


def test_scratch_runs_are_replaced_freely(tmp_path):
    finished_report(tmp_path / "run", scratch=True)
    assert rundir.check_free(tmp_path / "run") == "replace"
    finished_report(tmp_path / "old", scratch=False)
    (tmp_path / "old" / "report.json").write_text(json.dumps(  # reports before 'scratch'
        {"accuracy": 90.0, "epochs_completed": 1, "epochs": 1, "smoke": True, "settings": {}}))
    assert rundir.check_free(tmp_path / "old") == "replace"


def test_out_dir_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(RunDirError, match=r"is a file, not a folder \(check out_dir"):
        rundir.claim(tmp_path / "f" / "run")


def test_rerunning_a_recipe_refuses_then_overwrites(tmp_path, monkeypatch, capsys):
    args = ["train", "digits-qif", "--smoke", "--set", f"out_dir={tmp_path}"]
    run_dir = tmp_path / "digits-qif-s0"
    real, seen = engine.build, []

    def build(*a, **k):  # while the run builds, its directory is locked
        with pytest.raises(RunDirError, match="in use"):
            rundir.RunLock(run_dir).acquire()
        seen.append(True)
        return real(*a, **k)
    with monkeypatch.context() as m:
        m.setattr(engine, "build", build)
        assert main(args) == 0
    assert seen
    rundir.RunLock(run_dir).acquire().release()  # released after the run
    report = run_dir / "report.json"
    data = json.loads(report.read_text())
    assert data["scratch"] is True  # a smoke run: a later run may replace it
    data.update(smoke=False, scratch=False)  # as if it had been a real run
    report.write_text(json.dumps(data))
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "already holds a finished run (1 of 1 epochs)" in err[0]
    assert json.loads(report.read_text())["scratch"] is False  # nothing was replaced
    assert main(args + ["--overwrite"]) == 0
    assert json.loads(report.read_text())["smoke"] is True


def test_the_demo_writes_scratch_runs_to_its_own_folder(tmp_path, monkeypatch, capsys):
    """`make demo` reruns `quadfire demo`: the demo's runs live in runs/demo and are marked
    scratch, so the second run replaces the first; a real run elsewhere is never touched."""
    calls = []

    def fake_fit(cfg, resume=None):
        calls.append((str(cfg.out_dir), cfg.scratch))
        return RunReport(accuracy=90.0, epochs_completed=1, settings={}, run=cfg.run_id,
                         firing_rate=0.2)
    monkeypatch.setattr(engine, "fit", fake_fit)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert [c[0] for c in calls] == ["runs/demo", "runs/demo"]
    assert all(scratch for _, scratch in calls)
    assert "digits demo" in capsys.readouterr().out


def test_compare_refuses_before_training_any_twin(tmp_path, monkeypatch):
    """The second twin's folder holds a finished run of other settings: nothing is trained."""
    from quadfire.train.study import plan
    _, _, runs = plan("digits", ["qif", "lif"], [0], [f"out_dir={tmp_path}"])
    lif = runs[1][2]
    finished_report(lif.run_dir, done=lif.epochs, epochs=lif.epochs)
    report = json.loads((lif.run_dir / "report.json").read_text())
    report["settings"] = {"lr": 123.0}
    (lif.run_dir / "report.json").write_text(json.dumps(report))
    monkeypatch.setattr(engine, "fit", lambda *a, **k: pytest.fail("trained"))
    assert main(["compare", "digits", "--seeds", "0", "--set", f"out_dir={tmp_path}"]) == 2
