"""What training writes: a progress bar on a terminal only, one plain line per epoch elsewhere
(a log file), nothing per epoch with --quiet."""
import io
import sys

import pytest

from quadfire.cli import main

TINY = ["--set", "model_kwargs={width: 4, hidden: 16}", "--set", "tensorboard=false",
        "--set", "data.batch_size=256", "--set", "epochs=2"]


class Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as tqdm's disable=None checks."""

    def isatty(self):
        return True


def _train(tmp_path, monkeypatch, stderr, *extra):
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert main(["train", "digits-qif", "--set", f"out_dir={tmp_path}", *TINY, *extra]) == 0
    return out.getvalue(), stderr.getvalue()


def _epoch_lines(text):
    return [line for line in text.splitlines() if "] epoch " in line]


def test_not_a_terminal_gets_one_plain_line_per_epoch(tmp_path, monkeypatch):
    out, err = _train(tmp_path, monkeypatch, io.StringIO())
    assert "\r" not in out + err  # no bar frames in a log
    lines = _epoch_lines(out)
    assert [line.split("] ")[1].split(" lr")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert all("test loss" in line for line in lines)


def test_a_terminal_gets_the_bar_and_the_same_lines(tmp_path, monkeypatch):
    out, err = _train(tmp_path, monkeypatch, Terminal())
    assert "\r" in err and "epoch 1/2" in err  # tqdm's frames, on stderr
    assert len(_epoch_lines(out)) == 2


@pytest.mark.parametrize("flag", [["--quiet"], ["--set", "progress=false"]])
def test_quiet_writes_no_bar_and_no_epoch_line(tmp_path, monkeypatch, flag):
    out, err = _train(tmp_path, monkeypatch, Terminal(), *flag)
    assert "\r" not in err and _epoch_lines(out + err) == []
    assert "digits-qif-s0: test accuracy" in out  # the summary line is still printed
