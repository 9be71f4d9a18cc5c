"""Did the hot loops of the CPU kernels vectorize? Read from the compiler's own report.

Each hot inner loop of ``csrc/kernels.cpp`` carries the comment ``// vectorized`` on its
``for`` line. The build (`quadfire.ops.cpu`) adds `report_flags` to the compile, so the
report comes from the very compile that produces the library, one file per translation unit:

- GCC: ``-fdump-tree-vect-optimized-missed`` writes ``<unit>.cpp.<pass>t.vect``, the
  vectorizer's successes and failures under the name of each function it processed;
- Clang: ``-fsave-optimization-record`` limited to the loop vectorizer writes
  ``<unit>.opt.yaml``, one record per remark with its function.

`check` passes when every marked loop is reported vectorized somewhere and, in every function
(template instantiation) where the compiler reported that it could not vectorize the loop, it
also reports the loop vectorized (GCC analyses some loops more than once, e.g. the versioned
copy of a loop; a loop that the optimizer deleted as dead code in one instantiation is not an
error). Torch-free, so tests can run it on reports of other targets (cross compilers).
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

MARKER = "// vectorized"


def marked_loops(source: Path) -> dict[int, str]:
    """Line number -> stripped source text of every loop that carries the marker."""
    out = {}
    for number, line in enumerate(source.read_text().splitlines(), start=1):
        if line.rstrip().endswith(MARKER):
            out[number] = line.strip()[: -len(MARKER)].strip()
    return out


def loop_extent(source: Path, line: int) -> range:
    """The lines of the loop that starts on `line`: its pragmas, its ``for`` and its body to
    the closing brace. Compilers place a loop's remark on the ``for`` line or, for an
    ``omp simd`` loop, on the pragma (Clang) or the first statement of the body (GCC); the
    marked loops hold no inner loop, so any loop remark in this range is about this loop."""
    lines = source.read_text().splitlines()
    first = line
    while first > 1 and lines[first - 2].strip().startswith("#pragma"):
        first -= 1
    depth = 0
    for number in range(line, len(lines) + 1):
        text = lines[number - 1].split("//")[0]
        depth += text.count("{") - text.count("}")
        if depth <= 0 and "{" in "".join(lines[line - 1:number]):
            return range(first, number + 1)
    return range(first, line + 1)


def compiler_kind(cxx: str) -> str | None:
    """"gcc", "clang" or None (unknown or not runnable), from ``cxx --version``."""
    try:
        text = subprocess.run([cxx, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.lower()
    except (OSError, subprocess.SubprocessError):
        return None
    if "clang" in text:
        return "clang"
    if "free software foundation" in text or "gcc" in text or "g++" in text:
        return "gcc"
    return None


def report_flags(kind: str | None) -> list[str]:
    """Compiler flags that make the compile write its vectorization report next to the object."""
    if kind == "gcc":
        return ["-fdump-tree-vect-optimized-missed"]
    if kind == "clang":
        return ["-fsave-optimization-record", "-foptimization-record-passes=loop-vectorize"]
    return []


def find_reports(build_dir: Path, kind: str | None, unit: str = "kernels") -> list[Path]:
    """The reports the compile wrote in `build_dir` for the translation units whose names
    start with `unit` (kernels.cpp and kernels_double.cpp, which includes it)."""
    pattern = {"gcc": f"{unit}*.vect", "clang": f"{unit}*.opt.yaml"}.get(kind or "")
    return sorted(build_dir.glob(pattern)) if pattern else []


# function -> (lines reported vectorized, lines reported not vectorized)
Remarks = dict[str, tuple[set[int], set[int]]]


def _add(remarks: Remarks, function: str, line: int, vectorized: bool) -> None:
    done, missed = remarks.setdefault(function, (set(), set()))
    (done if vectorized else missed).add(line)


def parse_gcc(text: str, source_name: str = "kernels.cpp") -> Remarks:
    """Remarks about `source_name`'s loops in a GCC vect dump (``;; Function`` sections)."""
    name = re.escape(source_name)
    remark = re.compile(rf"(?:^|/){name}:(\d+):\d+: (?:optimized|note|missed): "
                        rf"(loop vectorized|couldn't vectorize loop)")
    remarks: Remarks = {}
    function = "?"
    for line in text.splitlines():
        if line.startswith(";; Function "):
            function = line.split()[2]
            continue
        m = remark.search(line)
        if m:
            _add(remarks, function, int(m.group(1)), m.group(2) == "loop vectorized")
    return remarks


def parse_clang(text: str, source_name: str = "kernels.cpp") -> Remarks:
    """Remarks about `source_name`'s loops in a Clang optimization record (YAML)."""
    remarks: Remarks = {}
    for record in re.split(r"^--- ", text, flags=re.M):
        kind = re.match(r"!(\w+)", record)
        where = re.search(r"File:\s*'?([^',}]+)'?,\s*Line:\s*(\d+)", record)
        function = re.search(r"^Function:\s*(\S+)", record, flags=re.M)
        if not (kind and where and function) or not where.group(1).endswith(source_name):
            continue
        name = re.search(r"^Name:\s*(\w+)", record, flags=re.M)
        if kind.group(1) == "Passed" and name and name.group(1) == "Vectorized":
            _add(remarks, function.group(1), int(where.group(2)), True)
        elif kind.group(1) == "Missed":
            _add(remarks, function.group(1), int(where.group(2)), False)
    return remarks


def parse(kind: str, text: str, source_name: str = "kernels.cpp") -> Remarks:
    return (parse_gcc if kind == "gcc" else parse_clang)(text, source_name)


def read_reports(kind: str, paths: list[Path], source_name: str = "kernels.cpp") -> Remarks:
    """The remarks of several reports, each function named after its report (Clang names
    every OpenMP region ".omp_outlined..N" afresh in each translation unit)."""
    remarks: Remarks = {}
    for path in paths:
        for function, lines in parse(kind, path.read_text(), source_name).items():
            remarks[f"{path.name}:{function}"] = lines
    return remarks


def check(loops: dict[int, str], remarks: Remarks, source: Path | None = None) -> dict:
    """Judge the marked `loops` (of `source`, to find each loop's extent) against `remarks`:
    a JSON-able summary with ``ok`` and, per failed line, why (never vectorized, or not
    vectorized in some functions)."""
    failed = {}
    for line, text in loops.items():
        lines = set(loop_extent(source, line)) if source is not None else {line}
        done = [f for f, (v, _) in remarks.items() if lines & v]
        missed = [f for f, (v, m) in remarks.items() if lines & m and not lines & v]
        if not done:
            failed[line] = f"never reported vectorized: {text}"
        elif missed:
            failed[line] = (f"not vectorized in {len(missed)} of {len(done) + len(missed)} "
                            f"instantiations (e.g. {missed[0]}): {text}")
    return {"ok": not failed, "loops": sorted(loops), "failed": failed}
