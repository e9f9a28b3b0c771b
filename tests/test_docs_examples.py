"""The Python examples of docs/long-runs.md run as written, at a smaller size.

The horizons (10^8 steps for ``run_long``, 10^10 with a 10 s limit) are the
only edits: ``run_long`` runs 10^5 steps and the time limit is one second, so the
example reaches its ``"time limit"`` branch.
"""

import re
from pathlib import Path

import numpy as np

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_long_runs_examples_run(tmp_path, monkeypatch):
    text = (DOCS / "long-runs.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) == 3
    source = "\n".join(blocks)
    for big, small in (("steps=10**8", "steps=10**5"),
                       ("time_limit=10", "time_limit=1")):
        assert big in source
        source = source.replace(big, small)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(source, "docs/long-runs.md", "exec"), namespace)

    # What the text says of each example.
    results, grid = namespace["results"], namespace["grid"]
    assert len(grid) == len(results) == 8
    assert namespace["result"].status == "time limit"
    assert namespace["more"].status in ("ok", "stalled")
    assert (tmp_path / "adam-ps-iris.npz").is_file()
    from theorybox.engine import run

    for config, result in zip(grid[:2], results[:2], strict=True):
        alone = run(namespace["Z"], config, checkpoints=[1_000, 20_000])
        np.testing.assert_array_equal(result.w, alone.w)
