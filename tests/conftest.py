"""Shared test settings: deterministic, CPU-sized, hypothesis tuned for a 2-core machine."""
import os

import pytest
import torch
from hypothesis import HealthCheck, settings

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))

_relaxed = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.register_profile("default", max_examples=40, **_relaxed)
# CI (CI=true) explores a fixed sequence of examples, so a landing never hinges on luck; local
# runs keep drawing fresh examples, which is how new counterexamples are found.
settings.register_profile("ci", max_examples=40, derandomize=True, **_relaxed)
settings.register_profile("thorough", max_examples=500, **_relaxed)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE",
                                     "ci" if os.environ.get("CI") == "true" else "default"))


@pytest.fixture
def one_thread():
    """Tiny inputs: OpenMP barriers between 2 threads cost more than the work itself on a
    busy machine (a ResNet-34 step took 3-11 s with 2 threads, 0.2-0.5 s with 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
