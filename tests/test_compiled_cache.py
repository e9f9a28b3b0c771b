"""K14: an edit to a helper in another module reaches the compiled kernel.

Compiled kernels are cached on disk under a name that hashes the generated source
and the source of every module the kernel calls into, and every numeric parameter
is passed as an argument, so neither an edited helper nor an edited module-level
constant can be served stale.
The test copies the package, runs SignGD in a subprocess, edits the numba ``sign``
helper in ``arith/ops.py`` (a module the kernel only imports), and runs again with
the same cache directory; then edits the kernel's template itself.
"""

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

import theorybox

SCRIPT = """
import numpy as np
import theorybox
print(theorybox.__file__)
from theorybox.engine import run
from theorybox.optimizers import RunConfig, Schedule
r = run(np.array([[1.0, 2.0]]), RunConfig("signgd", 3, schedule=Schedule(0.5, 1, 0)))
print(repr(float(r.w[0])))
"""


@pytest.mark.timeout(240)
def test_edited_helper_changes_the_kernel(tmp_path):
    package = Path(theorybox.__file__).parent
    copy = tmp_path / "src" / "theorybox"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    # -S skips site's .pth files, so an editable install cannot shadow the copy;
    # the installed dependencies come back through PYTHONPATH.
    path = os.pathsep.join([str(tmp_path / "src"), *site.getsitepackages()])
    env = dict(os.environ, PYTHONPATH=path, NUMBA_CACHE_DIR=str(tmp_path / "cache"))

    def first_coordinate():
        done = subprocess.run([sys.executable, "-S", "-c", SCRIPT], env=env,
                              cwd=tmp_path, check=True, capture_output=True,
                              text=True, timeout=200)
        lines = done.stdout.strip().splitlines()
        assert lines[0] == str(copy / "__init__.py")
        return float(lines[-1])

    assert first_coordinate() == 1.5
    ops = copy / "arith" / "ops.py"
    source = ops.read_text()
    # The gradient is negative here, so SignGD takes the sign helper's -1 branch.
    edited = source.replace("    if x < 0.0:\n        return -1.0\n",
                            "    if x < 0.0:\n        return -2.0\n", 1)
    assert edited != source, "the helper to edit was not found"
    ops.write_text(edited)
    assert first_coordinate() == 3.0

    # The kernel's own template is hashed too: a constant step twice as large.
    template = copy / "engine" / "template.py"
    source = template.read_text()
    line = "            lr = eta0\n"
    edited = source.replace(line, line.replace("eta0", "eta0 * 2.0"), 1)
    assert edited != source, "the template line to edit was not found"
    template.write_text(edited)
    assert first_coordinate() == 6.0
