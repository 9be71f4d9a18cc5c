"""``quadfire analyze neuron|mismatch|run|gradients`` and ``quadfire plot raster|traces|curves``.

Where outputs go, one rule for every command (and `quadfire export`): what is about one run
is written into that run's folder (``plot``, ``analyze run``, ``analyze gradients --run``);
what is about no run (``analyze neuron``, ``mismatch``, ``gradients`` of untrained networks)
into ``analysis/<what>/`` under the current folder. ``--out`` puts any of them elsewhere.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import figure_file, float_in, int_in, output_dir, output_file
from ..errors import ParameterError

# Largest float64 working set of one mismatch batch (elements): T x neurons x max(batch, 4096
# antithetic pairs) x 2. Beyond this the measurement would not fit in memory.
MISMATCH_ELEMENTS = 1 << 28


def _neuron(args) -> int:
    from ..analysis import figures
    from ..analysis.single_neuron import summary
    from ..neurons import QIF

    neuron = QIF(args.a, args.u1, args.u2, args.v_th, discretization=args.discretization).params()
    s = summary(neuron)
    p = s["params"]
    print(f"QIF ({args.discretization}) a={p['a']:g} u1={p['u1']:g} u2={p['u2']:g} "
          f"v_th={p['v_th']:g} (a*d = {p['a*d']:g})")
    for fp in s["fixed_points"]:
        kind = "stable" if fp["stable"] else "unstable"
        print(f"  fixed point u = {fp['u']:.6g}: slope f' = {fp['slope']:.6g} ({kind})")
    print(f"  rest is {s['rest']}; rheobase I* = {s['rheobase']:.6g}")
    floor = "none" if s["v_min"] is None else f"{s['v_min']:.6g}"
    if "vertex" in s:
        print(f"  vertex u_v = {s['vertex']:.6g}; v_min floor = {floor}; "
              f"throw point u1 - 1/a = {s['throw_point']:.6g}")
    else:
        print(f"  v_min floor = {floor}" + (f"; the flow blows up within a step from "
                                            f"u = {s['blowup']:.6g}" if "blowup" in s else ""))
    for current, steps in s["steps_to_threshold"].items():
        text = f"{steps} steps" if isinstance(steps, int) else steps
        print(f"  steps to threshold from rest at I = {current}: {text}")
    out = Path(args.out)
    written = [
        figures.save(figures.cobweb(neuron), out / "cobweb.png"),
        figures.save(figures.fi_figure(neuron), out / "fi_curve.png"),
        figures.save(figures.bifurcation_figure(neuron), out / "bifurcation.png"),
    ]
    (out / "neuron.json").write_text(json.dumps(s, indent=1))
    print("wrote " + ", ".join(str(w) for w in written))
    return 0


def _mismatch(args) -> int:
    from ..analysis import figures
    from ..analysis.mismatch import DEFAULT_FACTORS, MismatchSetup, format_table, measure_mismatch

    chunk = max(args.batch, min(args.pairs, 4096))
    if 2 * args.T * args.neurons * chunk > MISMATCH_ELEMENTS:
        raise ParameterError(f"--T {args.T} x --neurons {args.neurons} x {chunk} samples needs "
                             f"more than {MISMATCH_ELEMENTS * 8 >> 30} GiB per batch; use fewer "
                             f"neurons or steps")
    setup = MismatchSetup(args.a, args.u1, args.u2, args.v_th, args.sigma, args.rho, args.T,
                          args.neurons, args.batch, args.batches, args.pairs, args.seed,
                          discretization=args.discretization)
    factors = DEFAULT_FACTORS if args.factors is None else tuple(args.factors)
    result = measure_mismatch(setup, factors, shape=args.shape)
    print(format_table(result))
    out = Path(args.out)
    png = figures.save(figures.mismatch_figure(result), out / "mismatch.png")
    data = {"setup": vars(setup), "widths": result.widths, "offsets": result.offsets,
            "cosine": result.cosine, "cosine_std": result.cosine_std,
            "cosine_mean_grad": result.cosine_mean_grad, "ceiling": result.ceiling,
            "best": result.best_sweep()}
    (out / "mismatch.json").write_text(json.dumps(data, indent=1))
    print(f"wrote {png} and {out / 'mismatch.json'}")
    return 0


def _run_layers(args) -> int:
    from ..analysis.layer_stats import format_layers, layer_statistics, rule_mismatch
    from ..train.report import write_json
    from ..train.runs import load_run, run_loaders

    run = load_run(args.run, device="cpu")
    test = run_loaders(run.cfg, run.info, args.smoke, workers=0)[1]
    stats = layer_statistics(run.model, test, args.batches)
    mismatch = rule_mismatch(stats, run.cfg.T, pairs=args.pairs) if args.mismatch else None
    print(format_layers(stats, mismatch))
    out = Path(args.out) if args.out else run.path.parent / "layers.json"
    write_json(out, {"run": str(run.path), "layers": stats, "mismatch": mismatch})
    print(f"wrote {out}")
    return 0


def _gradients(args) -> int:
    import torch

    from ..analysis.figures import save
    from ..analysis.gradients import gradient_growth, growth_figure
    from ..models import create_model

    if args.run is not None:
        from ..train.runs import load_run, sample_batch

        run = load_run(args.run, device="cpu")
        x = sample_batch(run.cfg, args.smoke, run.info)[:args.samples]
        if x.dim() != 4:
            raise ParameterError(f"analyze gradients runs static images [N, C, H, W] as T "
                                 f"frames; this run's inputs have shape {tuple(x.shape)}")
        models = {run.cfg.neuron: run.model}
        title = f"input gradient vs T: {run.path.parent.name} (trained)"
        out = Path(args.out) if args.out else run.path.parent
    else:
        x = torch.rand(args.samples, 1, 8, 8, generator=torch.Generator().manual_seed(args.seed))
        models = {}
        for name in args.neurons:
            torch.manual_seed(args.seed)
            models[name] = create_model("convnet", neuron=name, T=4)
        title = "input gradient vs T: untrained digits convnet"
        out = Path(args.out or "analysis/gradients")
    curves = gradient_growth(models, x, args.T, progress=print)
    png = save(growth_figure(curves, title), out / "gradients.png")
    data = {"title": title, "samples": int(x.shape[0]), "loss": "sum of time-mean logits",
            "curves": {k: {str(T): v for T, v in c.items()} for k, c in curves.items()}}
    (out / "gradients.json").write_text(json.dumps(data, indent=1))
    print(f"wrote {png} and {out / 'gradients.json'}")
    return 0


def _activity(args):
    """(the run's spike and membrane records of one sample, where its figures go)."""
    from ..analysis.plots import record
    from ..train.runs import load_run, sample_batch

    run = load_run(args.run, device="cpu")
    records = record(run.model, sample_batch(run.cfg, args.smoke, run.info), args.sample)
    return records, Path(args.out) if args.out else run.path.parent / f"{args.what}.png"


def _raster(args) -> int:
    from ..analysis.figures import save
    from ..analysis.plots import raster

    records, out = _activity(args)
    print(f"wrote {save(raster(records, args.layers, args.max_neurons), out)}")
    return 0


def _traces(args) -> int:
    from ..analysis.figures import save
    from ..analysis.plots import traces

    records, out = _activity(args)
    layer = args.layer or next(iter(records))
    print(f"wrote {save(traces(records, layer, args.neurons), out)}")
    return 0


def _curves(args) -> int:
    from ..analysis.figures import save
    from ..analysis.plots import curves

    run = Path(args.run)
    out = Path(args.out) if args.out else (run if run.is_dir() else run.parent) / "curves.png"
    print(f"wrote {save(curves(args.run), out)}")
    return 0


FINITE = float_in()


def _qif_args(p: argparse.ArgumentParser) -> None:
    from ..functional import QIFParams

    d = QIFParams()  # the defaults live there
    p.add_argument("--a", type=FINITE, default=d.a, help=f"curvature a (default {d.a:g})")
    p.add_argument("--u1", type=FINITE, default=d.u1, help=f"rest potential u1 (default {d.u1:g})")
    p.add_argument("--u2", type=FINITE, default=d.u2,
                   help=f"critical potential u2 (default {d.u2:g})")
    p.add_argument("--v-th", dest="v_th", type=FINITE, default=d.v_th,
                   help=f"threshold (default {d.v_th:g})")


def _run_args(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("run", help="run directory (with last.pt) or checkpoint file")
    p.add_argument("--sample", type=int_in(0, 1 << 20), default=0,
                   help="which sample of the first test batch")
    p.add_argument("--smoke", action="store_true", help="random inputs instead of the dataset")
    _figure_out(p, name)


def _figure_out(p: argparse.ArgumentParser, name: str) -> None:
    p.add_argument("--out", type=figure_file,
                   help=f"figure to write, .png, .pdf or .svg (default: {name}.png in the run's "
                        f"folder)")


def add_commands(sub) -> None:
    analyze = sub.add_parser("analyze", help="neuron dynamics and surrogate gradient mismatch")
    asub = analyze.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = asub.add_parser("neuron",
                        help="fixed points, rheobase, v_min; cobweb, f-I, bifurcation PNGs")
    _qif_args(p)
    p.add_argument("--discretization", choices=("euler", "exact", "hybrid"), default="euler",
                   help="the QIF map analysed (the f-I figure shows all three)")
    p.add_argument("--out", type=output_dir, default="analysis/neuron", help="folder for the PNGs")
    p.set_defaults(func=_neuron)
    p = asub.add_parser("mismatch",
                        help="cosine of surrogate vs smoothed-loss gradients per window")
    _qif_args(p)
    p.add_argument("--sigma", type=float_in(0, lo_open=True), default=1.0,
                   help="tdBN input scale alpha*v_th (> 0)")
    p.add_argument("--rho", type=float_in(0, 1, hi_open=True), default=0.5,
                   help="share of the input std that is drive, in [0, 1)")
    p.add_argument("--T", type=int_in(1, 1000), default=8)
    p.add_argument("--neurons", type=int_in(1, 100_000), default=64)
    p.add_argument("--batch", type=int_in(1, 100_000), default=64,
                   help="samples per surrogate gradient")
    p.add_argument("--batches", type=int_in(1, 10_000), default=16,
                   help="surrogate gradients averaged")
    p.add_argument("--pairs", type=int_in(1, 10_000_000), default=20000,
                   help="antithetic pairs for the true gradient")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    p.add_argument("--factors", type=float_in(0, 1000, lo_open=True), nargs="+",
                   help="sweep widths as multiples of the band width 2(v_th - u2) "
                        "(default: mismatch.DEFAULT_FACTORS)")
    p.add_argument("--shape", default="rect", choices=("rect", "triangle", "sigmoid", "atan"))
    p.add_argument("--discretization", choices=("euler", "exact", "hybrid"), default="euler",
                   help="the QIF map the layer runs (default euler)")
    p.add_argument("--out", type=output_dir, default="analysis/mismatch",
                   help="folder for the PNG and JSON")
    p.set_defaults(func=_mismatch)

    p = asub.add_parser("run", help="per-layer input statistics, window coverage, regimes and "
                                    "rule mismatch of a trained network")
    p.add_argument("run", help="run directory (with last.pt) or checkpoint file")
    p.add_argument("--batches", type=int_in(1, 100_000), default=4,
                   help="test batches to read (default 4)")
    p.add_argument("--mismatch", action="store_true",
                   help="also measure each window rule's gradient mismatch per QIF layer")
    p.add_argument("--pairs", type=int_in(2, 10_000_000), default=4000,
                   help="antithetic pairs per true gradient")
    p.add_argument("--smoke", action="store_true", help="random inputs instead of the dataset")
    p.add_argument("--out", type=output_file, help="JSON to write (default RUN/layers.json)")
    p.set_defaults(func=_run_layers)

    p = asub.add_parser("gradients", help="input-gradient norm against T, with and without "
                                          "the reset's gradient (docs/neuron.md)")
    p.add_argument("--run", default=None,
                   help="a trained run (default: untrained digits convnets, one per neuron)")
    p.add_argument("--neurons", nargs="+", default=["qif", "qif-exact", "qif-hybrid", "lif",
                                                     "plif", "if"],
                   help="neurons of the untrained convnets")
    p.add_argument("--T", nargs="+", type=int_in(1, 10_000),
                   default=[4, 8, 16, 32, 64, 100, 200, 500, 1000], help="values of T")
    p.add_argument("--samples", type=int_in(1, 4096), default=16, help="input images")
    p.add_argument("--seed", type=int_in(0, 2**32 - 1), default=0)
    p.add_argument("--smoke", action="store_true", help="random inputs instead of the dataset")
    p.add_argument("--out", type=output_dir,
                   help="folder for the PNG and JSON (default: the run's folder with --run, "
                        "else analysis/gradients)")
    p.set_defaults(func=_gradients)

    plot = sub.add_parser("plot", help="spike rasters, membrane traces, training curves "
                                       "(PNG, PDF or SVG, into the run's folder)")
    psub = plot.add_subparsers(dest="what", metavar="WHAT", required=True)
    p = psub.add_parser("raster", help="spike raster of every (or chosen) spiking layer")
    _run_args(p, "raster")
    p.add_argument("--layers", nargs="+", help="spiking layer names (default: all)")
    p.add_argument("--max-neurons", type=int_in(1, 1 << 20), default=64)
    p.set_defaults(func=_raster)
    p = psub.add_parser("traces", help="membrane (charged potential) traces of chosen neurons")
    _run_args(p, "traces")
    p.add_argument("--layer", help="spiking layer name (default: the first)")
    p.add_argument("--neurons", type=int_in(0, 1 << 30), nargs="+", default=[0, 1, 2],
                   help="neuron indices (flattened) of the layer")
    p.set_defaults(func=_traces)
    p = psub.add_parser("curves", help="training curves from a run's metrics.csv")
    p.add_argument("run", help="run directory")
    _figure_out(p, "curves")
    p.set_defaults(func=_curves)
