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
# # Precision: the underflow wall, and four ways across it
#
# On separable data the margins $s_i = z_i \cdot w$ grow without bound, and the
# logistic loss factor $g_i = 1/(1 + e^{s_i})$ falls like $e^{-s_i}$. Plain float64
# runs out of exponent long before the theory stops being interesting:
#
# * $g^2$ underflows once $s \gtrsim 372$ ($e^{-745}$ is the smallest subnormal),
#   so Adam's second moment $v$ of a coordinate fed only by far samples is lost;
# * $g$ itself is 0 once $e^{s}$ overflows, at $s > 709.78$, so even SignGD stops.
#
# This notebook shows the wall on the K17 data (cases.md, K17), then the tools
# theorybox has for crossing it:
#
# 1. **(a)** a plain float64 recurrence hitting the wall: coordinate 3 freezes;
# 2. **(b)** the log-domain float64 engine and 60-digit mpmath crossing it
#    together, about $10^{-15}$ apart;
# 3. **(c)** interval arithmetic: a certified enclosure of the exact trajectory,
#    its radius against steps, and what doubling the precision buys;
# 4. **(d)** the symbolic epoch map of per-sample Adam, its constant $C_{inc}$,
#    its $b_2 \to 1$ limit (AdamProxy) and their numeric confirmations.
#
# Set `THEORYBOX_NOTEBOOK_SIZE=small` for the short horizons the tests use
# (under 30 s); the default is `full`.

# %%
import sys
import time

import matplotlib
import numpy as np

# Draw off-screen unless a Jupyter kernel is showing the figures.
INTERACTIVE = "ipykernel" in sys.modules
if not INTERACTIVE:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from theorybox.data import k17  # noqa: E402
from theorybox.engine import run  # noqa: E402
from theorybox.engine.mp import EnclosureTooWideError, run_precise  # noqa: E402
from theorybox.notebooks import notebook_size  # noqa: E402
from theorybox.notebooks import show_figure as show  # noqa: E402
from theorybox.optimizers import RunConfig, Schedule  # noqa: E402

SIZE = notebook_size()
SMALL = SIZE == "small"
STARTED = time.perf_counter()


Z = k17().Z
print(f"size = {SIZE}; K17 rows z_i = y_i x_i:\n{Z}")

# %% [markdown]
# ## (a) The wall in plain float64
#
# A tiny, obviously right recurrence: $g_i = 1/(1+e^{s_i})$ straight from the
# formula, the batch-mean gradient $G = -\frac1N \sum_i g_i z_i$, and
#
# * full-batch Adam: $m \leftarrow b_1 m + (1-b_1) G$,
#   $v \leftarrow b_2 v + (1-b_2) G^2$, $w \leftarrow w - \eta\, m/\sqrt{v}$
#   (with $0/0 = 0$, no bias correction, $\epsilon = 0$);
# * SignGD: $w \leftarrow w - \eta\, \mathrm{sign}(G)$;
# * AdamProxy: $w \leftarrow w - \eta\, G / \sqrt{Q}$,
#   $Q = \sum_i (g_i z_i)^2$ (used in (b)).
#
# On K17 coordinate 3 is touched only by sample 3, whose margin
# $s_3 = 2w_1 + 2w_2 + w_3$ is the largest. Start at $w_0 = (c, c, 0)$, so
# $s_3 = 4c$ while $s_1 = s_2 = c$ stay small, and sweep $c$ across both walls.

# %%
G2_WALL = -np.log(np.finfo(float).smallest_subnormal) / 2  # g^2 underflows
G_WALL = np.log(np.finfo(float).max)  # e^s overflows, g = 0


def plain_run(Z, w0, steps, optimizer, eta, b1=0.9, b2=0.999):
    """Plain float64: the iterates and Adam's ``v`` after each step.

    ``eta`` is a number or a function of the 0-based step (a ``Schedule``).
    """
    w = np.array(w0, dtype=float)
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    ws, vs = [], []
    with np.errstate(over="ignore", under="ignore"):
        for t in range(steps):
            lr = eta(t) if callable(eta) else eta
            g = 1.0 / (1.0 + np.exp(Z @ w))
            G = -(g @ Z) / len(Z)
            if optimizer == "signgd":
                step = np.sign(G)
            elif optimizer == "adam":
                m = b1 * m + (1 - b1) * G
                v = b2 * v + (1 - b2) * G * G
                root = np.sqrt(v)
                step = np.divide(m, root, out=np.zeros_like(m), where=root > 0)
            elif optimizer == "adamproxy":
                root = np.sqrt(((g[:, None] * Z) ** 2).sum(axis=0))
                step = np.divide(G, root, out=np.zeros_like(G), where=root > 0)
            else:
                raise ValueError(optimizer)
            w = w - lr * step
            ws.append(w.copy())
            vs.append(v.copy())
    return np.array(ws), np.array(vs)


STEPS_A = 150 if SMALL else 600
SCHEDULE_A = Schedule(eta0=0.5, a=0.0)  # constant step, as in plain_run
cs = np.linspace(40, 250, 8 if SMALL else 30)

sweep = {}
for optimizer in ("adam", "signgd"):
    config = RunConfig(optimizer, STEPS_A, schedule=SCHEDULE_A)
    plain_w3, exact_w3 = [], []
    for c in cs:
        w0 = (c, c, 0.0)
        ws, _ = plain_run(Z, w0, STEPS_A, optimizer, SCHEDULE_A.eta0)
        exact = run_precise(Z, config, w0=w0, dps=60)
        plain_w3.append(ws[-1, 2])
        exact_w3.append(exact.as_float()[2])
    sweep[optimizer] = (np.array(plain_w3), np.array(exact_w3))

fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
for ax, (optimizer, (plain_w3, exact_w3)) in zip(axes, sweep.items(), strict=True):
    ax.plot(4 * cs, exact_w3, "o-", label="60-digit mpmath")
    ax.plot(4 * cs, plain_w3, "x--", label="plain float64")
    ax.axvline(G2_WALL, color="grey", ls=":", label=f"$g^2$ underflows ({G2_WALL:.0f})")
    ax.axvline(G_WALL, color="k", ls=":", label=f"$e^s$ overflows ({G_WALL:.0f})")
    ax.set(title=f"{optimizer}, {STEPS_A} steps", xlabel="starting margin $s_3 = 4c$",
           ylabel="final $w_3$")
    ax.legend(fontsize=8)
fig.tight_layout()
show(fig, "a_wall_sweep")

# %% [markdown]
# Adam's coordinate 3 is scale-free in exact arithmetic: $m_3/\sqrt{v_3}$ does not
# care how small $g_3$ is, so the 60-digit run moves it the same distance from
# every start. In float64 it stops dead once $v_3$ underflows. SignGD holds out
# until $g_3$ itself is 0, then freezes too. Two starts up close, K17's
# $(400, 400, 0)$ for SignGD and $(100, 100, 0)$ for Adam (there $s_1 = 100$, so
# only coordinate 3 is hit):

# %%
for optimizer, w0 in (("adam", (100.0, 100.0, 0.0)), ("signgd", (400.0, 400.0, 0.0))):
    config = RunConfig(optimizer, STEPS_A, schedule=SCHEDULE_A)
    ws, vs = plain_run(Z, w0, STEPS_A, optimizer, SCHEDULE_A.eta0)
    exact = run_precise(Z, config, w0=w0, dps=60)
    print(f"{optimizer} from w0 = {w0}, {STEPS_A} steps:")
    print(f"  plain float64 w = {np.array2string(ws[-1], precision=4)}", end="")
    print(f"   (v_3 = {vs[-1, 2]:g})" if optimizer == "adam" else "")
    print(f"  60-digit      w = {np.array2string(exact.as_float(), precision=4)}")
    assert ws[-1, 2] == w0[2] and exact.as_float()[2] > w0[2] + 1

# %% [markdown]
# ## (b) The engine and mpmath cross the wall together
#
# `theorybox.engine.run` works in the log domain: it keeps each coordinate's
# moments with their own exponent, so $G_k$ and $Q_k$ stay exact however far apart
# the margins are. Run AdamProxy from $w_0 = (60, 60, 0)$ with
# $\eta_t = 5 (t+1)^{-1/2}$: sample 3's margin starts at 240 and runs through the
# $g^2$ wall (and, at full size, the $e^s$ wall). Compare the engine with 60-digit
# mpmath at every recorded step, and with the plain recurrence.

# %%
STEPS_B = 300 if SMALL else 1000
W0_B = (60.0, 60.0, 0.0)
config_b = RunConfig("adamproxy", STEPS_B, schedule=Schedule(eta0=5.0, t0=1.0, a=0.5))
record_b = np.unique(np.geomspace(1, STEPS_B, 60 if SMALL else 120).astype(int))

started = time.perf_counter()
engine_b = run(Z, config_b, w0=W0_B, checkpoints=record_b)
engine_w = np.array([row["w"] for row in engine_b.metrics])
engine_seconds = time.perf_counter() - started

started = time.perf_counter()
exact_b = run_precise(Z, config_b, w0=W0_B, dps=60, record=record_b)
exact_w = np.array([exact_b.as_float(exact_b.history[t]) for t in exact_b.steps])
mp_seconds = time.perf_counter() - started

plain_w = plain_run(Z, W0_B, STEPS_B, "adamproxy", config_b.schedule)[0]
plain_w = plain_w[record_b - 1]

margin_3 = exact_w @ Z[2]
relative = np.abs(engine_w - exact_w).max(axis=1) / np.abs(exact_w).max(axis=1)
print(f"engine: {engine_seconds:.2f} s (status {engine_b.status!r}); "
      f"mpmath: {mp_seconds:.2f} s")
print(f"sample 3's margin: {margin_3[0]:.0f} -> {margin_3[-1]:.0f}")
print(f"max relative difference engine vs 60 digits: {relative.max():.2e}")
print(f"final w: engine {engine_w[-1]}, plain float64 {plain_w[-1]}")
assert relative.max() < 1e-13

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
ax = axes[0]
ax.plot(record_b, exact_w[:, 2], "-", lw=3, alpha=0.5, label="60-digit mpmath")
ax.plot(record_b, engine_w[:, 2], "--", label="engine (float64, log domain)")
ax.plot(record_b, plain_w[:, 2], ":", label="plain float64")
ax.set(xscale="log", xlabel="step", ylabel="$w_3$", title="AdamProxy on K17")
ax.legend(fontsize=8)
ax = axes[1]
ax.plot(record_b, np.maximum(relative, 1e-18), ".-", label="difference (0 at 1e-18)")
ax.axhline(np.finfo(float).eps, color="grey", ls=":", label="float64 eps")
for wall in (G2_WALL, G_WALL):
    crossed = record_b[margin_3 > wall]
    if crossed.size:
        ax.axvline(crossed[0], color="k", ls="--", lw=0.8)
        ax.text(crossed[0], 1e-17, f" $s_3$ > {wall:.0f}", fontsize=8)
ax.set(xscale="log", yscale="log", xlabel="step",
       ylabel="max$_k$ |engine - mpmath| / max$_k$ |mpmath|",
       title="engine vs 60 digits")
ax.legend(fontsize=8)
fig.tight_layout()
show(fig, "b_engine_vs_mpmath")

# %% [markdown]
# ## (c) A certified enclosure
#
# `run_precise(..., backend="interval")` runs the same rule on balls (arb, via
# python-flint): every recorded iterate is a ball guaranteed to contain the exact
# trajectory. Its relative radius grows with the steps, at a rate set by the
# optimizer (AdamProxy's is exponential here, per-sample Adam's is flat); doubling
# the working precision squares the radius away, and a run whose balls pass
# `radius_limit` stops with `EnclosureTooWideError`, keeping the part it did.

# %%
record_c = np.unique(np.geomspace(1, STEPS_B, 40).astype(int))
PRECS = (100, 200) if SMALL else (200, 400)  # bits: p and 2p
enclosures = {}
for optimizer in ("adamproxy", "adam-ps"):
    config = RunConfig(optimizer, STEPS_B, schedule=config_b.schedule)
    for prec in PRECS:
        try:
            ball_run = run_precise(Z, config, w0=W0_B, backend="interval", prec=prec,
                                   record=record_c)
        except EnclosureTooWideError as err:
            print(f"{optimizer} at {prec} bits: EnclosureTooWideError at step "
                  f"{err.step}, relative radius {err.radius:.1e} > {err.limit:g}")
            ball_run = err.partial
        enclosures[optimizer, prec] = ball_run
        print(f"{optimizer:9s} {prec} bits ({ball_run.implementation}): "
              f"{ball_run.steps_done} of {STEPS_B} steps, final relative radius "
              f"{ball_run.radius[-1]:.1e}")

fig, ax = plt.subplots(figsize=(6.5, 4))
colours = {"adamproxy": "C0", "adam-ps": "C1"}
for (optimizer, prec), ball_run in enclosures.items():
    ax.plot(ball_run.steps, ball_run.radius, "-" if prec == PRECS[1] else "--",
            color=colours[optimizer], label=f"{optimizer}, {prec} bits")
ax.set(xscale="log", yscale="log", xlabel="step", ylabel="relative radius of $w$",
       title="interval enclosure: radius against steps")
ax.legend(fontsize=8)
fig.tight_layout()
show(fig, "c_interval_radius")

# %% [markdown]
# The enclosure turns (b) into a certificate: the engine's distance from the exact
# trajectory is at most its distance from the ball's midpoint plus the radius.

# %%
ball_run = enclosures["adamproxy", PRECS[1]]
if ball_run.complete:
    with ball_run.ctx.precision():
        mids = ball_run.as_float()
        radii = np.array([float(x.rad()) for x in ball_run.w])
    bound = np.abs(engine_w[-1] - mids) + radii
    print(f"certified: |engine - exact| <= {bound} at step {STEPS_B}")
    print(f"relative: {bound.max() / np.abs(mids).max():.1e}")
    assert bound.max() / np.abs(mids).max() < 1e-13
else:
    print(f"the {PRECS[1]}-bit enclosure stopped at step {ball_run.steps_done}; "
          "raise prec for a certificate at the last step")

# %% [markdown]
# ## (d) The epoch map, symbolically
#
# Freeze $w$ for an epoch of per-sample (incremental) Adam in cyclic order; at the
# steady state of the moving averages one epoch moves a coordinate by
# $-\eta E$ with $E = C_{inc} \sum_i A_i/\sqrt{B_i}$. `theorybox.symbolic` derives
# this from the registered update rule itself with sympy, checks each identity
# symbolically under a time limit, and always confirms it at random points with
# 50-digit mpmath. As $b_2 \to 1$, $E \to \sqrt{N} S/\sqrt{Q}$: AdamProxy.

# %%
import sympy  # noqa: E402

from theorybox.symbolic import (  # noqa: E402
    b2_limit_errors,
    derive_b2_limit,
    derive_epoch_map,
    update_map,
)
from theorybox.symbolic.epoch import B1, B2, c_inc  # noqa: E402

try:
    from IPython.display import Math, display
except ImportError:  # plain Python: print the LaTeX source
    Math = display = None


def show_math(label, expr):
    tex = expr if isinstance(expr, str) else sympy.latex(expr)
    if display is not None and INTERACTIVE:
        display(Math(tex))
    else:
        print(f"{label}:\n  {tex}")


N_D = 3 if SMALL else 4
show_math("one per-sample Adam step", update_map("adam-ps", per_sample=True).latex())
epoch = derive_epoch_map(N_D)
show_math(f"C_inc (N = {N_D})", c_inc(B1, B2, N_D))
print(f"{epoch.name}: {epoch.statement}")
limit = derive_b2_limit(N_D)
show_math("b2 -> 1 limit of E", limit.result["proxy"])
print(f"(1 - b2^N)/(1 - b2) -> {limit.result['ratio_limit']} "
      f"({limit.result['ratio_limit_status']})")

print(f"\n{'check':28s} {'symbolic':10s} max relative error at 50 digits")
for claim in (epoch, limit):
    for check in claim.checks:
        error = float(check.numeric.max_rel_err)
        print(f"{check.name:28s} {check.symbolic:10s} {error:.1e}")
assert epoch.ok and limit.ok

# %% [markdown]
# The limit is approached linearly in $1 - b_2$: along $b_2 = 1 - 10^{-k}$ the
# relative error of $E$ against $\sqrt{N} S/\sqrt{Q}$ (random $b_1$ and gradients,
# 50 digits) falls by a factor 10 per step of $k$.

# %%
errors = b2_limit_errors(N_D, ks=range(1, 11 if SMALL else 21))
ks = np.array([k for k, _ in errors])
errs = np.array([float(e) for _, e in errors])
fig, ax = plt.subplots(figsize=(6.5, 4))
ax.semilogy(ks, errs, "o-", label="$|E(b_2) - \\sqrt{N} S/\\sqrt{Q}|$, relative")
ax.semilogy(ks, errs[0] * 10.0 ** -(ks - ks[0]), ":", label="$\\propto 1 - b_2$")
ax.set(xlabel="$k$, with $b_2 = 1 - 10^{-k}$", ylabel="relative error",
       title=f"b2 -> 1 limit, N = {N_D}")
ax.legend(fontsize=8)
fig.tight_layout()
show(fig, "d_b2_limit")
slope = np.polyfit(ks, np.log10(errs), 1)[0]
print(f"fitted slope of log10(error) against k: {slope:.3f} (expected -1)")
print(f"\nnotebook ran in {time.perf_counter() - STARTED:.1f} s at size {SIZE}")
