r"""Run percent-format notebooks without a Jupyter kernel (cases.md, K15).

A notebook here is a plain-text ``.py`` file in jupytext's "percent" format: an
optional commented YAML header between ``# ---`` lines, then cells opened by
``# %%`` lines, markdown cells by ``# %% [markdown]``. :func:`execute_notebook`
runs its code cells in order, in one namespace, in a fresh subprocess started
with the running interpreter (``sys.executable``). No kernel, kernelspec or
Jupyter data directory is consulted, so the notebooks run in any environment
that can import theorybox.

The subprocess gets ``THEORYBOX_NOTEBOOK_SIZE`` (``"small"`` or ``"full"``),
which notebooks read to choose their horizons, and ``MPLBACKEND=Agg`` unless a
backend is already set. A failing cell raises :class:`NotebookCellError` naming
the code cell, its first line in the file and the exception.

Command line::

    python -m theorybox.notebooks notebooks/*.py [--size small|full]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from theorybox.errors import InvalidParameterError, TheoryboxError

__all__ = [
    "SIZES",
    "Cell",
    "NotebookCellError",
    "NotebookError",
    "NotebookTimeoutError",
    "code_cells",
    "execute_notebook",
    "main",
    "notebook_size",
    "read_cells",
    "show_figure",
]

#: Values of ``THEORYBOX_NOTEBOOK_SIZE``: short horizons for tests, the real ones.
SIZES = ("small", "full")


# Helpers the notebooks call.


def notebook_size() -> str:
    """``THEORYBOX_NOTEBOOK_SIZE`` as a notebook reads it (default ``"full"``)."""
    size = os.environ.get("THEORYBOX_NOTEBOOK_SIZE", "full")
    if size not in SIZES:
        raise InvalidParameterError(
            f"THEORYBOX_NOTEBOOK_SIZE = {size!r}; use 'small' or 'full'"
        )
    return size


def show_figure(fig, name: str) -> None:
    """Show ``fig`` in a Jupyter kernel; elsewhere render and close it.

    With ``THEORYBOX_NOTEBOOK_FIGURES`` set, the figure is also saved there as
    ``name.png`` (handy when a notebook runs headless).
    """
    import matplotlib.pyplot as plt

    folder = os.environ.get("THEORYBOX_NOTEBOOK_FIGURES")
    if folder:
        os.makedirs(folder, exist_ok=True)
        fig.savefig(os.path.join(folder, f"{name}.png"), dpi=90)
    if "ipykernel" in sys.modules:
        plt.show()
    else:
        fig.canvas.draw()
        plt.close(fig)

#: A cell marker: ``# %%``, an optional title, an optional ``[markdown]``-like tag.
_MARKER = re.compile(r"^# %%(?:[ \t]+(?P<rest>.*))?$")
_TAG = re.compile(r"\[(?P<kind>markdown|md|raw)\]")


class NotebookError(TheoryboxError):
    """A notebook could not be read or run."""


class NotebookCellError(NotebookError):
    """A code cell raised.

    Attributes
    ----------
    path : pathlib.Path
        The notebook.
    cell : int
        Number of the failing code cell, counting code cells from 1.
    line : int
        Line of the file on which that cell's code starts.
    exc_type, exc_message : str
        The exception's class name and message.
    traceback : str
        The traceback printed in the subprocess (lines refer to the file).
    """

    def __init__(self, path, cell, line, exc_type, exc_message, traceback):
        self.path = Path(path)
        self.cell = cell
        self.line = line
        self.exc_type = exc_type
        self.exc_message = exc_message
        self.traceback = traceback
        super().__init__(
            f"{self.path.name}: code cell {cell} (line {line}) raised "
            f"{exc_type}: {exc_message}\n{traceback}"
        )


class NotebookTimeoutError(NotebookError):
    """A notebook ran past its time limit; ``cell`` is the one that was running."""

    def __init__(self, path, timeout, cell, line):
        self.path = Path(path)
        self.timeout = timeout
        self.cell = cell
        self.line = line
        where = f"code cell {cell} (line {line})" if cell else "start-up"
        super().__init__(
            f"{self.path.name} ran past its {timeout:g} s limit, in {where}; "
            "raise timeout= or shrink the notebook's small size"
        )


@dataclass(frozen=True)
class Cell:
    """One cell of a percent-format notebook.

    Attributes
    ----------
    kind : str
        ``"code"``, ``"markdown"`` or ``"raw"``.
    source : str
        The cell's text as the file holds it (markdown keeps its ``# ``), with
        leading and trailing blank lines removed.
    line : int
        Line of the file on which ``source`` starts (1-based).
    """

    kind: str
    source: str
    line: int


def read_cells(path) -> list[Cell]:
    """Split a percent-format notebook into cells.

    Text between the jupytext header and the first marker counts as a code cell
    when it is not blank, as jupytext reads it.
    """
    lines = Path(path).read_text(encoding="utf-8").splitlines()

    # Skip the commented YAML header ("# ---" ... "# ---") at the top.
    start = 0
    if lines and lines[0].rstrip() == "# ---":
        for i in range(1, len(lines)):
            if lines[i].rstrip() == "# ---":
                start = i + 1
                break
        else:
            raise NotebookError(f"{path}: the '# ---' header is never closed")

    # Cut at the markers; a marker's tag sets the cell kind.
    cells = []
    kind, body, first = "code", [], start + 1
    for number, text in enumerate(lines[start:], start=start + 1):
        match = _MARKER.match(text.rstrip())
        if match is None:
            body.append(text)
            continue
        cells.append(_make_cell(kind, body, first))
        tag = _TAG.search(match.group("rest") or "")
        kind = "code" if tag is None else {"md": "markdown"}.get(
            tag.group("kind"), tag.group("kind")
        )
        body, first = [], number + 1
    cells.append(_make_cell(kind, body, first))
    return [cell for cell in cells if cell is not None]


def _make_cell(kind, body, first):
    while body and not body[0].strip():
        body, first = body[1:], first + 1
    while body and not body[-1].strip():
        body = body[:-1]
    if not body:
        return None
    return Cell(kind, "\n".join(body), first)


def code_cells(path) -> list[Cell]:
    """The code cells of a percent-format notebook, in order."""
    return [cell for cell in read_cells(path) if cell.kind == "code"]


# The program the subprocess runs: it executes the cells one by one in a shared
# namespace and writes its progress to a JSON file, so that the parent can name
# the cell that failed or was running when the time ran out.
_DRIVER = r"""
import json, sys, traceback

def report(state):
    with open(sys.argv[2], "w", encoding="utf-8") as f:
        json.dump(state, f)

with open(sys.argv[1], encoding="utf-8") as f:
    job = json.load(f)
namespace = {"__name__": "__main__", "__file__": job["path"]}
done = 0
for number, (line, source) in enumerate(job["cells"], start=1):
    report({"status": "running", "cell": number, "line": line, "done": done})
    # Pad with blank lines so that tracebacks give the notebook file's lines.
    code = compile("\n" * (line - 1) + source, job["path"], "exec")
    try:
        exec(code, namespace)
    except BaseException as exc:
        report({"status": "error", "cell": number, "line": line, "done": done,
                "exc_type": type(exc).__name__, "exc_message": str(exc),
                "traceback": "".join(traceback.format_exception(
                    type(exc), exc, exc.__traceback__.tb_next))})
        sys.exit(1)
    done += 1
report({"status": "ok", "cell": None, "line": None, "done": done})
"""


def execute_notebook(
    path, *, size: str = "small", timeout: float = 600.0, env: dict | None = None
) -> int:
    """Run a percent-format notebook's code cells in a fresh subprocess.

    Parameters
    ----------
    path : str or pathlib.Path
        The notebook (``.py``, percent format). The subprocess runs in its folder.
    size : {"small", "full"}
        Passed as ``THEORYBOX_NOTEBOOK_SIZE``.
    timeout : float
        Seconds for the whole notebook.
    env : dict, optional
        Extra environment variables for the subprocess (on top of ``os.environ``).

    Returns
    -------
    int
        Number of code cells executed.

    Raises
    ------
    NotebookCellError
        A cell raised; the message names the cell, its line and the exception.
    NotebookTimeoutError
        The notebook ran past ``timeout``.
    NotebookError
        The subprocess died without reporting (e.g. killed), or the file is bad.
    """
    if size not in SIZES:
        raise InvalidParameterError(f"size = {size!r}; use one of {SIZES}")
    if not timeout > 0:
        raise InvalidParameterError(f"timeout = {timeout!r} must be positive seconds")
    path = Path(path).resolve()
    if not path.is_file():
        raise NotebookError(f"no notebook at {path}")
    cells = code_cells(path)

    with tempfile.TemporaryDirectory(prefix="theorybox-nb-") as tmp:
        job_file = Path(tmp, "job.json")
        state_file = Path(tmp, "state.json")
        driver = Path(tmp, "driver.py")
        job = {"path": str(path), "cells": [(c.line, c.source) for c in cells]}
        job_file.write_text(json.dumps(job), encoding="utf-8")
        driver.write_text(_DRIVER, encoding="utf-8")

        # A fresh interpreter: the running one, told the size, drawing off-screen.
        child_env = dict(os.environ)
        child_env.setdefault("MPLBACKEND", "Agg")
        child_env.update(env or {})
        child_env["THEORYBOX_NOTEBOOK_SIZE"] = size
        command = [sys.executable, str(driver), str(job_file), str(state_file)]
        try:
            proc = subprocess.run(
                command,
                cwd=path.parent,
                env=child_env,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            state = _read_state(state_file)
            raise NotebookTimeoutError(
                path, timeout, state.get("cell"), state.get("line")
            ) from None

        # Read what the driver reported.
        state = _read_state(state_file)
        if state.get("status") == "error":
            raise NotebookCellError(
                path, state["cell"], state["line"], state["exc_type"],
                state["exc_message"], state["traceback"],
            )
        if proc.returncode != 0 or state.get("status") != "ok":
            where = (
                f" in code cell {state['cell']} (line {state['line']})"
                if state.get("cell")
                else ""
            )
            raise NotebookError(
                f"{path.name}: the subprocess exited with status {proc.returncode}"
                f"{where} without reporting an exception; its stderr ends with:\n"
                f"{proc.stderr[-2000:]}"
            )
        return int(state["done"])


def _read_state(state_file: Path) -> dict:
    try:
        return json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def main(argv=None) -> int:
    """Run each notebook given; print one line per notebook and a total."""
    parser = argparse.ArgumentParser(
        prog="python -m theorybox.notebooks",
        description="Run percent-format notebooks with this interpreter, no kernel.",
    )
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--size", choices=SIZES, default="small")
    parser.add_argument("--timeout", type=float, default=600.0,
                        help="seconds per notebook (default 600)")
    args = parser.parse_args(argv)

    total_cells, failures = 0, []
    for path in args.notebooks:
        started = time.perf_counter()
        try:
            n = execute_notebook(path, size=args.size, timeout=args.timeout)
        except NotebookError as exc:
            failures.append(path)
            print(f"FAILED {path}: {exc}", file=sys.stderr)
            continue
        total_cells += n
        print(f"ok {path}: {n} cells in {time.perf_counter() - started:.1f} s")
    done = len(args.notebooks) - len(failures)
    print(
        f"executed {done} notebook(s), {total_cells} code cells "
        f"(size={args.size}, python={sys.executable}); {len(failures)} failed"
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
