"""The vectorization check of the CPU kernels: the build's own verdict, the report parsers, a
loop that stops vectorizing, and the same source for other targets (AVX-512, Clang, NEON)."""
from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import pytest

from quadfire.ops import cpu, vectorization

SOURCE = cpu.CSRC / "kernels.cpp"
GCC_DUMP = """
;; Function _ZN8quadfire12_GLOBAL__N_114forward_kernelIfLb1ELb0EE._omp_fn.0 (...)

/src/csrc/kernels.cpp:94:31: optimized: loop vectorized using 32 byte vectors
/src/csrc/kernels.cpp:140:33: missed: couldn't vectorize loop
/src/csrc/kernels.cpp:141:19: missed: not vectorized: control flow in loop.

;; Function _ZN8quadfire12_GLOBAL__N_115backward_kernelIfLb1ELb0ELi2ELb1EE._omp_fn.0 (...)

/src/csrc/kernels.cpp:140:33: optimized: loop vectorized using 16 byte vectors
/src/csrc/kernels.cpp:140:33: missed: couldn't vectorize loop
/src/csrc/other.cpp:94:31: optimized: loop vectorized using 32 byte vectors
"""
CLANG_RECORD = """--- !Passed
Pass:            loop-vectorize
Name:            Vectorized
DebugLoc:        { File: '/src/csrc/kernels.cpp',
                   Line: 94, Column: 9 }
Function:        .omp_outlined.
Args:
  - String:          'vectorized loop (vectorization width: '
...
--- !Missed
Pass:            loop-vectorize
Name:            MissedDetails
DebugLoc:        { File: '/src/csrc/kernels.cpp', Line: 140, Column: 9 }
Function:        .omp_outlined..1
Args:
  - String:          loop not vectorized
...
--- !Analysis
Pass:            loop-vectorize
Name:            InterleavingNotBeneficial
DebugLoc:        { File: '/src/csrc/kernels.cpp', Line: 94, Column: 9 }
Function:        .omp_outlined..1
...
"""


def test_the_built_library_passed_its_check():
    cpu.require()
    report = cpu.build_info()["vectorization"]
    if report["ok"] is None:
        pytest.skip(f"no vectorization report for this compiler: {report.get('reason')}")
    assert report["ok"], cpu.vectorization_warning(report)
    assert report["loops"] == sorted(vectorization.marked_loops(SOURCE))


def test_every_hot_loop_is_marked():
    loops = vectorization.marked_loops(SOURCE)
    assert len(loops) == 3 and all(text.startswith("for (") for text in loops.values())


def test_parsers_keep_each_function_apart():
    gcc = vectorization.parse_gcc(GCC_DUMP)
    assert gcc == {"_ZN8quadfire12_GLOBAL__N_114forward_kernelIfLb1ELb0EE._omp_fn.0": ({94}, {140}),
                   "_ZN8quadfire12_GLOBAL__N_115backward_kernelIfLb1ELb0ELi2ELb1EE._omp_fn.0":
                       ({140}, {140})}
    clang = vectorization.parse_clang(CLANG_RECORD)
    assert clang == {".omp_outlined.": ({94}, set()), ".omp_outlined..1": (set(), {140})}


def test_check_fails_for_a_loop_missed_in_one_instantiation():
    loops = {94: "for (a)", 140: "for (b)", 151: "for (c)"}
    result = vectorization.check(loops, vectorization.parse_gcc(GCC_DUMP))
    assert not result["ok"] and sorted(result["failed"]) == [140, 151]
    assert "1 of 2 instantiations" in result["failed"][140]
    assert "never reported vectorized" in result["failed"][151]
    assert "kernels.cpp:140" in cpu.vectorization_warning(result)


def _compile(cxx: str, flags: list[str], source: Path, out: Path) -> dict:
    """Compile `source` (a kernels.cpp) to an object with its report; the check's verdict."""
    kind = vectorization.compiler_kind(cxx)
    r = subprocess.run([cxx, "-std=c++17", *flags, *vectorization.report_flags(kind),
                        f"-I{cpu.CSRC}", "-c", str(source), "-o", str(out / "kernels.o")],
                       cwd=out, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        if "march" in r.stderr or "unknown target" in r.stderr or "unrecognized" in r.stderr:
            pytest.skip(f"{cxx} {' '.join(flags)} is not a target here: {r.stderr[-300:]}")
        raise AssertionError(r.stderr[-3000:])
    reports = vectorization.find_reports(out, kind)
    assert reports, f"{cxx} wrote no vectorization report"
    return vectorization.check(vectorization.marked_loops(source),
                               vectorization.read_reports(kind, reports), source)


def test_a_loop_that_stops_vectorizing_is_named(tmp_path):
    """A memory clobber in the forward loop (any call or asm would do) must fail the check,
    naming that loop's line, and make the build warn."""
    lines = SOURCE.read_text().splitlines()
    line = min(vectorization.marked_loops(SOURCE))
    lines.insert(line, '          __asm__ __volatile__("" ::: "memory");')
    broken = tmp_path / "kernels.cpp"
    broken.write_text("\n".join(lines) + "\n")
    result = _compile(cpu._cxx(), list(cpu.CFLAGS), broken, tmp_path)
    if result["ok"] is None:
        pytest.skip("no vectorization report for this compiler")
    assert not result["ok"] and list(result["failed"]) == [line], result
    message = cpu.vectorization_warning(result)
    assert f"kernels.cpp:{line}" in message and "did not vectorize" in message


def test_the_build_warns_when_its_check_failed(monkeypatch):
    cpu.require()
    failed = {"ok": False, "loops": [94], "failed": {94: "never reported vectorized: for (...)"}}
    path = Path(cpu.build_info()["library"])
    monkeypatch.setattr(cpu, "_module", None)
    monkeypatch.setattr(cpu, "_info", {})
    monkeypatch.setattr(cpu, "_build", lambda: (path, True))
    monkeypatch.setattr(cpu, "_saved_report", lambda build_dir: failed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cpu.load() is not None
    assert any("kernels.cpp:94" in str(w.message) and w.category is RuntimeWarning
               for w in caught)


TARGETS = [("g++", ["-march=x86-64-v3"]),            # AVX2 + FMA (laptops, most servers)
           ("g++", ["-march=x86-64-v4"]),            # AVX-512 (cluster nodes)
           ("clang++", ["-march=x86-64-v3"]),
           ("aarch64-linux-gnu-g++", ["-march=armv8-a"])]  # NEON


@pytest.mark.parametrize("cxx, march", TARGETS, ids=lambda v: v if isinstance(v, str) else v[0])
def test_kernels_vectorize_for_other_targets(cxx, march, tmp_path):
    if shutil.which(cxx) is None:
        pytest.skip(f"{cxx} is not installed")
    flags = [f for f in cpu.CFLAGS if not f.startswith("-m")] + march  # -m: this host's tuning
    result = _compile(cxx, flags, SOURCE, tmp_path)
    assert result["ok"], cpu.vectorization_warning(result)
