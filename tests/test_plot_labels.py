"""Figures a reader can trust: whole-epoch ticks, named axes, no variant hidden behind another,
and a raster that says what it leaves out."""
from quadfire.analysis.study_plots import accuracy_figure


def test_one_epoch_study_has_one_integer_tick_and_every_variant_visible():
    fig = accuracy_figure({"qif": [[9.75]], "lif-tau2": [[9.75]], "plif": [[9.75]]}, "digits")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1"]
    lines = ax.get_lines()
    # the same point three times: told apart by marker shape, hollow, the first drawn largest
    assert len({line.get_marker() for line in lines}) == 3
    assert all(line.get_markerfacecolor() == "none" for line in lines)
    sizes = [line.get_markersize() for line in lines]
    assert sizes == sorted(sizes, reverse=True) and len(set(sizes)) == 3


def test_long_study_keeps_integer_ticks():
    fig = accuracy_figure({"qif": [list(range(40))]}, "x")
    ticks = fig.axes[0].get_xticks()
    assert all(float(t).is_integer() for t in ticks)


def _write_metrics(run_dir):
    run_dir.mkdir()
    (run_dir / "metrics.csv").write_text(
        "epoch,lr,train_loss,train_acc,test_loss,test_acc\n"
        "0,0.002,1.9,59.0,2.0,65.0\n1,0.001,1.6,81.0,1.6,77.0\n")


def test_curves_name_the_learning_rate_and_use_whole_epochs(tmp_path):
    from quadfire.analysis.plots import curves

    _write_metrics(tmp_path / "run")
    axes = curves(tmp_path / "run").axes
    assert [ax.get_ylabel() for ax in axes] == ["loss", "accuracy %", "learning rate"]
    for ax in axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
    assert [t.get_text() for t in axes[0].get_legend().get_texts()] == ["train loss", "test loss"]


def test_raster_says_how_many_neurons_it_leaves_out():
    import numpy as np

    from quadfire.analysis.plots import LayerRecord, raster

    spikes = (np.arange(4 * 100).reshape(4, 100) % 3 == 0).astype(np.float32)
    rec = LayerRecord(spikes, spikes, 1.0, "QIF")
    titles = [ax.get_title() for ax in raster({"conv1": rec, "fc": LayerRecord(
        spikes[:, :10], spikes[:, :10], 1.0, "QIF")}, max_neurons=64).axes]
    assert titles[0].startswith("conv1 (QIF): neurons 0-63 of 100 shown")
    assert titles[1].startswith("fc (QIF): all 10 neurons")
