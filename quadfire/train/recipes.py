"""Recipes: named YAML configs shipped inside the package (``quadfire/train/recipes``; the
repository's ``recipes/`` is a link to that folder).

A recipe may start from another with ``extends: other.yaml`` (resolved next to it), which is
how every LIF twin reuses its QIF recipe and changes only the neuron. Twins are named
``<setting>-qif.yaml`` and ``<setting>-lif.yaml``.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .config import TrainConfig, load_config
from .typed_yaml import merge, read_yaml

RECIPE_DIR = Path(__file__).with_name("recipes")
NEURON_SUFFIXES = ("-qif", "-lif")
# --smoke: one epoch of 2 steps of 2 samples on random inputs of the recipe's shape (the
# registered dataset synthetic:<dataset>, `quadfire.data.synthetic`), in-process loading, one
# measured test batch, a scratch run (a later run replaces it); --set still wins.
SMOKE = ["epochs=1", "warmup_epochs=0", "data.workers=0", "data.batch_size=2",
         "data.synthetic=true", "progress=false", "tensorboard=false", "measure_batches=1",
         "scratch=true"]


def list_recipes() -> list[str]:
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def find_recipe(name: str | Path) -> Path:
    """A YAML file path, or the name of a shipped recipe (with or without ``.yaml``)."""
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    shipped = RECIPE_DIR / f"{path.name.removesuffix('.yaml')}.yaml"
    if shipped.is_file():
        return shipped
    raise ConfigError(f"no recipe file or shipped recipe named {str(name)!r}; shipped recipes: "
                      f"{', '.join(list_recipes())}")


def read_recipe(name: str | Path, _seen: tuple = ()) -> dict:
    """The recipe's settings with its ``extends`` chain merged in (the child wins)."""
    path = find_recipe(name).resolve()
    if path in _seen:
        raise ConfigError(f"recipe {path} extends itself through {[str(p) for p in _seen]}")
    data = read_yaml(path)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ConfigError(f"{path}: extends must name one recipe (a YAML file next to it or a "
                          f"shipped recipe name), got {parent!r}")
    return merge(read_recipe(path.parent / parent, _seen + (path,)), data, TrainConfig)


def twins(name: str | Path) -> dict[str, Path]:
    """{"qif": path, "lif": path} for a setting, given either twin or the setting's stem."""
    path = Path(name)
    stem = path.name.removesuffix(".yaml")
    for suffix in NEURON_SUFFIXES:
        stem = stem.removesuffix(suffix)
    folder = path.parent if path.suffix in (".yaml", ".yml") else None
    out = {}
    for neuron in ("qif", "lif"):
        candidate = f"{stem}-{neuron}.yaml"
        out[neuron] = find_recipe(folder / candidate if folder is not None else candidate)
    return out


def config_for(recipe, overrides: list[str], smoke: bool = False,
               extra: dict | None = None) -> TrainConfig:
    """The resolved config of `recipe` (a name, a path, or None for the defaults): defaults <
    recipe < `extra` < the `--smoke` settings < ``--set`` overrides."""
    data = read_recipe(recipe) if recipe is not None else {}
    return load_config(data, (SMOKE if smoke else []) + list(overrides), base=extra)
