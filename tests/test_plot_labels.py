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
    assert titles[0].startswith("conv1: QIF, neurons 0-63 of 100 shown")
    assert titles[1].startswith("fc: QIF, all 10 neurons")


def test_one_epoch_curves_have_one_whole_tick(tmp_path):
    from quadfire.analysis.plots import curves

    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.csv").write_text("epoch,lr,train_loss,test_acc\n0,0.002,1.9,65.0\n")
    for ax in curves(tmp_path / "run").axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["1"]


def test_spiking_layers_are_named_after_the_layer_feeding_them():
    from quadfire import create_model
    from quadfire.analysis.names import layer_labels

    assert layer_labels(create_model("convnet", num_classes=10)) == {
        "body.1": "conv1 (body.1)", "body.3": "conv2 (body.3)", "body.7": "fc1 (body.7)"}
    # a residual block defines its shortcut conv after conv2; sn2 is still named after conv2
    labels = layer_labels(create_model("spiking_resnet18", num_classes=10))
    block = [(k, v) for k, v in labels.items() if ".sn2" in k and "layer2.0" in k]
    assert block and all(v.startswith("conv") for _, v in block)
    conv_of = {n: f"conv{i}" for i, n in enumerate(
        [n for n, m in create_model("spiking_resnet18", num_classes=10).named_modules()
         if type(m).__name__ == "Conv2d"], 1)}
    name, label = block[0]
    assert label.split(" ")[0] == conv_of[name.replace(".sn2", ".conv2.conv.module")]


def _assert_readable(fig):
    """Named axes, and every plotted point inside the limits."""
    import numpy as np

    for ax in fig.axes:
        assert ax.get_xlabel() or ax.get_xticklabels(), "an axis without a label"
        assert ax.get_ylabel(), f"{ax.get_title()!r}: no y label"
        (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
        # axhline/axvline span the axes by construction (axes coordinates): data lines only
        for line in (ln for ln in ax.get_lines() if ln.get_transform() is ax.transData):
            x, y = (np.asarray(v, float) for v in line.get_data())
            ok = np.isfinite(x) & np.isfinite(y)
            assert ((x[ok] >= x0) & (x[ok] <= x1) & (y[ok] >= y0) & (y[ok] <= y1)).all(), \
                f"{line.get_label()!r} has points outside the axes"


def test_firing_rate_bars_use_readable_names_and_keep_the_legend_off_the_bars():
    from quadfire.analysis.study_plots import layer_rate_figure

    fig = layer_rate_figure({"qif": [{"body.1": 0.1, "body.7": 0.3}], "lif": [{"body.1": 0.2}]},
                            "digits", {"body.1": "conv1 (body.1)", "body.7": "fc1 (body.7)"})
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv1 (body.1)", "fc1 (body.7)"]
    assert ax.get_xlabel() and ax.get_ylabel()
    fig.canvas.draw()  # the legend sits right of the axes, where no bar is
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
    _assert_readable(fig)


def test_single_neuron_figures_show_every_point():
    from quadfire.analysis.figures import bifurcation_figure, cobweb, fi_figure
    from quadfire.neurons import QIF

    for fig in (cobweb(), cobweb(QIF(discretization="exact").params()), fi_figure(steps=50),
                bifurcation_figure(points=30)):
        _assert_readable(fig)
    orbits = [line for line in cobweb().axes[0].get_lines() if "orbit" in line.get_label()]
    assert len(orbits) == 3 and all(line.get_linewidth() >= 1.5 for line in orbits)


def test_gradient_growth_ticks_are_the_measured_T():
    from quadfire.analysis.gradients import growth_figure

    fig = growth_figure({"qif": {2: 1.0, 4: 2.0, 8: 4.0}, "lif": {2: 1.0, 4: 1.0, 8: 1.0}}, "t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["2", "4", "8"]
    _assert_readable(fig)


def test_one_epoch_study_of_seven_variants_shows_every_point_beside_its_legend():
    accs = [94.5, 100.0, 97.2, 99.4, 95.0, 98.8, 94.6]
    fig = accuracy_figure({f"v{i}": [[a], [a - 0.1]] for i, a in enumerate(accs)}, "digits")
    _assert_readable(fig)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert ax.get_legend().get_window_extent().x0 >= ax.get_window_extent().x1
