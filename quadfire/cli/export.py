"""``quadfire export RUN --format nir``."""
from __future__ import annotations

from pathlib import Path

from .args import float_in, output_file, shape as shape_arg

FORMATS = ("nir",)


def _export(args) -> int:
    import nir

    from ..export.graph import to_nir
    from ..train.runs import load_run

    run = load_run(args.run, device="cpu")
    model, cfg = run.model, run.cfg
    shape = args.input_shape or run.info.step_shape
    graph = to_nir(model, shape, args.dt, args.unit_r)
    out = Path(args.out) if args.out else run.path.parent / "model.nir"
    out.parent.mkdir(parents=True, exist_ok=True)
    nir.write(out, graph)
    kinds: dict[str, int] = {}
    for node in graph.nodes.values():
        qif = getattr(node, "metadata", {}).get("quadfire_node") == "QIF"
        name = "QIF (extension)" if qif else type(node).__name__
        kinds[name] = kinds.get(name, 0) + 1
    print(f"wrote {out}: {cfg.model} ({cfg.neuron}), input {shape}, dt={args.dt:g}; nodes: "
          + ", ".join(f"{k} x{v}" for k, v in kinds.items()))
    if "QIF (extension)" in kinds:
        print("note: QIF nodes are quadfire extension nodes (nir.LIF carriers with QIF metadata); "
              "only quadfire runs them as QIF, other NIR tools see the linearised LIF "
              "(docs/export.md)")
    return 0


def add_commands(sub) -> None:
    p = sub.add_parser("export", help="export a trained network (NIR)",
                       description="Export a run's model for neuromorphic tools.")
    p.add_argument("run", help="run directory (with last.pt) or checkpoint file")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--out", type=output_file, help="output file (default RUN/model.nir)")
    p.add_argument("--dt", type=float_in(0, lo_open=True), default=1.0,
                   help="Euler time step the NIR neurons use (> 0)")
    p.add_argument("--unit-r", action="store_true",
                   help="write LIF/IF nodes with r = 1, the input gain in the weights before "
                        "them (for Norse; docs/export.md, 'Other simulators')")
    p.add_argument("--input-shape", type=shape_arg,
                   help="one sample's shape C,H,W (default: the run's)")
    p.set_defaults(func=_export)
