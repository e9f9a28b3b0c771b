# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The claims, as records: full batch vs per sample, Signum, AdamProxy
#
# Every figure here is drawn from the records that `proofs_check` returns (a
# claim is data): the same measured series, fitted slopes and verdicts that
# `python -m proofs_check` prints. We reproduce the paper's comparisons
# (theory.md, section 4) on the discriminating Rademacher instance
# `rademacher(10, 8, seed=14)` (where `w_2*` is *not* l_inf optimal, so the two
# limits can be told apart) and on a Gaussian instance:
#
# 1. full-batch Adam goes to l_inf, with the l_inf gap falling at the rate of its
#    schedule (fitted slopes drawn on the gap plot);
# 2. per-sample Adam goes to `w_2*` on the same data;
# 3. Signum goes to l_inf for batch sizes 1, N/2 and N;
# 4. AdamProxy goes to the certified fixed-point prediction `w(c*)`, which on
#    Gaussian data is neither `w_2*` nor l_inf.
#
# `THEORYBOX_NOTEBOOK_SIZE=small` (what the tests use) runs the quick profile of
# the cheap checks and shorter versions of the long ones; `full` runs the `full`
# profile of every check it shows (long).

# %%
import sys
import time

import matplotlib
import numpy as np

INTERACTIVE = "ipykernel" in sys.modules
if not INTERACTIVE:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from proofs_check import run_check  # noqa: E402
from proofs_check.fit import fit_rate, geometric_tail  # noqa: E402
from proofs_check.registry import (  # noqa: E402  # noqa: E402
    checkpoints,
    gaussian_instance,
    rademacher_instance,
    reference_metrics,
    references,
    run_series,
)
from theorybox.metrics import direction_distance  # noqa: E402
from theorybox.notebooks import notebook_size  # noqa: E402
from theorybox.notebooks import show_figure as show  # noqa: E402
from theorybox.optimizers import RunConfig, Schedule  # noqa: E402
from theorybox.proxy import predicted_direction, solve_fixed_point  # noqa: E402

SIZE = notebook_size()
PROFILE = "quick" if SIZE == "small" else "full"
STARTED = time.perf_counter()


print(f"size = {SIZE}, profile = {PROFILE}")

# %% [markdown]
# ## 1. Full-batch Adam: the l_inf gap and its fitted rate
#
# The rate model (l_inf steepest descent) bounds the gap by
# $O(t^{-\min(a, 1-a)})$ for $a < 1$; the check fits $\log$ gap against $\log t$
# on the last four geometric checkpoints. Dashed: the fitted lines.

# %%
if SIZE == "full":
    adam = run_check("adam_full_linf_rate", PROFILE)
    print("verdict:", adam.verdict, "| tolerance:", f"{adam.tolerance:.3g}")
    curves = {key: (np.array(row["steps"]), np.array(row["gap_inf_series"]),
                    adam.predicted[key]["slope_at_most"])
              for key, row in adam.measured.items()
              if key.startswith("a=") and row["x"] == "t"}
else:
    # Small size: the same measurement on a shorter horizon, fitted the same way.
    ds = rademacher_instance()
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(100, 2 * 10**5)
    curves = {}
    for a in (0.3, 0.5, 0.7):
        config = RunConfig("adam", int(steps[-1]), schedule=Schedule(0.1, 1.0, a))
        t, series, _ = run_series(ds.Z, config, steps, metrics)
        curves[f"a={a}"] = (t, series["gap_inf"], -min(a, 1 - a))

fig, ax = plt.subplots(figsize=(6, 4))
for key, (t, gap, bound) in curves.items():
    fit = fit_rate(*geometric_tail(t, gap, 4))
    (line,) = ax.loglog(t, gap, label=f"{key}: slope {fit.slope:.2f} "
                        f"(bound {bound:.2f})")
    tail = np.array(fit.x)
    ax.loglog(tail, np.exp(fit.intercept) * tail**fit.slope, "--",
              color=line.get_color(), lw=2)
ax.set_xlabel("step t")
ax.set_ylabel("normalised l_inf margin gap")
ax.set_title("full-batch Adam (eps = 0) -> l_inf")
ax.legend(fontsize=8)
show(fig, "adam_full_gap")

# %% [markdown]
# ## 2. Per-sample Adam on the same data goes to `w_2*`
#
# The distance of the unit direction to `w_2*` decays for every `(b1, b2)` with
# `b1 <= b2`, while the l_inf gap stays near that of `w_2*` itself.

# %%
ps = run_check("adam_ps_rademacher_l2", PROFILE)
print("verdict:", ps.verdict)
fig, ax = plt.subplots(figsize=(6, 4))
for key, row in ps.measured.items():
    if isinstance(row, dict) and "dist2_series" in row:
        ax.loglog(row["steps"], row["dist2_series"],
                  label=f"{key}: slope {row['slope_dist2_vs_t']:.2f}")
ax.axhline(ps.predicted["d2inf_yardstick"], color="k", ls=":",
           label="distance w_2* to the l_inf face")
ax.set_xlabel("step t (one sample a step)")
ax.set_ylabel("|u_t - u_2*|")
ax.set_title("per-sample Adam -> w_2*")
ax.legend(fontsize=8)
show(fig, "adam_ps_l2")

# %% [markdown]
# ## 3. AdamProxy and the fixed-point prediction on Gaussian data
#
# `c* = T(c*)` is found from several starts and certified in 50 digits; the
# AdamProxy run approaches `w(c*)` while its distance to `w_2*` levels off.

# %%
if SIZE == "full":
    fp = run_check("adamproxy_fixed_point", PROFILE)
    print("verdict:", fp.verdict, "| certificate ok:", fp.measured["certificate_ok"],
          "| unique:", fp.measured["unique"])
    print(fp.measured["summary"])
    t, dist, yardstick = (fp.measured["steps"], fp.measured["dist_pred"],
                          fp.predicted["yardstick"])
else:
    # Small size: one start, a shorter AdamProxy run.
    ds = gaussian_instance()
    report = solve_fixed_point(ds.Z, n_starts=0, damping=0.0)
    print(report.summary())
    w_pred = predicted_direction(report)
    refs = references(ds.Z)
    yardstick = direction_distance(w_pred, refs.l2.w)
    steps = checkpoints(1000, 2 * 10**5)
    config = RunConfig("adamproxy", int(steps[-1]), schedule=Schedule(1.0, 1.0, 0.5))
    t, series, _ = run_series(ds.Z, config, steps,
                              reference_metrics(ds.Z, extra={"pred": w_pred}))
    dist = series["dist_pred"]
fit = fit_rate(*geometric_tail(np.asarray(t, dtype=float), np.asarray(dist), 4))
fig, ax = plt.subplots(figsize=(6, 4))
ax.loglog(t, dist, label=f"to w(c*): slope {fit.slope:.2f}")
ax.axhline(yardstick, color="k", ls=":", label="w(c*) to a classical limit")
ax.set_xlabel("step t")
ax.set_ylabel("distance of unit directions")
ax.set_title("AdamProxy -> the fixed-point prediction")
ax.legend(fontsize=8)
show(fig, "adamproxy_prediction")

# %% [markdown]
# ## 4. Signum for every batch size (full size only)
#
# The `signum_linf_batch_sizes` check sweeps `beta` for `b = 1, N/2, N` and
# reports the empirical threshold beside the reference bound; it takes a few
# seconds more than the small size allows, so it runs at full size only (run
# `python -m proofs_check --select signum` for the quick version).

# %%
if SIZE == "full":
    sig = run_check("signum_linf_batch_sizes", PROFILE)
    for key, row in sig.measured.items():
        if isinstance(row, dict) and "per_beta" in row:
            print(key, row["verdict"], "empirical threshold 1-beta:",
                  row["empirical_threshold_1_minus_beta"], "| reference bound:",
                  sig.predicted[key]["reference_bound_1_minus_beta"])
print(f"done in {time.perf_counter() - STARTED:.1f} s")
