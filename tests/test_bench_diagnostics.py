"""`quadfire info`: the system report, the self-benchmark and the command."""
from __future__ import annotations

import json

from quadfire import cli
from quadfire.bench import diagnostics
from quadfire.ops import cpu


def test_system_report_names_versions_isa_backends_library_and_cache():
    cpu.require()
    r = diagnostics.system_report()
    assert r["versions"]["torch"] and r["versions"]["python"]
    assert r["cpu"]["model"] and r["cpu"]["isa"] != ""
    assert r["backends"]["cpu"] == "fused C++ kernels (built)"
    assert r["backends"]["cuda"]  # a device, or why not
    assert r["cpu_library"]["library"].endswith(".so")
    assert "-ffp-contract=off" in r["cpu_library"]["flags"]
    assert r["cpu_library"]["vectorization"]["ok"] in (True, None)
    assert set(r["output_cache"]) == {"buffers", "bytes", "limit_bytes"}
    assert r["threads"]["torch"] >= 1
    json.dumps(r)


def test_vector_isa_reads_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(diagnostics, "_cpuinfo", lambda: {"flags": "sse4_2 avx avx2 fma"})
    assert diagnostics.vector_isa() == "AVX2+FMA"
    monkeypatch.setattr(diagnostics, "_cpuinfo", lambda: {"flags": "avx2 fma avx512f"})
    assert diagnostics.vector_isa() == "AVX-512F"
    monkeypatch.setattr(diagnostics, "_cpuinfo", lambda: {"Features": "fp asimd evtstrm"})
    assert diagnostics.vector_isa() == "NEON"


def test_a_chosen_kernel_target_is_named_in_headers_and_info(monkeypatch):
    from quadfire.bench import neurons
    from quadfire.ops import cpu

    assert diagnostics.kernel_target() == "" or cpu.ARCH != "native"
    monkeypatch.setattr(cpu, "ARCH", "x86-64-v3")
    assert "kernels built for x86-64-v3 (QUADFIRE_CPU_ARCH)" in neurons.machine_line("cpu")
    report = diagnostics.system_report()
    report["cpu_library"] = {**report["cpu_library"], "target": "x86-64-v3", "flags": "-O3",
                             "library": "lib.so", "vectorization": {"ok": True}}
    assert "target: x86-64-v3 (set by QUADFIRE_CPU_ARCH)" in diagnostics.format_report(report)


def test_self_benchmark_compares_with_copy_and_reference(one_thread):
    # one thread: with two on a busy machine, OpenMP barriers in a 16k-neuron layer can cost
    # more than the work, and the comparison would measure the machine's load, not the kernel
    b = diagnostics.self_benchmark(seconds=0.3, neurons=1 << 14, steps=3)
    assert b["runs"] >= 2 and b["fused_ms"] > 0 and b["copy_ms"] > 0
    assert 0 < b["copy_bandwidth_share"] and b["speedup_vs_reference"] > 1
    assert "% of copy bandwidth" in diagnostics.format_report(diagnostics.system_report(), b)


def test_info_command_prints_text_and_json(capsys):
    assert cli.main(["info", "--seconds", "0"]) == 0
    text = capsys.readouterr().out
    assert "CPU:" in text and "backend for CPU tensors" in text and "cache" in text
    assert cli.main(["info", "--json", "--seconds", "0.2"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["self_benchmark"]["neurons"] == 1 << 20 and "cpu_library" in data
