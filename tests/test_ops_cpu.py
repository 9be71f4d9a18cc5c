"""The fused CPU backend against the reference: property tests, dtypes, empty and bad input."""
from __future__ import annotations

import functools
import os
from pathlib import Path
import subprocess
import sys

import pytest
import torch
from hypothesis import given, settings

from quadfire import ops
from quadfire.neurons import LIF, QIF
from quadfire.errors import ConfigError
from quadfire.ops import cpu, pack

from strategies import (assert_half_input, assert_matches_reference, assert_same,
                                 cases, run)


@pytest.fixture(scope="module", autouse=True)
def built():
    """Build (or load from the cache) once; a failed build must fail these tests, not skip."""
    cpu.require()


@given(cases())
def test_fused_cpu_matches_reference(case):
    assert_matches_reference(case, functools.partial(run, backend="cpu"))


@settings(max_examples=15)
@given(cases(max_t=16, max_elems=1000))
def test_fused_cpu_float64(case):
    neuron, x, state, trace, seed = case
    ref = run(neuron.double(), x, state, trace, seed, "reference", torch.float64)
    fused = run(neuron, x, state, trace, seed, "cpu", torch.float64)
    assert_same(ref, fused, repr(neuron))


@pytest.mark.parametrize("neuron", [QIF(), QIF(learnable="channel", channels=7), LIF(reset="soft"),
                                    QIF(discretization="exact", learnable="channel", channels=7),
                                    QIF(discretization="hybrid", reset="soft")],
                         ids=repr)
def test_several_chunks_and_a_partial_one_match_the_reference(neuron):
    """A step of 8645 elements: two whole chunks of the kernels' 4096 and a partial third, split
    over the threads; with per-channel parameters the chunk boundaries cut channels."""
    torch.manual_seed(3)
    with torch.no_grad():
        for prm in neuron.parameters():
            prm.add_(0.05 * torch.randn_like(prm))
    x = torch.randn(3, 5, 7, 13, 19) * 0.8 + 0.3
    state = neuron.rest_state(x[0]) - 0.1 * torch.rand(x.shape[1:])
    assert_matches_reference((neuron, x, state, True, 11), functools.partial(run, backend="cpu"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("neuron", [QIF(), QIF(reset="soft"), QIF(learnable="channel", channels=3),
                                    LIF(), QIF(discretization="exact"),
                                    QIF(discretization="hybrid")], ids=repr)
def test_half_inputs_spike_like_float32_on_rounded_input(dtype, neuron):
    torch.manual_seed(0)
    x = (torch.randn(9, 4, 3, 5) + 0.5).to(dtype).requires_grad_()
    assert_half_input(neuron, x, "cpu")


def test_cpu_is_the_default_for_cpu_floats():
    for dtype in (torch.float16, torch.bfloat16, torch.float32, torch.float64):
        assert ops.select_backend(torch.zeros(2, 3, dtype=dtype)) == "cpu"


@pytest.mark.parametrize("shape", [(0, 4, 3), (5, 0, 3), (5, 4, 0), (0, 0)])
def test_empty_inputs_give_empty_results(shape):
    neuron = QIF(learnable="scalar")
    x = torch.zeros(shape, requires_grad=True)
    u0 = torch.zeros(shape[1:], requires_grad=True)
    out = ops.neuron_multistep(x, neuron.params(len(shape) - 1), u0, trace=True, backend="cpu")
    assert out.spikes.shape == x.shape and out.trace.shape == x.shape
    assert out.state.shape == u0.shape
    (out.spikes.sum() + out.state.sum() + out.trace.sum()).backward()
    assert x.grad is not None and x.grad.shape == x.shape  # empty, but part of the graph
    assert u0.grad is not None and u0.grad.shape == u0.shape


def test_inference_saves_nothing_and_matches():
    torch.manual_seed(1)
    x = torch.randn(6, 2, 3, 4) + 0.5
    neuron = QIF(learnable="channel", channels=3)
    with torch.no_grad():
        fused = ops.neuron_multistep(x, neuron.params(3), neuron.rest_state(x[0]), backend="cpu")
        ref = ops.neuron_multistep(x, neuron.params(3), neuron.rest_state(x[0]), backend="reference")
    assert torch.equal(fused.spikes, ref.spikes) and torch.equal(fused.state, ref.state)


@pytest.mark.parametrize("bad, error, match", [
    (lambda: torch.ones(3, 4, dtype=torch.int64), TypeError, "floating-point"),
    (lambda: torch.ones(3, 4, dtype=torch.complex64), TypeError, "floating-point"),
    (lambda: torch.ones(5), ValueError, r"\[T, N, ...\]"),
])
def test_bad_input_is_named(bad, error, match):
    with pytest.raises(error, match=match):
        ops.neuron_multistep(bad(), QIF().params(), torch.zeros(4), backend="cpu")


def test_bad_state_and_backend_are_named():
    x = torch.ones(3, 4)
    with pytest.raises(ValueError, match=r"shape of one time step \(4,\), got \(5,\)"):
        ops.neuron_multistep(x, QIF().params(), torch.zeros(5))
    with pytest.raises(TypeError, match="state must be a floating-point"):
        ops.neuron_multistep(x, QIF().params(), torch.zeros(4, dtype=torch.int32))
    with pytest.raises(ValueError, match="unknown backend 'gpu'"):
        ops.neuron_multistep(x, QIF().params(), torch.zeros(4), backend="gpu")
    with pytest.raises(ValueError, match="backend='cpu' runs CPU tensors; got a tensor on meta"):
        ops.select_backend(torch.empty(3, 4, device="meta"), "cpu")


def test_raw_kernel_rejects_mismatched_tensors():
    x = torch.zeros(3, 4)
    table = torch.zeros(len(pack.ROWS), 1)
    settings = [1, 1, 1, 0, 1]  # pack.Forward: inner, period, qif, soft, need_h
    fwd = torch.ops.quadfire_cpu.forward
    with pytest.raises(RuntimeError, match="state must be a contiguous CPU tensor of 4"):
        fwd(x, torch.zeros(5), table, settings)
    with pytest.raises(RuntimeError, match="expected float32 or float64"):
        fwd(x.half(), torch.zeros(4).half(), table.half(), settings)
    with pytest.raises(RuntimeError, match="parameter table"):
        fwd(x, torch.zeros(4), torch.zeros(7, 1), settings)
    with pytest.raises(RuntimeError, match="forward takes 5 settings, got 4"):
        fwd(x, None, table, settings[:4])


def test_unpackable_parameters_fall_back_or_are_refused():
    x = torch.randn(4, 2, 3) + 0.5
    p = QIF().params(2)
    odd = type(p)(**{**p.__dict__, "a": torch.full((2, 3), 0.25, dtype=torch.float64)})
    auto = ops.neuron_multistep(x, odd, torch.zeros(2, 3))
    ref = ops.neuron_multistep(x, odd, torch.zeros(2, 3), backend="reference")
    assert torch.equal(auto.spikes, ref.spikes)
    with pytest.raises(ValueError, match="cannot pack these parameters"):
        ops.neuron_multistep(x, odd, torch.zeros(2, 3), backend="cpu")


def _python(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, **env})


def test_cached_build_is_reused_by_a_new_process():
    r = _python("from quadfire import ops; import torch;"
                "print(ops.select_backend(torch.zeros(2, 2)))", {})
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "cpu"
    assert "compiling" not in r.stderr


def test_a_truncated_cached_library_is_rebuilt_with_a_note_not_mapped(tmp_path):
    """A library cut short (a linker killed mid-write) used to kill every later process,
    `quadfire info` included, with SIGBUS. It is checked before it is mapped and rebuilt; the
    build is atomic, so it leaves no partial file and no temporary folder behind. (The child's
    compile is stood in for by a copy of this machine's good library, which the real compile
    would produce: the check, the note, the rename and the load are the real ones.)"""
    good = Path(cpu.build_info()["library"])
    data = good.read_bytes()
    assert cpu.library_problem(good) is None
    cache = tmp_path / "ext" / "quadfire" / good.parent.name
    cache.mkdir(parents=True)
    bad = cache / good.name
    odd = bytearray(data)
    odd[54:56] = (8).to_bytes(2, "little")  # e_phentsize: program header entries of 8 bytes
    bad.write_bytes(bytes(odd))
    assert cpu.library_problem(bad) == "has a malformed ELF header (program header entries " \
                                       "of 8 bytes)"
    for size in (0, 10, 100, len(data) - 1, len(data) // 2):  # half: mapped, it is SIGBUS
        bad.write_bytes(data[:size])
        assert cpu.library_problem(bad) is not None, size
    code = ("import shutil, sys, torch\n"
            "from pathlib import Path\n"
            "from torch.utils import cpp_extension\n"
            "from quadfire import ops\n"
            "def compile_(name, build_directory, **kw):\n"
            "    out = Path(build_directory) / f'{name}.so'\n"
            "    shutil.copy(sys.argv[1], out)\n"
            "    torch.ops.load_library(str(out))\n"
            "cpp_extension.load = compile_\n"
            "print(ops.select_backend(torch.zeros(2, 2)))\n")
    env = {**os.environ, "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")}
    r = subprocess.run([sys.executable, "-c", code, str(good)], capture_output=True, text=True,
                       timeout=120, env=env)
    assert r.returncode == 0 and r.stdout.strip() == "cpu", r.stderr[-3000:]
    notes = [line for line in r.stderr.splitlines() if line.startswith("quadfire: ")]
    assert notes[0] == (f"quadfire: the cached fused CPU kernel library {bad} is cut short "
                        f"({len(data) // 2} bytes, its ELF header accounts for {len(data)}); "
                        f"rebuilding it"), r.stderr[-3000:]
    assert bad.read_bytes() == data
    assert sorted(p.name for p in cache.parent.iterdir()) == [cache.name]  # no temp folder


def test_no_compiler_warns_once_and_uses_reference(tmp_path):
    code = ("import warnings, torch\n"
            "from quadfire import ops\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    b1 = ops.select_backend(torch.zeros(2, 2)); b2 = ops.select_backend(torch.zeros(2, 2))\n"
            "print(b1, b2, sum('could not build' in str(m.message) for m in w))\n"
            "try:\n"
            "    ops.select_backend(torch.zeros(2, 2), 'cpu')\n"
            "except RuntimeError as e:\n"
            "    print('refused:', 'could not be built' in str(e))\n")
    r = _python(code, {"CXX": str(tmp_path / "no-such-compiler"),
                       "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0] == "reference reference 1"
    assert "refused: True" in r.stdout


def test_a_chosen_target_replaces_this_cpu_in_the_flags_and_the_cache_key():
    code = ("from quadfire.ops import cpu\n"
            "print(cpu.ARCH, cpu.build_name(), ' '.join(cpu.CFLAGS))\n")
    native = _python(code, {"QUADFIRE_CPU_ARCH": ""}).stdout.split(maxsplit=2)
    chosen = _python(code, {"QUADFIRE_CPU_ARCH": "x86-64-v3"}).stdout.split(maxsplit=2)
    assert native[0] == "native" and chosen[0] == "x86-64-v3"
    assert native[1] != chosen[1]  # another binary, cached beside the native one
    assert "=x86-64-v3" in chosen[2] and "=native" in native[2]


def test_another_compiler_version_gets_another_cache_key(tmp_path):
    cxx = tmp_path / "cc"
    cxx.write_text('#!/bin/sh\necho "fakecc $FAKE_VERSION"\n')
    cxx.chmod(0o755)
    code = "from quadfire.ops import cpu\nprint(cpu.build_name())\n"
    names = [_python(code, {"CXX": str(cxx), "FAKE_VERSION": v}).stdout.strip()
             for v in ("12.2", "12.2", "13.1")]
    assert names[0] == names[1] != names[2] and names[0].startswith("quadfire_neuron_")


@pytest.mark.parametrize("value", ["2G", "1e3", "-1", ""])
def test_a_malformed_cache_limit_is_named(value):
    code = ("import torch\nfrom quadfire import ops\n"
            "try:\n    ops.select_backend(torch.zeros(2, 2))\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    r = _python(code, {"QUADFIRE_CPU_CACHE_MB": value})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ConfigError QUADFIRE_CPU_CACHE_MB must be a whole number")
    assert repr(value) in r.stdout
    assert cpu._check_cache_limit(" 64 ") is None and cpu._check_cache_limit("0") is None


def test_a_cache_limit_too_large_for_64_bits_is_named():
    """99999999999999999999999 MiB used to wrap around in buffers.cpp to a negative (then
    zero) limit, disabling the cache without a word."""
    code = ("import torch\nfrom quadfire import ops\n"
            "try:\n    ops.select_backend(torch.zeros(2, 2))\n"
            "except Exception as e:\n    print(type(e).__name__, e)\n")
    r = _python(code, {"QUADFIRE_CPU_CACHE_MB": "99999999999999999999999"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"ConfigError QUADFIRE_CPU_CACHE_MB must be at most "
                               f"{2**44 - 1} MiB"), r.stdout
    assert "got 99999999999999999999999" in r.stdout
    assert cpu._check_cache_limit(str(2**44 - 1)) is None
    with pytest.raises(ConfigError):
        cpu._check_cache_limit(str(2**44))


def test_a_malformed_target_is_named_and_the_reference_path_used(tmp_path):
    code = ("import warnings, torch\n"
            "from quadfire import ops\n"
            "with warnings.catch_warnings(record=True) as w:\n"
            "    warnings.simplefilter('always')\n"
            "    b = ops.select_backend(torch.zeros(2, 2))\n"
            "print(b, [str(m.message) for m in w])\n")
    r = _python(code, {"QUADFIRE_CPU_ARCH": "native -O0",
                       "TORCH_EXTENSIONS_DIR": str(tmp_path / "ext")})
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("reference ")
    assert "QUADFIRE_CPU_ARCH must name a compiler target" in r.stdout
    assert "'native -O0'" in r.stdout
    assert not (tmp_path / "ext").exists()  # nothing was compiled


def test_large_outputs_are_cached_and_reused_correctly():
    cpu.empty_cache()
    torch.manual_seed(2)
    neuron = QIF(learnable="scalar")
    x = torch.randn(4, 2, 300_000) + 0.4  # 9.6 MB per [T, M] output: cacheable
    ref = ops.neuron_multistep(x, neuron.params(2), neuron.rest_state(x[0]), backend="reference")
    for _ in range(3):  # the third run writes into the second run's recycled buffers
        out = ops.neuron_multistep(x, neuron.params(2), neuron.rest_state(x[0]), trace=True,
                                   backend="cpu")
        assert torch.equal(out.spikes, ref.spikes) and torch.equal(out.state, ref.state)
        del out
    assert cpu.cached_bytes() > 0
    assert cpu.empty_cache() > 0 and cpu.cached_bytes() == 0


def test_the_cache_keeps_only_sizes_that_come_back():
    """One run of a layer leaves nothing behind; a loop keeps its working set."""
    cpu.empty_cache()
    x = torch.randn(4, 3_300_001) + 0.4  # sizes (rounded to 2 MiB) no other test uses
    with torch.no_grad():
        QIF()(x)
        assert cpu.cache_info()["buffers"] == 0
        QIF()(x)
        QIF()(x)
    info = cpu.cache_info()
    assert info["buffers"] >= 1 and info["bytes"] >= 13_200_004
    assert info["limit_bytes"] > 0
    cpu.empty_cache()
