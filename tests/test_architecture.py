"""The package graph: imports run downwards only, so the folders read bottom to top.

Every import in every module of quadfire (function-level imports included) is read from the
source; an edge between two subpackages must go from a higher layer to a lower one.
"""
import ast
from pathlib import Path

import quadfire

ROOT = Path(quadfire.__file__).parent
# Bottom to top: a package may import only packages listed before it.
LAYERS = ["errors", "functional", "ops", "neurons", "layers", "models", "data", "analysis",
          "train", "export", "bench", "cli"]


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "quadfire" else None


def _imports(path: Path) -> set[str]:
    """Absolute names of the quadfire modules `path` imports."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    here = list(rel.parts[:-1])  # the package a relative import starts from
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
                found.add(name)
                if not node.module:  # from . import x: each x is a module of that package
                    found |= {f"{name}.{a.name}" for a in node.names}
            elif node.module:
                found.add(node.module)
    return {n for n in found if n.startswith("quadfire")}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        if rel.parts == ("__init__.py",):
            continue  # the front door re-exports from above and below by design
        src = rel.parts[0].removesuffix(".py")
        for target in map(_package, _imports(path)):
            if target and target != src:
                graph.setdefault(src, set()).add(target)
    return graph


def test_every_package_has_a_layer():
    packages = {p.name.removesuffix(".py") for p in ROOT.iterdir()
                if (p.is_dir() and (p / "__init__.py").exists()) or
                (p.suffix == ".py" and p.name != "__init__.py")}
    assert packages == set(LAYERS)


def test_imports_run_downwards_only():
    upward = sorted(f"{src} -> {dst}" for src, dsts in package_graph().items() for dst in dsts
                    if LAYERS.index(dst) > LAYERS.index(src))
    assert not upward, f"imports that run upwards (or form a cycle): {upward}"


def assert_acyclic(graph: dict[str, set[str]], what: str) -> None:
    """Depth-first search of `graph`; an import cycle fails naming its path."""
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle{what}: {' -> '.join(path + [node])}"
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            visit(nxt, path + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_the_package_graph_has_no_cycle():
    assert_acyclic(package_graph(), "")


CLI = ROOT / "cli"
# The one command module that runs the benchmarks; every other takes nothing from bench/.
BENCH_COMMAND = "quadfire.cli.bench"


def cli_graph() -> dict[str, set[str]]:
    """{module: the quadfire modules it imports} for every module of quadfire.cli."""
    return {"quadfire.cli." + p.stem if p.stem != "__init__" else "quadfire.cli": _imports(p)
            for p in CLI.glob("*.py")}


def test_only_the_bench_command_imports_bench():
    offenders = sorted(f"{mod} -> {dst}" for mod, dsts in cli_graph().items() for dst in dsts
                       if (dst == "quadfire.bench" or dst.startswith("quadfire.bench."))
                       and mod != BENCH_COMMAND)
    assert not offenders, f"command modules that import bench/ (argument types belong in " \
                          f"quadfire/cli/args.py): {offenders}"


def test_the_cli_modules_import_each_other_without_a_cycle():
    graph = {mod: {d for d in dsts if d.startswith("quadfire.cli.")}
             for mod, dsts in cli_graph().items()}
    assert_acyclic(graph, " in cli/")
