"""YAML <-> typed dataclasses, with ``--set key=value`` overrides.

Generic over any (nested) dataclass: `TrainConfig` and the data section use it. Every value,
whether read from YAML or given on the command line, goes through `coerce`, so ``lr: 1e-3``
(which PyYAML reads as a string) and ``--set lr=1e-3`` both become the float 0.001. Unknown
keys are errors that list the valid ones.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError

_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}
_NONE = {"none", "null", "~", ""}


def _hints(cls) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def valid_keys(cls, prefix: str = "") -> list[str]:
    """Every settable dotted key of dataclass `cls` (nested dataclasses flattened)."""
    keys = []
    for name, tp in _hints(cls).items():
        if dataclasses.is_dataclass(tp):
            keys += valid_keys(tp, f"{prefix}{name}.")
        else:
            keys.append(prefix + name)
    return keys


def coerce(value: Any, tp: Any, key: str) -> Any:
    """Convert `value` (a YAML scalar or a command-line string) to type `tp`, or raise."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None or (isinstance(value, str) and value.strip().lower() in _NONE):
            return None
        errors = []
        for a in args:
            try:
                return coerce(value, a, key)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError("; ".join(errors))
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{key}: expected one of {list(choices)}, got {value!r}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        s = str(value).strip().lower()
        if s in _TRUE or s in _FALSE:
            return s in _TRUE
        raise ConfigError(f"{key}: expected a boolean (true/false), got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected {tp.__name__}, got boolean {value!r}")
        try:
            if tp is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            out = tp(value) if not isinstance(value, str) else tp(value.strip())
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {tp.__name__}, got {value!r}") from None
        return out
    if tp is str:
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return str(value)
    if origin in (dict, list, tuple) or tp in (dict, list, tuple):
        container = origin or tp
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value)
            except yaml.YAMLError as e:
                raise ConfigError(f"{key}: expected a {container.__name__} in YAML syntax (e.g. "
                                  f"{{a: 0.3, u2: 0.6}}), got {value!r}, which is not valid YAML "
                                  f"({_first_line(e)})") from None
        if container is tuple and isinstance(value, list):
            value = tuple(value)
        if not isinstance(value, container):
            raise ConfigError(f"{key}: expected a {container.__name__} (YAML syntax), got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported config type {tp!r}")


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())


def from_dict(cls, data: dict | None, prefix: str = ""):
    """Build dataclass `cls` from a (nested) dict; missing keys keep their defaults."""
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = _hints(cls)
    unknown = sorted(set(data) - set(hints), key=str)
    if unknown:
        raise ConfigError(f"unknown config key(s) {[prefix + k for k in unknown]}; valid keys: "
                          f"{', '.join(valid_keys(cls, prefix))}")
    kwargs = {}
    for name, value in data.items():
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            kwargs[name] = from_dict(tp, value, f"{prefix}{name}.")
        else:
            kwargs[name] = coerce(value, tp, prefix + name)
    return cls(**kwargs)


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr=0.1", "data.batch_size=32"]`` -> ``{"lr": "0.1", "data": {"batch_size": "32"}}``."""
    out: dict = {}
    whole: dict[tuple, str] = {}   # key path -> the pair that set it to one value
    inside: dict[tuple, str] = {}  # key path -> a pair that set one of its keys
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects key=value, got {pair!r}")
        parts = tuple(key.strip().split("."))
        # One rule in either order: a key is set whole or key by key, never both, since a
        # whole value would silently drop the keys set before it.
        for n in range(1, len(parts) + 1):
            other = whole.get(parts[:n]) if n < len(parts) else inside.get(parts)
            if other is not None:
                name = ".".join(parts[:n])
                raise ConfigError(f"--set {pair} and --set {other} both set {name}, one whole "
                                  f"and one key of it; give {name} once, either whole "
                                  f"({name}={{key: value, ...}}) or key by key "
                                  f"({name}.key=value)")
        node = out
        for n, part in enumerate(parts[:-1], 1):
            node = node.setdefault(part, {})
            inside.setdefault(parts[:n], pair)
        node[parts[-1]] = value
        whole[parts] = pair
    return out


def merge(base: dict, override: dict, cls=None, dotted: bool = False) -> dict:
    """Merge `override` into `base` (`override` wins).

    With a dataclass `cls`, only its dataclass-typed sections merge key by key; every other
    value, dict-valued fields such as ``neuron_kwargs`` included, is replaced whole, so a
    recipe that extends another never inherits stale keyword arguments.

    With `dotted` (parsed ``--set`` overrides), a dotted key into a dict-valued field
    (``neuron_kwargs.a=0.1``) changes that one entry and keeps the others: the user named one
    key, not the whole dict. Such a leaf is read as a YAML scalar (``0.1`` a float, ``band`` a
    string), the way the recipe file's own entries are, since a free dict carries no types to
    coerce to. A whole value (``neuron_kwargs={a: 0.1}``) still replaces the dict.
    """
    hints = _hints(cls) if cls is not None else {}
    out = dict(base)
    for k, v in override.items():
        section = hints.get(k) if cls is not None else None
        if isinstance(v, dict) and isinstance(out.get(k), dict) and (
                cls is None or dataclasses.is_dataclass(section)):
            out[k] = merge(out[k], v, section, dotted)
        elif dotted and isinstance(v, dict) and section is not None and \
                (typing.get_origin(section) or section) is dict:
            old = out.get(k)
            old = coerce(old, section, k) if isinstance(old, str) else old
            if old is not None and not isinstance(old, dict):
                raise ConfigError(f"--set {k}.<key>: {k} is not a mapping, got {old!r}")
            out[k] = _merge_entries(dict(old or {}), v, k)
        else:
            out[k] = v
    return out


def _merge_entries(base: dict, override: dict, key: str) -> dict:
    for k, v in override.items():
        if isinstance(v, dict):
            inner = base.get(k)
            base[k] = _merge_entries(dict(inner) if isinstance(inner, dict) else {}, v, f"{key}.{k}")
            continue
        try:
            base[k] = yaml.safe_load(v) if isinstance(v, str) else v
        except yaml.YAMLError as e:
            raise ConfigError(f"--set {key}.{k}: {v!r} is not a YAML value ({_first_line(e)})") \
                from None
    return base


def read_yaml(path: str | Path) -> dict:
    """The mapping in a YAML file, with a clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path} is not a YAML text file ({e})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a YAML mapping at the top level, got {type(data).__name__}")
    return data


def to_dict(cfg) -> dict:
    """Plain-Python (YAML-safe) dict of a config; tuples become lists."""
    def plain(v):
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v
    return plain(dataclasses.asdict(cfg))


def save_yaml(cfg, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False))
