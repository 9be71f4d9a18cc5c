"""Study figures: whole-epoch ticks and no variant hidden behind another."""
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
