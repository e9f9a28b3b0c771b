"""The notebooks run without a Jupyter kernel, and the .py / .ipynb pairs agree.

cases.md, K15: with an empty Jupyter data directory (no kernelspec anywhere) the
notebooks still execute, with the running interpreter, and the run says how many
notebooks and cells it executed.
"""

import json
import sys
import time
from pathlib import Path

import pytest

from theorybox.errors import TheoryboxError
from theorybox.notebooks import (
    NotebookCellError,
    NotebookTimeoutError,
    code_cells,
    execute_notebook,
    main,
    read_cells,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PAIRED = sorted(NOTEBOOKS.glob("*.py"))

#: Code cells of notebooks/precision_exploration.py (update when cells change).
PRECISION_CELLS = 8

PROBE = """\
# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# A probe: which interpreter and size did the runner use?

# %%
import json
import os
import sys

# %%
with open("probe.json", "w") as f:
    json.dump({"python": sys.executable,
               "size": os.environ["THEORYBOX_NOTEBOOK_SIZE"],
               "kernel": "ipykernel" in sys.modules}, f)
"""


@pytest.fixture
def empty_jupyter(tmp_path, monkeypatch):
    """Point every Jupyter directory at empty folders: no kernelspec is findable."""
    for var in ("JUPYTER_DATA_DIR", "JUPYTER_PATH", "JUPYTER_CONFIG_DIR",
                "JUPYTER_RUNTIME_DIR"):
        folder = tmp_path / var.lower()
        folder.mkdir()
        monkeypatch.setenv(var, str(folder))
    monkeypatch.setenv("JUPYTER_PLATFORM_DIRS", "1")
    return tmp_path


# K15: no kernel, the running interpreter, counts reported.


def test_notebooks_execute_without_a_kernel(empty_jupyter, capsys):
    """Every notebook runs at small size through the command line's main(), which
    reports the number of notebooks and cells (and each one's time); a probe
    notebook confirms the subprocess used this interpreter and got the size."""
    probe = empty_jupyter / "probe.py"
    probe.write_text(PROBE)
    paths = [*PAIRED, probe]

    started = time.perf_counter()
    status = main([*map(str, paths), "--size", "small", "--timeout", "120"])
    seconds = time.perf_counter() - started
    out = capsys.readouterr().out
    with capsys.disabled():
        print(f"\n[K15] {out.strip().splitlines()[-1]} in {seconds:.1f} s")

    assert status == 0, out
    # The precision notebook's small size must stay well inside 30 s.
    line = next(x for x in out.splitlines() if "precision_exploration.py:" in x)
    assert f": {PRECISION_CELLS} cells in " in line
    assert float(line.rsplit(" in ", 1)[1].split()[0]) < 30, line
    expected_cells = sum(len(code_cells(path)) for path in paths)
    assert f"executed {len(paths)} notebook(s), {expected_cells} code cells" in out
    assert len(code_cells(NOTEBOOKS / "precision_exploration.py")) == PRECISION_CELLS
    report = json.loads((empty_jupyter / "probe.json").read_text())
    assert report == {"python": sys.executable, "size": "small", "kernel": False}
    assert not any((empty_jupyter / "jupyter_data_dir").iterdir())


# A failing cell is named.


def test_failing_cell_is_named(tmp_path):
    notebook = tmp_path / "broken.py"
    notebook.write_text(
        "# %%\nx = 1\n\n# %% [markdown]\n# text\n\n# %%\ny = x + 1\n\n"
        "# %% a titled cell\nz = y / (x - 1)\n\n# %%\nnever = True\n"
    )
    with pytest.raises(NotebookCellError) as info:
        execute_notebook(notebook)
    err = info.value
    assert isinstance(err, TheoryboxError)
    assert (err.cell, err.line, err.exc_type) == (3, 11, "ZeroDivisionError")
    assert "code cell 3 (line 11)" in str(err)
    assert "ZeroDivisionError: division by zero" in str(err)
    # The traceback points into the notebook file, at the failing line.
    assert f'File "{notebook}", line 11' in err.traceback


def test_timeout_names_the_running_cell(tmp_path):
    notebook = tmp_path / "slow.py"
    notebook.write_text("# %%\nimport time\n\n# %%\ntime.sleep(60)\n")
    with pytest.raises(NotebookTimeoutError) as info:
        execute_notebook(notebook, timeout=3)
    assert info.value.cell == 2
    assert "code cell 2 (line 5)" in str(info.value)


def test_main_reports_failures(tmp_path, capsys):
    bad = tmp_path / "bad.py"
    bad.write_text("# %%\nraise RuntimeError('boom')\n")
    good = tmp_path / "good.py"
    good.write_text("# %%\nx = 1\n")
    assert main([str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert "executed 1 notebook(s), 1 code cells" in captured.out
    assert "code cell 1 (line 2) raised RuntimeError: boom" in captured.err


def test_invalid_size_is_refused(tmp_path):
    notebook = tmp_path / "n.py"
    notebook.write_text("# %%\nx = 1\n")
    with pytest.raises(TheoryboxError, match="size = 'huge'"):
        execute_notebook(notebook, size="huge")


# The percent-format reader.


def test_read_cells_kinds_and_lines(tmp_path):
    notebook = tmp_path / "n.py"
    notebook.write_text(
        "# ---\n# jupyter:\n#   x: 1\n# ---\n\nimport os\n\n"
        "# %% [markdown]\n# # Title\n\n# %% [md] titled\n# more\n\n"
        "# %% Setup\na = 1\n\nb = 2\n\n\n# %% [raw]\nraw text\n# %%\n\n"
    )
    cells = read_cells(notebook)
    assert [(c.kind, c.line) for c in cells] == [
        ("code", 6), ("markdown", 9), ("markdown", 12), ("code", 15), ("raw", 21),
    ]
    assert cells[3].source == "a = 1\n\nb = 2"


# Pairing: the .ipynb holds exactly the .py's code, and no outputs.


def _ipynb_code(path):
    notebook = json.loads(path.read_text())
    return [
        "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in notebook["cells"]
        if cell["cell_type"] == "code"
    ], notebook


@pytest.mark.parametrize("py", PAIRED, ids=lambda p: p.name)
def test_ipynb_pair_matches_py(py):
    ipynb = py.with_suffix(".ipynb")
    assert ipynb.exists(), (
        f"{ipynb.name} is missing; run: jupytext --to ipynb notebooks/{py.name}"
    )
    stored, raw = _ipynb_code(ipynb)
    assert all(
        not cell.get("outputs") and cell.get("execution_count") is None
        for cell in raw["cells"] if cell["cell_type"] == "code"
    ), f"{ipynb.name} holds outputs; regenerate it from {py.name}"
    hint = f"{ipynb.name} is out of date; run: jupytext --to ipynb notebooks/{py.name}"

    # Without jupytext, compare with this module's own reading of the percent file.
    assert stored == [cell.source for cell in code_cells(py)], hint


@pytest.mark.parametrize("py", PAIRED, ids=lambda p: p.name)
def test_ipynb_pair_matches_py_per_jupytext(py):
    jupytext = pytest.importorskip(
        "jupytext",
        reason="jupytext is not installed: the pairing is checked by theorybox's "
        "own percent-format reader only (pip install jupytext for this check)",
    )
    from_py = jupytext.read(py)
    from_ipynb = jupytext.read(py.with_suffix(".ipynb"))

    def cells(notebook):
        return [(c.cell_type, c.source) for c in notebook.cells]

    assert cells(from_ipynb) == cells(from_py), (
        f"run: jupytext --to ipynb notebooks/{py.name}"
    )


def test_notebook_size_is_checked(monkeypatch):
    from theorybox.errors import InvalidParameterError
    from theorybox.notebooks import notebook_size

    monkeypatch.delenv("THEORYBOX_NOTEBOOK_SIZE", raising=False)
    assert notebook_size() == "full"
    monkeypatch.setenv("THEORYBOX_NOTEBOOK_SIZE", "small")
    assert notebook_size() == "small"
    monkeypatch.setenv("THEORYBOX_NOTEBOOK_SIZE", "tiny")
    with pytest.raises(InvalidParameterError, match="'tiny'"):
        notebook_size()
