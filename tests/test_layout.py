"""The package's structure: imports point one way (down the layers below), with no cycle, no
function-local import of the package's own modules, prediction never imports the trainer, and no
module grows past ~300 lines."""
import ast
from pathlib import Path
from typing import Dict, Set

from conftest import ROOT

PACKAGE = ROOT / "paddle_catdog"
# Lowest first; a module may import from its own layer (without a cycle) or the ones below.
LAYERS = [
    {"paddle_catdog", "cpu", "config", "transforms", "imagesize", "runtime", "files", "distributed", "plots",
     "torchfile", "static_graph", "process"},
    {"data", "models", "checkpoint", "metrics", "runlog", "weights"},
    {"train", "predict", "evaluate", "explain", "basics", "basics_brief", "basics_figures", "demo"},
    {"cli", "entry", "launch", "launch_predict", "__main__"},
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    parts = module.split(".")
    key = "__main__" if parts[-1] == "__main__" else (parts[1] if len(parts) > 1 else parts[0])
    return next(i for i, names in enumerate(LAYERS) if key in names)


def imports(path: Path, module: str, top_level_only: bool = False) -> Set[str]:
    """The package modules ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
                          or (ROOT / Path(*candidate.split("."))).is_dir() else base)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.split(".")[0] == "paddle_catdog" and m != module}


def graph() -> Dict[str, Set[str]]:
    return {module_name(p): imports(p, module_name(p)) for p in PACKAGE.rglob("*.py")}


def test_imports_point_down_the_layers():
    wrong = [f"{m} -> {d}" for m, deps in graph().items() for d in deps if layer(d) > layer(m)]
    assert not wrong, "imports of a higher layer:\n" + "\n".join(wrong)


def test_no_import_cycles():
    g = graph()
    # a package's __init__ is imported with each of its modules: count only its own imports
    seen, stack, cycles = set(), [], []

    def visit(m: str) -> None:
        if m in stack:
            cycles.append(" -> ".join(stack[stack.index(m):] + [m]))
            return
        if m in seen:
            return
        seen.add(m)
        stack.append(m)
        for d in sorted(g.get(m, ())):
            visit(d)
        stack.pop()
    for m in sorted(g):
        visit(m)
    assert not cycles, "\n".join(cycles)


def test_the_package_imports_its_modules_at_the_top_only():
    local = {}
    for p in PACKAGE.rglob("*.py"):
        m = module_name(p)
        inner = imports(p, m) - imports(p, m, top_level_only=True)
        if inner:
            local[m] = inner
    assert not local, f"function-local imports of package modules: {local}"


def test_prediction_and_export_never_import_the_trainer():
    g = graph()
    for m, deps in g.items():
        if m.startswith("paddle_catdog.predict"):
            assert not [d for d in deps if d.startswith("paddle_catdog.train")], m


def test_modules_stay_short():
    long = {module_name(p): n for p in PACKAGE.rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 320}
    assert not long, f"modules over ~300 lines: {long}"
