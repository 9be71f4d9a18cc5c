"""Config loading: YAML recipe, --set overrides with type conversion, errors listing keys."""
import re
from dataclasses import dataclass, field
from typing import Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from quadfire.train.config import TrainConfig, load_config
from quadfire.train.optim import lr_factor
from quadfire.errors import ConfigError
from quadfire.train.typed_yaml import coerce, from_dict, parse_overrides, save_yaml, valid_keys


@dataclass
class Inner:
    batch_size: int = 8
    root: str = "data"


@dataclass
class Outer:
    lr: float = 0.1
    flag: bool = False
    maybe: Optional[float] = None
    kw: dict = field(default_factory=dict)
    inner: Inner = field(default_factory=Inner)


def test_yaml_and_overrides_are_typed(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: demo\nlr: 1e-3\nepochs: 3\nneuron_kwargs: {a: 0.3}\n")
    cfg = load_config(recipe, ["epochs=5", "compile=true", "paper_accuracy=96.86",
                               "neuron_kwargs={a: 0.2, u2: 0.6}"])
    assert cfg.lr == pytest.approx(1e-3) and isinstance(cfg.lr, float)
    assert cfg.epochs == 5 and cfg.compile is True
    assert cfg.paper_accuracy == pytest.approx(96.86)
    assert cfg.neuron_kwargs == {"a": 0.2, "u2": 0.6}


def test_nested_override_and_roundtrip(tmp_path):
    cfg = from_dict(Outer, {"inner": {"batch_size": "32"}, "maybe": "null", "flag": "yes"})
    assert cfg.inner.batch_size == 32 and cfg.maybe is None and cfg.flag is True
    cfg = from_dict(Outer, parse_overrides(["inner.root=/x", "maybe=2.5"]))
    assert cfg.inner.root == "/x" and cfg.maybe == 2.5
    assert valid_keys(Outer) == ["lr", "flag", "maybe", "kw", "inner.batch_size", "inner.root"]


def test_resolved_config_reloads_identically(tmp_path):
    cfg = load_config(None, ["lr=0.05", "optimizer=sgd", "neuron=lif", "T=2"])
    save_yaml(cfg, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_unknown_key_lists_valid_keys():
    with pytest.raises(ConfigError, match=r"unknown config key.*'lrr'.*valid keys:.*\blr\b"):
        load_config(None, ["lrr=1"])
    with pytest.raises(ConfigError, match=r"inner\.nope.*inner\.batch_size"):
        from_dict(Outer, {"inner": {"nope": 1}})


@pytest.mark.parametrize("value, tp, expected", [
    ("3", int, 3), ("1e-3", float, 1e-3), ("off", bool, False), ("[1, 2]", list, [1, 2]),
    (4, float, 4.0), ("none", Optional[int], None)])
def test_coerce(value, tp, expected):
    assert coerce(value, tp, "k") == expected


@pytest.mark.parametrize("override, message", [
    ("epochs=2.5", "epochs: expected int, got '2.5'"),
    ("lr=fast", "lr: expected float"),
    ("compile=maybe", "compile: expected a boolean"),
    ("optimizer=rmsprop", "optimizer must be one of"),
    ("amp=fp8", "amp must be one of"),
    ("warmup_epochs=20", "warmup_epochs must be in"),
    ("neuron_kwargs=[1]", "neuron_kwargs: expected a dict"),
])
def test_bad_values_name_expected_and_given(override, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        load_config(None, [override])


def test_bad_set_syntax_and_files(tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(None, ["lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)


def test_run_dir():
    cfg = TrainConfig(name="x", neuron="lif", seed=3, out_dir="o")
    assert str(cfg.run_dir) == "o/x-lif-s3"


@given(lr=st.floats(1e-6, 10, allow_nan=False), epochs=st.integers(1, 10_000),
       seed=st.integers(0, 2**31 - 1), flag=st.booleans())
def test_overrides_round_trip_through_strings(lr, epochs, seed, flag):
    cfg = load_config(None, [f"lr={lr!r}", f"epochs={epochs}", f"seed={seed}", f"compile={flag}"])
    assert (cfg.lr, cfg.epochs, cfg.seed, cfg.compile) == (lr, epochs, seed, flag)


@given(total=st.integers(1, 500), warm_frac=st.floats(0, 0.99), floor=st.floats(0, 1),
       step=st.integers(0, 600))
def test_schedule_stays_between_floor_and_one(total, warm_frac, floor, step):
    warmup = int(warm_frac * total)
    f = lr_factor(step, total, warmup, floor)
    assert (floor - 1e-12 <= f <= 1 + 1e-12) or step < warmup
    assert 0 <= f <= 1 + 1e-12


@pytest.mark.parametrize("override, message", [
    ("lr=inf", "lr must be a finite number, got inf"),
    ("weight_decay=inf", "weight_decay must be a finite number, got inf"),
    ("weight_decay=nan", "weight_decay must be a finite number, got nan"),
    ("momentum=1", "momentum must be in [0, 1)"),
    ("grad_clip=-inf", "grad_clip must be a finite number"),
    ("tet_lambda=2", "tet_lambda must be in [0, 1]"),
    ("T=100000", "T must be in 1..10000"),
    ("seed=-1", "seed must be in 0..4294967295"),
    ("paper_accuracy=nan", "paper_accuracy must be a percentage"),
    ("device=xyz", "device must be 'auto' or a torch device"),
    ("nonfinite=ignore", "nonfinite must be one of ('stop', 'skip')"),
    ("data.workers=100000", "data.workers must be at most 256"),
    ("data.seed=-2", "data.seed must be a non-negative int"),
    ("model=nope", "unknown model 'nope'"),
    ("model_kwargs={width: '8'}", "model_kwargs.width for model 'convnet' must be int, got '8'"),
    ("model_kwargs={wdth: 8}", "unknown model_kwargs ['wdth'] for model 'convnet'"),
    ("neuron_kwargs={aa: 1}", "unknown neuron_kwargs ['aa'] for QIF"),
    ("neuron_kwargs={surrogate_width: x}", "surrogate_width must be a finite number > 0"),
    ("neuron_kwargs={a: -1}", "neuron_kwargs {'a': -1} for neuron 'qif': QIF needs a > 0"),
    ("neuron_kwargs={a: [1}", "neuron_kwargs: expected a dict in YAML syntax"),
])
def test_every_value_is_checked_when_the_config_is_read(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(None, [override])


@pytest.mark.parametrize("extends", ["5", "[a.yaml, b.yaml]", "{a: 1}"])
def test_extends_must_name_one_recipe(tmp_path, extends):
    from quadfire.train.recipes import config_for
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"extends: {extends}\n")
    with pytest.raises(ConfigError, match="extends must name one recipe"):
        config_for(str(recipe), [])


def test_a_dotted_override_changes_one_entry_of_a_dict_field(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: demo\nneuron_kwargs: {a: 0.3, u2: 0.6, surrogate: band}\n")
    cfg = load_config(recipe, ["neuron_kwargs.a=0.125", "neuron_kwargs.surrogate=noise",
                               "model_kwargs.hidden=64"])
    assert cfg.neuron_kwargs == {"a": 0.125, "u2": 0.6, "surrogate": "noise"}
    assert isinstance(cfg.neuron_kwargs["a"], float) and cfg.model_kwargs == {"hidden": 64}
    # A whole value still replaces the dict, in either order.
    cfg = load_config(recipe, ["neuron_kwargs={a: 0.2}"])
    assert cfg.neuron_kwargs == {"a": 0.2}
    with pytest.raises(ConfigError, match=r"neuron_kwargs.a: '\[1' is not a YAML value"):
        load_config(recipe, ["neuron_kwargs.a=[1"])


@pytest.mark.parametrize("order", [0, 1])
def test_a_dict_set_whole_and_by_a_key_is_an_error_in_either_order(order):
    """The whole value used to drop the key given before it silently, while the other order
    was an error: one rule for both."""
    pairs = ["neuron_kwargs.u2=0.6", "neuron_kwargs={a: 0.2}"][::1 - 2 * order]
    with pytest.raises(ConfigError, match=rf"--set {re.escape(pairs[1])} and --set "
                                          rf"{re.escape(pairs[0])} both set neuron_kwargs"):
        load_config(None, pairs)
    # the same key twice: the later value wins, as for any setting
    assert load_config(None, ["neuron_kwargs.u2=0.6", "neuron_kwargs.u2=0.7"]
                       ).neuron_kwargs == {"u2": 0.7}
