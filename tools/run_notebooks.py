"""A development tool: run and clean the notebooks in notebooks/ (needs the notebooks extra:
pip install -e ".[notebooks]").

    python tools/run_notebooks.py run notebooks/*.ipynb -p DATA_DIR=../shared/data/dogs-vs-cats \
        -p FIGURES_DIR=docs/img --out-dir /tmp/executed
    python tools/run_notebooks.py strip notebooks/*.ipynb

``run`` executes each notebook top to bottom with nbclient, the way papermill does: the values
given with ``-p`` go into a new cell right after the cell tagged ``parameters``, and the first
failing cell stops it with that cell's error. The kernel is "python3" as ipykernel provides it
for the Python running this command (no ``ipykernel install`` step needed), started in the
notebook's own folder as Jupyter does. The tests use the same functions.
"""
from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"
# Parameters naming files or folders: given relative to where the command runs, while the kernel
# runs in notebooks/, so they are made absolute before injection.
PATH_PARAMETERS = ("DATA_DIR", "OUTPUT", "WEIGHTS", "FIGURES_DIR")


def inject_parameters(nb, parameters: Dict[str, Any]):
    """Insert ``NAME = value`` lines after the ``parameters`` cell (raises when there is none)."""
    index = next((i for i, c in enumerate(nb.cells) if PARAMETERS_TAG in c.get("metadata", {}).get("tags", [])),
                 None)
    if index is None:
        raise ValueError("the notebook has no cell tagged 'parameters'")
    if parameters:
        source = "# Parameters injected by paddle_catdog.notebooks\n" + "".join(
            f"{name} = {value!r}\n" for name, value in parameters.items())
        cell = nbformat.v4.new_code_cell(source, metadata={"tags": [INJECTED_TAG]})
        nb.cells.insert(index + 1, cell)
    return nb


def execute_notebook(path: Path, parameters: Optional[Dict[str, Any]] = None, timeout: int = 600,
                     out_path: Optional[Path] = None):
    """Execute ``path`` with ``parameters``; raise nbclient's CellExecutionError on a failing
    cell. Writes the executed notebook to ``out_path`` when given (also after a failure)."""
    path = Path(path)
    nb = inject_parameters(nbformat.read(str(path), as_version=4), dict(parameters or {}))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent.resolve())}})
    try:
        client.execute()
    finally:
        if out_path is not None:
            Path(out_path).parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, str(out_path))
    return nb


def strip_outputs(nb):
    """Remove outputs and execution counts (what git keeps), leaving sources and tags."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    return nb


def has_outputs(nb) -> bool:
    return any(c.cell_type == "code" and (c.outputs or c.execution_count is not None) for c in nb.cells)


def parse_parameter(text: str, cwd: Path) -> tuple:
    """``NAME=VALUE``: VALUE as a Python literal (3, 0.5, None, True, 'x') or else a string;
    path parameters become absolute."""
    if "=" not in text:
        raise ValueError(f"-p expects NAME=VALUE, got {text!r}")
    name, raw = text.split("=", 1)
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    if name in PATH_PARAMETERS and isinstance(value, str):
        value = str((cwd / value).resolve())
    return name, value


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/run_notebooks.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute notebooks top to bottom")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("-p", "--parameter", action="append", default=[], metavar="NAME=VALUE")
    run.add_argument("--out-dir", type=Path, default=None, help="write the executed notebooks here")
    run.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    strip = sub.add_parser("strip", help="remove outputs in place (before committing)")
    strip.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "strip":
        for path in args.notebooks:
            nbformat.write(strip_outputs(nbformat.read(str(path), as_version=4)), str(path))
        return 0
    try:
        parameters = dict(parse_parameter(p, Path.cwd()) for p in args.parameter)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for path in args.notebooks:
        out = args.out_dir / path.name if args.out_dir else None
        print(f"running {path} ...", flush=True)
        try:
            execute_notebook(path, parameters, args.timeout, out)
        except CellExecutionError as e:
            print(f"error: {path}: a cell failed:\n{e}", file=sys.stderr)
            return 1
        print(f"ok {path}" + (f" -> {out}" if out else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
