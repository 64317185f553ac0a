"""The package's layers (docs/architecture.md): no import cycles, and no module imports from a layer above its own.

Every import counts, also those inside functions (a lazy import is still a dependency). A new top-level module
or package must be given a layer here (and in docs/architecture.md) before it can land.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "cyclegan"

# Lowest first. A module may import from its own layer and those below; within a layer, any direction, as long
# as there is no cycle.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("leaves", ("errors", "registry", "config", "runtime", "compiling", "progress", "metric_catalog")),
    (
        "core",
        (
            "nets",
            "losses",
            "patchnce",
            "pool",
            "schedule",
            "data",
            "metrics",
            "checkpoint",
            "augment",
            "content",
            "segmenter",
            "tiled",
            "reference",
            "distributed",
            "demo",
            "plots",
            "machine",
        ),
    ),
    ("methods", ("methods",)),
    ("inference", ("translate",)),
    ("app", ("api", "export", "evaluate", "package", "serve", "study", "paired_eval")),
    ("train", ("train",)),
    ("top", ("cli", "commands", "__main__", "")),  # "": the package's own __init__ (the public API)
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(dotted: str) -> bool:
    base = PACKAGE.parent / Path(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def imports_of(path: Path) -> set[str]:
    """The package's modules that `path` imports anywhere (relative imports resolved; `from pkg import mod`
    counts mod, `from mod import name` counts mod)."""
    name = module_name(path)
    here = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            if not target.startswith("cyclegan"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(sub if is_module(sub) else target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("cyclegan"))
    return found - {name}


def graph() -> dict[str, set[str]]:
    return {module_name(p): imports_of(p) for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    top = module.split(".")[1] if "." in module else ""
    for i, (_, names) in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(
        f"{module} has no layer: add {top!r} to LAYERS in tests/test_layers.py and to docs/architecture.md"
    )


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in list(g):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_upward_imports():
    upward = [
        f"{m} ({LAYERS[layer_of(m)][0]}) imports {d} ({LAYERS[layer_of(d)][0]})"
        for m, deps in graph().items()
        for d in sorted(deps)
        if layer_of(d) > layer_of(m)
    ]
    assert upward == []


def test_config_imports_nothing_of_the_package_but_errors():
    assert graph()["cyclegan.config"] <= {"cyclegan.errors"}


def test_the_checker_finds_cycles_and_upward_imports():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert layer_of("cyclegan.train.loop") > layer_of("cyclegan.methods.base") > layer_of("cyclegan.config")


def test_every_import_names_a_module_of_the_package():
    missing = [f"{m} imports {d}" for m, deps in graph().items() for d in sorted(deps) if not is_module(d)]
    assert missing == []


def test_modules_are_small_and_public_functions_take_few_positional_arguments():
    """No module over 400 lines; no public function with more than 5 positional parameters (keyword-only past
    those: STYLE.md)."""
    long, wide = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if len(text.splitlines()) > 400:
            long.append(f"{module_name(path)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
                names = [a.arg for a in node.args.posonlyargs + node.args.args if a.arg not in ("self", "cls")]
                if len(names) > 5:
                    wide.append(f"{module_name(path)}.{node.name}({', '.join(names)})")
    assert long == [] and wide == []
