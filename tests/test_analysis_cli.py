"""`quadfire analyze neuron|mismatch` through the real CLI entry point."""
import re
import json

import pytest

from quadfire.cli import main

PNG = b"\x89PNG\r\n\x1a\n"


def test_analyze_neuron_prints_and_writes_pngs(tmp_path, capsys):
    assert main(["analyze", "neuron", "--a", "0.5", "--u2", "0.6", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "fixed point u = 0: slope f' = 0.7 (stable)" in out
    assert "fixed point u = 0.6: slope f' = 1.3 (unstable)" in out
    assert "rheobase I* = 0.045" in out  # a d^2 / 4 = 0.5 * 0.36 / 4
    for name in ("cobweb.png", "fi_curve.png", "bifurcation.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG) and len(data) > 5000
    assert json.loads((tmp_path / "neuron.json").read_text())["rest"] == "monotone"


def test_analyze_neuron_rejects_invalid_parameters(tmp_path, capsys):
    assert main(["analyze", "neuron", "--a", "5", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"quadfire analyze: error: .*a\*\(u2 - u1\) < 2", err[0])


def test_analyze_mismatch_table_and_png(tmp_path, capsys):
    assert main(["analyze", "mismatch", "--T", "3", "--neurons", "16", "--pairs", "2000",
                 "--batches", "4", "--factors", "0.1", "1", "3", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "band-below" in out and "noise" in out and "rect x0.1" in out and "ceiling" in out
    assert (tmp_path / "mismatch.png").read_bytes().startswith(PNG)
    data = json.loads((tmp_path / "mismatch.json").read_text())
    assert data["cosine"]["band"] > data["cosine"]["rect x0.1"]
    assert data["widths"]["noise"] == pytest.approx(2.5066282746 / 1.375)
