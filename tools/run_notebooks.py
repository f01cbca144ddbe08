"""A development tool: run, check and clean the notebooks in notebooks/ (needs the notebooks
extra: pip install -e ".[notebooks]").

    # regenerate the committed, executed notebooks (what a learner sees on GitHub and AI Studio)
    python tools/run_notebooks.py run notebooks/*.ipynb -p DATA_DIR=../shared/data/dogs-vs-cats --in-place
    python tools/run_notebooks.py check notebooks/*.ipynb      # every code cell ran, in order, no error
    python tools/run_notebooks.py run notebooks/*.ipynb -p DATA_DIR=../shared/data/dogs-vs-cats \
        -p FIGURES_DIR=docs/img --out-dir /tmp/executed
    python tools/run_notebooks.py strip notebooks/*.ipynb

``run`` executes each notebook top to bottom with nbclient, the way papermill does: the values
given with ``-p`` go into a new cell right after the cell tagged ``parameters``, and the first
failing cell stops it with that cell's error. The kernel is "python3" as ipykernel provides it
for the Python running this command (no ``ipykernel install`` step needed), started in the
notebook's own folder as Jupyter does. With ``--in-place`` the executed notebook replaces the
source only when every cell succeeded, ``DATA_DIR`` reaches the kernel as ``CATDOG_DATA`` (no
injected cell: the committed notebooks keep ``DATA_DIR = None``), and other path parameters are
written relative to the notebook's folder (the committed notebooks name no machine's paths). The tests use the same functions.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

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


# Executed notebooks are committed: keep them small enough to read on GitHub and AI Studio.
MAX_NOTEBOOK_BYTES = 4_000_000
MAX_OUTPUT_BYTES = 400_000


def execution_problems(nb) -> List[str]:
    """What makes ``nb`` not a clean top-to-bottom run: a code cell that did not run, execution
    counts out of order (1, 2, 3, ... in cell order), an error output, an oversized output."""
    problems = []
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    for n, (i, cell) in enumerate(code, start=1):
        if cell.execution_count != n:
            problems.append(f"cell {i}: execution count {cell.execution_count}, expected {n} "
                            "(every code cell runs once, top to bottom)")
        for out in cell.outputs:
            if out.get("output_type") == "error":
                problems.append(f"cell {i}: error output {out.get('ename')}: {out.get('evalue', '')[:200]}")
            size = len(nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[out])])))
            if size > MAX_OUTPUT_BYTES:
                problems.append(f"cell {i}: an output of {size:,} bytes (at most {MAX_OUTPUT_BYTES:,})")
    size = len(nbformat.writes(nb).encode())
    if size > MAX_NOTEBOOK_BYTES:
        problems.append(f"the notebook is {size:,} bytes (at most {MAX_NOTEBOOK_BYTES:,})")
    return problems


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
    run.add_argument("--in-place", action="store_true",
                     help="replace each notebook by its executed copy (only when every cell succeeded)")
    run.add_argument("--timeout", type=int, default=3600, help="seconds per cell")
    check = sub.add_parser("check", help="check that notebooks are executed top to bottom without errors")
    check.add_argument("notebooks", nargs="+", type=Path)
    strip = sub.add_parser("strip", help="remove outputs in place (before committing)")
    strip.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    if args.command == "strip":
        for path in args.notebooks:
            nbformat.write(strip_outputs(nbformat.read(str(path), as_version=4)), str(path))
        return 0
    if args.command == "check":
        problems = [f"{path}: {p}" for path in args.notebooks
                    for p in execution_problems(nbformat.read(str(path), as_version=4))]
        print("\n".join(problems) or "ok: every code cell ran, in order, without an error")
        return 1 if problems else 0
    try:
        parameters = dict(parse_parameter(p, Path.cwd()) for p in args.parameter)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return run_all(args.notebooks, parameters, args.timeout, args.out_dir, args.in_place)


def run_all(paths: Sequence[Path], parameters: Dict[str, Any], timeout: int, out_dir: Optional[Path],
            in_place: bool) -> int:
    for path in paths:
        out = out_dir / path.name if out_dir else None
        values = parameters
        if in_place:  # paths relative to the notebook, which runs in its own folder
            values = {k: os.path.relpath(v, path.parent.resolve()) if k in PATH_PARAMETERS and isinstance(v, str)
                      else v for k, v in parameters.items()}
            # The data set goes in as CATDOG_DATA, which the notebooks read when DATA_DIR is None,
            # not as an injected cell: the committed notebook keeps DATA_DIR = None, so a learner
            # without this machine's folders runs it unchanged.
            if "DATA_DIR" in values:
                os.environ["CATDOG_DATA"] = str(values.pop("DATA_DIR"))
        print(f"running {path} ...", flush=True)
        try:
            nb = execute_notebook(path, values, timeout, out)
        except CellExecutionError as e:
            print(f"error: {path}: a cell failed:\n{e}", file=sys.stderr)
            return 1
        if in_place:
            nbformat.write(nb, str(path))
        print(f"ok {path}" + (f" -> {out}" if out else "") + (" (in place)" if in_place else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
