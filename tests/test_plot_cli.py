"""`quadfire plot ...` and `quadfire export` on a tiny trained model (one epoch of digits)."""
import nir
import pytest
import torch

from quadfire.analysis.plots import read_metrics, record
from quadfire.train.runs import load_run, sample_batch
from quadfire.cli import main
from quadfire.export import load_nirtorch, run_steps
from quadfire.layers import fold_tdbn

TINY = ["--set", "model_kwargs={width: 8, hidden: 32}", "--set", "progress=false",
        "--set", "tensorboard=false", "--set", "data.batch_size=128", "--set", "epochs=1"]
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    assert main(["train", "digits-qif", "--set", f"out_dir={out}", *TINY]) == 0
    return out / "digits-qif-s0"


def _is_png(path):
    data = path.read_bytes()
    return data.startswith(PNG) and len(data) > 2000


def test_plot_raster_traces_curves(run_dir, tmp_path, capsys):
    assert main(["plot", "raster", str(run_dir), "--out", str(tmp_path / "r.png")]) == 0
    assert main(["plot", "traces", str(run_dir), "--layer", "body.3", "--neurons", "0", "5",
                 "--out", str(tmp_path / "t.png")]) == 0
    assert main(["plot", "curves", str(run_dir), "--out", str(tmp_path / "c.png")]) == 0
    for name in ("r.png", "t.png", "c.png"):
        assert _is_png(tmp_path / name)
    assert "wrote" in capsys.readouterr().out


def test_figures_go_into_the_run_in_the_format_asked(run_dir, tmp_path, capsys):
    """Without --out a run's figures land in its folder (as export's model.nir and analyze
    run's layers.json do); --out takes PNG, PDF or SVG and refuses other suffixes."""
    assert main(["plot", "curves", str(run_dir)]) == 0
    assert _is_png(run_dir / "curves.png")
    assert main(["plot", "raster", str(run_dir / "last.pt"), "--smoke"]) == 0
    assert _is_png(run_dir / "raster.png")
    assert main(["plot", "curves", str(run_dir), "--out", str(tmp_path / "c.pdf")]) == 0
    assert (tmp_path / "c.pdf").read_bytes().startswith(b"%PDF")
    assert main(["plot", "curves", str(run_dir), "--out", str(tmp_path / "c.svg")]) == 0
    assert b"<svg" in (tmp_path / "c.svg").read_bytes()[:2000]
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["plot", "curves", str(run_dir), "--out", str(tmp_path / "c.txt")])
    assert stop.value.code == 2 and ".png, .pdf, .svg" in capsys.readouterr().err


def test_recorded_activity_is_the_models(run_dir):
    model, cfg = load_run(run_dir)[:2]
    x = sample_batch(cfg)
    rec = record(model, x, sample=3)
    assert list(rec) == ["body.1", "body.3", "body.7"]
    assert rec["body.1"].spikes.shape == (4, 8 * 8 * 8)  # T x (width * 8 * 8)
    assert 0 < rec["body.1"].spikes.mean() < 1
    # Spikes are exactly where H crossed the threshold.
    assert ((rec["body.1"].h >= 1.0) == (rec["body.1"].spikes > 0)).all()
    cols = read_metrics(run_dir)
    assert list(cols["epoch"]) == [0] and "test_acc" in cols


def test_plot_errors_name_the_problem(run_dir, tmp_path, capsys):
    # A user's mistake is one line on stderr and exit code 2 (quadfire.cli), never a traceback.
    for argv, match in [
            (["plot", "raster", str(run_dir), "--layers", "nope", "--out", str(tmp_path / "x.png")],
             "unknown spiking layer"),
            (["plot", "curves", str(tmp_path)], "metrics.csv"),
            (["plot", "raster", str(tmp_path)], "last.pt")]:
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("quadfire plot: error:") and match in err[0]


def test_export_nir_of_a_trained_qif_run(run_dir, tmp_path, capsys):
    out = tmp_path / "net.nir"
    assert main(["export", str(run_dir), "--format", "nir", "--out", str(out)]) == 0
    assert "QIF (extension) x3" in capsys.readouterr().out
    graph = nir.read(out)
    model, cfg = load_run(run_dir)[:2]
    x = sample_batch(cfg).to(torch.float64)
    model = model.to(torch.float64)
    expected = fold_tdbn(model)(x)
    got = run_steps(load_nirtorch(graph, dtype=torch.float64), x.unsqueeze(0).expand(4, *x.shape))
    assert torch.equal(got, expected)


def test_every_command_rebuilds_the_run_with_its_own_class_count(run_dir, tmp_path, capsys):
    """Like an ImageNet run over 7 class folders: eval --smoke, plot --smoke and export use
    the class count and input shape stored in the checkpoint, never the dataset's standard."""
    from quadfire.models import create_model
    from quadfire.train import checkpoint

    state = checkpoint.load(run_dir / "last.pt")
    state.pop("format")
    cfg = state["config"]
    model = create_model("convnet", neuron=cfg["neuron"], T=cfg["T"], num_classes=7,
                         **cfg["model_kwargs"])
    state["model"], state["data_info"]["num_classes"] = model.state_dict(), 7
    seven = tmp_path / "seven"
    checkpoint.save(state, seven / "last.pt")
    assert main(["eval", str(seven), "--smoke"]) == 0
    assert main(["plot", "raster", str(seven), "--smoke", "--out", str(tmp_path / "r.png")]) == 0
    assert main(["plot", "traces", str(seven), "--smoke", "--out", str(tmp_path / "t.png")]) == 0
    assert main(["export", str(seven), "--format", "nir", "--out", str(tmp_path / "m.nir")]) == 0
    assert load_run(seven).model.num_classes == 7
    assert nir.read(tmp_path / "m.nir").nodes["output"].output_type["output"].tolist() == [7]
    capsys.readouterr()
    assert main(["eval", str(seven)]) == 2  # the digits themselves have 10 classes
    assert "now has 10 classes and samples (1, 8, 8), but the run was trained on 7 classes" \
        in capsys.readouterr().err
