"""Facts about the test machine that decide whether a test can mean anything here."""
from __future__ import annotations


def always_overcommit() -> bool:
    """True where the kernel grants any allocation (vm.overcommit_memory = 1): a model too
    large for memory is then not refused at allocation, and filling it would hang the test."""
    try:
        with open("/proc/sys/vm/overcommit_memory") as f:
            return f.read().strip() == "1"
    except OSError:
        return False
