"""The errors quadfire raises for a user's mistake (bad input, config, data or checkpoint).

Every one derives from `QuadfireError` and also from the built-in type a caller would expect
(ValueError, TypeError, FileNotFoundError, RuntimeError, ...), so ``except ValueError`` keeps
working. The command line turns a `QuadfireError` into one line and exit code 2; any other
exception is a bug in quadfire and keeps its traceback. This module imports nothing of quadfire
(`require_extra` imports the optional package it is asked for, when it is called).
"""
from __future__ import annotations


class QuadfireError(Exception):
    """Base class: something the user gave is not valid; the message says what and why."""


class ParameterError(QuadfireError, ValueError):
    """A neuron, window or layer parameter violates its constraint."""


class InputError(QuadfireError, ValueError):
    """A tensor has the wrong shape, layout or values for the call it was passed to."""


class InputTypeError(QuadfireError, TypeError):
    """An argument has the wrong type or dtype (for example an integer tensor of spikes)."""


class ConfigError(QuadfireError, ValueError):
    """A config key or value the user gave is not valid."""


class DataError(QuadfireError, ValueError):
    """A dataset file is corrupt, truncated or not in the expected format."""


class DataNotFoundError(QuadfireError, FileNotFoundError):
    """A dataset (or a file of it) is not where the config says."""


class CheckpointError(QuadfireError, RuntimeError):
    """A checkpoint is missing, truncated, corrupt, not a quadfire checkpoint, or does not
    match the model it is loaded into."""


class MissingExtraError(QuadfireError, ImportError):
    """An optional dependency is not installed; the message names the pip extra."""


class RunDirError(QuadfireError, FileExistsError):
    """A run directory cannot be used as asked: another live process holds it, it holds a
    finished run that the command would overwrite, or its path is taken by a file."""


class NonFiniteError(QuadfireError, FloatingPointError):
    """Training met a non-finite loss, gradient or normalisation statistic (a NaN or inf in
    the data, or a learning rate that diverges); the message names the epoch and step."""


class DataLoaderWorkerError(QuadfireError, RuntimeError):
    """A DataLoader worker process died (the out-of-memory killer, a signal sent to it alone);
    training saves its position first, and the message says how to resume."""


def require_extra(module: str, extra: str, needed_for: str):
    """Import and return the optional dependency `module` (e.g. ``"tonic"``), or raise a
    MissingExtraError that says what needed it and which pip extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingExtraError(f"{needed_for} needs the optional package {module!r}, which "
                                f"cannot be imported ({e}); install it with: "
                                f"pip install 'quadfire[{extra}]'") from e
