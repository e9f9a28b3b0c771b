"""Tables and plots for experiment results."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np

from theorybox.records import to_jsonable

__all__ = ["format_table", "write_csv", "write_json", "plot_series"]


def _cell(value) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        if value == 0 or 1e-3 <= abs(value) < 1e5:
            return f"{value:.4f}"
        return f"{value:.2e}"
    return str(value)


def format_table(rows: list[dict], columns: list[str] | None = None) -> str:
    """Rows as an aligned plain-text table."""
    if not rows:
        return "(no rows)"
    columns = columns or list(rows[0])
    cells = [[_cell(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[j]) for r in cells)) for j, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)))
    return "\n".join(lines)


def write_csv(rows: list[dict], path: Path) -> None:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(to_jsonable(rows))


def write_json(records, path: Path) -> None:
    with open(path, "w") as handle:
        json.dump([r.to_dict() for r in records], handle, indent=1)


def plot_series(series: dict, out_dir: Path) -> list[Path]:
    """One PNG per dataset: 1 - cosine and margin gaps against steps (log axes)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    datasets = sorted({key[0] for key in series}, key=list(k[0] for k in series).index)
    panels = (
        ("cos2", "1 - cos(w, w_2*)", True),
        ("cos_face", "1 - cos(w, nearest l_inf face point)", True),
        ("gap2", "l2 margin gap", False),
        ("gap_inf", "l_inf margin gap", False),
    )
    for dataset in datasets:
        fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), constrained_layout=True)
        for ax, (key, title, one_minus) in zip(axes.flat, panels, strict=True):
            for (ds, label), rows in series.items():
                if ds != dataset:
                    continue
                t = np.array([row["t"] for row in rows], dtype=float)
                y = np.array([row.get(key, np.nan) for row in rows], dtype=float)
                y = 1.0 - y if one_minus else y
                # Log axes cannot show values <= 0; they are clipped at 1e-16.
                ax.loglog(t, np.maximum(y, 1e-16), label=label)
            ax.set_title(title)
            ax.set_xlabel("steps")
            ax.grid(True, which="major", alpha=0.3)
        axes.flat[0].legend(fontsize="small")
        fig.suptitle(f"{dataset}: direction against steps")
        path = Path(out_dir) / f"{dataset}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        paths.append(path)
    return paths
