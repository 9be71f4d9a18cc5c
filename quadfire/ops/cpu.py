"""Build and load the fused CPU kernels (quadfire/ops/csrc) as a torch C++ extension.

The extension is compiled on first use with `torch.utils.cpp_extension.load` and cached on disk
(``$TORCH_EXTENSIONS_DIR/quadfire`` or ``~/.cache/torch_extensions/quadfire``), so later
processes only load the shared library. The cache key hashes the sources, the compiler flags,
the torch version and the CPU's instruction-set flags (the build uses -march=native), so a
stale or foreign binary is never picked up. The first compile is announced on stderr. Builds
are atomic (a private folder, then a rename), and a cached library is checked to be whole
before it is mapped: a damaged one is rebuilt with a one-line note, never loaded (`_build`).

The same compile writes the compiler's vectorization report, and the build checks that every
hot loop marked in csrc/kernels.cpp vectorized (`quadfire.ops.vectorization`); a loop that did
not is named in a RuntimeWarning (the kernels still work, only slower) and in `build_info()`.
At load the library's interface (`layout()`: table rows, shape codes, settings) is checked
against `quadfire.ops.pack`, and a library that disagrees is refused.

Without a working compiler, `load()` warns once and returns None and the dispatcher uses the
reference path; asking for ``backend="cpu"`` explicitly then raises with the build error.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError
from . import pack, vectorization

CSRC = Path(__file__).parent / "csrc"
SOURCES = ("kernels.cpp", "kernels_double.cpp", "buffers.cpp", "ops.cpp")


ARCH_ENV = "QUADFIRE_CPU_ARCH"  # a target instead of this CPU (docs/kernels.md "Build flags")
_ARCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def arch() -> tuple[str, str | None]:
    """The target the kernels are built for, and an error for a malformed setting:
    QUADFIRE_CPU_ARCH (e.g. x86-64-v3 for any AVX2+FMA CPU, x86-64-v4 for AVX-512, armv8.2-a),
    else "native", the build machine's own. Read once, at import."""
    value = os.environ.get(ARCH_ENV, "").strip() or "native"
    if _ARCH_NAME.fullmatch(value):
        return value, None
    return "native", (f"{ARCH_ENV} must name a compiler target such as x86-64-v3 or "
                      f"armv8.2-a, got {value!r}")


def _arch_flags(target: str) -> tuple[str, ...]:
    """Tune for one vector ISA (AVX2, AVX-512, NEON/SVE): the build machine's own by default.
    The binary is cached under a key that includes the flags and the CPU's feature flags, so it
    never runs elsewhere."""
    machine = platform.machine().lower()
    if machine in ("x86_64", "amd64", "i686", "i386"):
        # 256-bit vectors even where GCC's tuning for -march=native picks 128-bit ones: a CPU
        # that reports itself as Zen 1 (as QEMU's "EPYC" model does on newer hosts, like the
        # a 2-core virtualised AMD EPYC) gets 128-bit loops, and 256-bit ones run 13% faster there.
        # 256 is GCC's own choice for AVX2 and AVX-512 Intel and later AMD CPUs.
        return (f"-march={target}", "-mprefer-vector-width=256")
    if machine in ("aarch64", "arm64"):
        return (f"-mcpu={target}" if target == "native" else f"-march={target}",)
    return () if target == "native" else (f"-march={target}",)


# Why each flag (docs/kernels.md, "Build flags"):
# -ffp-contract=off: no fused multiply-add, so every product and sum rounds exactly as the
#   reference's separate PyTorch ops do and the spikes are bit-identical.
# -fno-trapping-math: lets GCC turn the selects of fire, floor and window into vector blends
#   on targets without mask registers (AVX2, NEON); under the default -ftrapping-math it keeps
#   a branch per element ("control flow in loop") because a comparison or a speculated
#   division could raise a floating-point trap. It changes no value: IEEE results are the
#   same, only trap/flag behaviour is assumed away (PyTorch never enables FP traps).
# -fno-math-errno: math builtins need not set errno, so they may stay inline as vector
#   instructions (nothing here reads errno).
ARCH, _ARCH_ERROR = arch()
CFLAGS = ("-O3", *_arch_flags(ARCH), "-ffp-contract=off", "-fno-trapping-math", "-fno-math-errno",
          "-fopenmp")
LDFLAGS = ("-fopenmp",)
REPORT = "vectorization.json"  # the build's vectorization check, next to the library

_lock = threading.Lock()
_module = None
_error: str | None = None
_info: dict = {}


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cache_dir() -> Path:
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "torch_extensions")
    return Path(base) / "quadfire"


def _cxx() -> str:
    return os.environ.get("CXX", "c++")  # the compiler torch.utils.cpp_extension uses


def build_name() -> str:
    """Extension name: changes whenever anything that affects the binary changes."""
    h = hashlib.sha256()
    for f in sorted(CSRC.iterdir()):
        if f.suffix in (".cpp", ".h"):
            h.update(f.name.encode() + f.read_bytes())
    h.update(" ".join(CFLAGS + LDFLAGS).encode())
    h.update(torch.__version__.encode() + _cpu_flags().encode())
    cxx = _cxx()
    h.update(cxx.encode() + _cxx_version(cxx).encode())
    return f"quadfire_neuron_{h.hexdigest()[:12]}"


@functools.lru_cache(maxsize=None)
def _cxx_version(cxx: str) -> str:
    """The compiler's first `--version` line, in the cache key so that an upgraded compiler
    (same name, new code generation) builds anew; "" where it cannot run (the build says why)."""
    try:
        r = subprocess.run(shlex.split(cxx) + ["--version"], capture_output=True, text=True,
                           timeout=30)
    except (OSError, ValueError, subprocess.SubprocessError):
        return ""
    return r.stdout.split("\n", 1)[0].strip()


def _check_vectorization(build_dir: Path, kind: str | None) -> dict:
    """Judge the report the compile wrote, save the verdict, drop the (large) raw reports."""
    reports = vectorization.find_reports(build_dir, kind)
    if not reports:
        result = {"ok": None, "reason": f"no vectorization report from {_cxx()} "
                                        f"(compiler kind {kind or 'unknown'})"}
    else:
        source = CSRC / "kernels.cpp"
        result = vectorization.check(vectorization.marked_loops(source),
                                     vectorization.read_reports(kind, reports), source)
    result["compiler"] = kind
    for f in [*build_dir.glob("*.vect"), *build_dir.glob("*.opt.yaml")]:
        f.unlink(missing_ok=True)
    (build_dir / REPORT).write_text(json.dumps(result, indent=1))
    return result


def library_problem(path: Path) -> str | None:
    """Why the shared library at `path` cannot be mapped safely, or None when it is whole.

    A library cut short (a linker killed mid-write, a full disk) loads without error, and
    the process then dies of SIGBUS at the first touch of a page past the file's end. So the
    ELF header's own account of the file must fit in it: the program headers and every
    loadable segment, and the section header table, which the linker writes last. (Only ELF,
    the format of Linux and the BSDs, is checked; elsewhere the atomic build alone guards.)"""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            head = f.read(64)
            if head[:4] != b"\x7fELF":
                return None if sys.platform == "darwin" else "is not an ELF shared library"
            if len(head) < 52 or head[4] not in (1, 2) or head[5] not in (1, 2):
                return f"is cut short ({size} bytes, not even a whole ELF header)"
            end = "<" if head[5] == 1 else ">"
            wide = head[4] == 2
            fields = struct.unpack(end + ("HHIQQQIHHHHHH" if wide else "HHIIIIIHHHHHH"),
                                   head[16:64 if wide else 52])
            phoff, shoff, phentsize, phnum, shentsize, shnum = (fields[4], fields[5],
                                                                *fields[8:12])
            if phentsize < (56 if wide else 32):  # the size of one program header entry
                return f"has a malformed ELF header (program header entries of {phentsize} bytes)"
            needed = max(phoff + phnum * phentsize, shoff + shnum * shentsize)
            if needed > size:
                return f"is cut short ({size} bytes, its ELF header accounts for {needed})"
            f.seek(phoff)
            table = f.read(phnum * phentsize)
    except OSError as e:
        return f"cannot be read ({e.strerror or e})"
    for i in range(phnum):
        entry = table[i * phentsize:(i + 1) * phentsize]
        if wide:
            kind, _, offset, _, _, filesz = struct.unpack(end + "IIQQQQ", entry[:40])
        else:
            kind, offset, _, _, filesz = struct.unpack(end + "IIIII", entry[:20])
        if kind == 1 and offset + filesz > size:  # PT_LOAD: what gets mapped
            return (f"is cut short ({size} bytes, its segment {i} ends at byte "
                    f"{offset + filesz})")
    return None


def _build():
    """The path of the compiled library, loaded, and whether it was compiled now.

    A cached library is validated (`library_problem`) before it is mapped; a damaged one is
    rebuilt with a one-line note. A build runs in a private temporary folder and its library
    is renamed into the cache only when complete (`os.replace` is atomic), so a build killed
    half-way, or two processes building at once, never leave a partial library there."""
    if _ARCH_ERROR:  # refuse to build for a target other than the one asked for
        raise ValueError(_ARCH_ERROR)
    name = build_name()
    build_dir = _cache_dir() / name
    built = sorted(build_dir.glob(f"{name}*.so"))
    if built:
        # Already compiled for exactly these sources, flags, torch and CPU: load the library
        # directly. Importing cpp_extension costs time and logs CUDA noise on GPU-less hosts.
        problem = library_problem(built[0])
        if problem is None:
            try:
                torch.ops.load_library(str(built[0]))
                return built[0], False
            except OSError as e:
                problem = f"cannot be loaded ({' '.join(str(e).split())[:200]})"
        print(f"quadfire: the cached fused CPU kernel library {built[0]} {problem}; "
              f"rebuilding it", file=sys.stderr, flush=True)
    else:
        print(f"quadfire: compiling the fused CPU neuron kernels (first use only, ~30 s); "
              f"cached in {build_dir}", file=sys.stderr, flush=True)
    from torch.utils import cpp_extension

    _cache_dir().mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=_cache_dir()))
    try:
        start = time.perf_counter()
        kind = vectorization.compiler_kind(_cxx())
        # is_python_module=False: the library registers torch operators (quadfire_cpu::
        # forward, ::backward) instead of a pybind module, which keeps the torch headers it
        # needs small. It is loaded from `work`; the mapping outlives the rename below.
        cpp_extension.load(
            name=name, sources=[str(CSRC / s) for s in SOURCES],
            extra_cflags=[*CFLAGS, *vectorization.report_flags(kind)],
            extra_ldflags=list(LDFLAGS), extra_include_paths=[str(CSRC)],
            build_directory=str(work), is_python_module=False, verbose=False)
        _check_vectorization(work, kind)
        library = sorted(work.glob(f"{name}*.so"))[0]
        build_dir.mkdir(parents=True, exist_ok=True)
        os.replace(work / REPORT, build_dir / REPORT)
        os.replace(library, build_dir / library.name)  # the library last: it marks the build
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"quadfire: fused CPU kernels built in {time.perf_counter() - start:.1f} s",
          file=sys.stderr, flush=True)
    return build_dir / library.name, True


def library_layout(module) -> dict:
    """The interface the loaded library was built with, in `pack.layout()`'s form."""
    out = {}
    for line in module.layout().strip().splitlines():
        key, _, value = line.partition(":")
        items = [v for v in value.strip().split(",") if v]
        out[key] = int(value) if key == "grad_rows" else items
    return out


def check_layout(module) -> None:
    """Raise unless the library's table rows, shape codes and settings are pack.py's."""
    built, expected = library_layout(module), pack.layout()
    diff = [f"{k}: library {built.get(k)} vs pack.py {v}" for k, v in expected.items()
            if built.get(k) != v]
    if diff:
        raise RuntimeError("the fused CPU kernel library disagrees with quadfire/ops/pack.py "
                           "(edit csrc/neuron.h and csrc/ops.cpp to match, docs/kernels.md "
                           "'Adding a neuron parameter or a neuron model'): " + "; ".join(diff))


def load():
    """The namespace of the compiled operators (torch.ops.quadfire_cpu), or None when it cannot
    be built or disagrees with pack.py (warned once)."""
    global _module, _error
    if _module is not None or _error is not None:
        return _module
    _check_cache_limit(os.environ.get("QUADFIRE_CPU_CACHE_MB"))
    with _lock:
        if _module is None and _error is None:
            fresh = False
            try:
                path, fresh = _build()
                check_layout(torch.ops.quadfire_cpu)
                _info.update(library=str(path), flags=" ".join(CFLAGS), target=ARCH,
                             vectorization=_saved_report(path.parent))
                _module = torch.ops.quadfire_cpu
            except Exception as exc:  # any build failure: no compiler, no headers, bad flags
                _error = f"{type(exc).__name__}: {exc}".strip()
                warnings.warn(f"quadfire: could not build the fused CPU neuron kernels; using the "
                              f"reference path instead. Build error: {_error[-2000:]}",
                              RuntimeWarning, stacklevel=3)
            if fresh and _module is not None and _info["vectorization"].get("ok") is False:
                warnings.warn(vectorization_warning(_info["vectorization"]), RuntimeWarning,
                              stacklevel=3)
    return _module


# The most MiB whose byte count csrc/buffers.cpp can hold (it shifts the MiB left by 20 bits
# in a 64-bit size_t; more wraps around to a small or zero limit).
MAX_CACHE_MB = (2**64 - 1) >> 20


def _check_cache_limit(value: str | None) -> None:
    """QUADFIRE_CPU_CACHE_MB must be a whole number of MiB that fits; csrc/buffers.cpp reads
    it with atoll, which would turn a typo ("2G", "1e3") into 0 or 1, and a number too large
    into a wrapped-around limit, quietly disabling the cache."""
    if value is None:
        return
    if not value.strip().isdigit():
        raise ConfigError(f"QUADFIRE_CPU_CACHE_MB must be a whole number of MiB (0 keeps no "
                          f"buffers), got {value!r}")
    if int(value) > MAX_CACHE_MB:
        raise ConfigError(f"QUADFIRE_CPU_CACHE_MB must be at most {MAX_CACHE_MB} MiB (the "
                          f"limit in bytes must fit in 64 bits), got {value.strip()}")


def vectorization_warning(result: dict) -> str:
    lines = "; ".join(f"kernels.cpp:{line}: {why}" for line, why in result["failed"].items())
    return (f"quadfire: these hot loops of the fused CPU kernels did not vectorize, so the "
            f"kernels run (correctly, but) several times slower: {lines}")


def _saved_report(build_dir: Path) -> dict:
    try:
        return json.loads((build_dir / REPORT).read_text())
    except (OSError, ValueError):
        return {"ok": None, "reason": "no vectorization check recorded for this build"}


def available() -> bool:
    """True when the fused CPU kernels are built (building them on first call)."""
    return load() is not None


def require():
    """The operator namespace, or a RuntimeError that carries the build error."""
    module = load()
    if module is None:
        raise RuntimeError(f"backend='cpu' was requested but the fused CPU kernels could not be "
                           f"built: {_error}")
    return module


def build_info() -> dict:
    """Where the library lives, its flags and the vectorization check; or the build error."""
    if load() is None:
        return {"error": _error}
    return dict(_info)


def forward(x, u0, table, s: pack.Forward):
    """Raw fused forward on [T, M] float32/float64 tensors (quadfire/ops/fused.py)."""
    return tuple(require().forward(x, u0, table, list(s)))


def backward(grad_spikes, grad_state, grad_trace, h, u0, table, s: pack.Backward, x_dtype):
    """Raw fused backward; gradients come out in the compute dtype, which is x's here."""
    return tuple(require().backward(grad_spikes, grad_state, grad_trace, h, u0, table, list(s)))


def empty_cache() -> int:
    """Free the kernels' cached output buffers (csrc/buffers.cpp) and forget which sizes came
    back (what follows starts like a new process); returns the bytes freed."""
    module = load()
    return int(module.empty_cache()) if module is not None else 0


def cache_info() -> dict:
    """The output-buffer cache now: buffers and bytes held, and its limit in bytes
    (QUADFIRE_CPU_CACHE_MB)."""
    module = load()
    if module is None:
        return {"buffers": 0, "bytes": 0, "limit_bytes": 0}
    buffers, held, limit = (int(v) for v in module.cache_info())
    return {"buffers": buffers, "bytes": held, "limit_bytes": limit}


def cached_bytes() -> int:
    """Bytes of output buffers the kernels hold for reuse (at most QUADFIRE_CPU_CACHE_MB)."""
    return cache_info()["bytes"]
