"""Step-level claims: full-batch Adam moves like SignGD, and Inc-Adam on
generalised-Rademacher data is a weighted GD whose weights stay comparable.

Checklist items C1 and C5 of paper-notes.md section 7 (Prop. 2.5 and Cor. 3.2 of
Baek, Song, Yun; theory.md section 2 and claim 2).
"""

from __future__ import annotations

import numpy as np

from proofs_check.fit import SE_FACTOR, fit_rate, geometric_tail, shows_no_decay
from proofs_check.registry import (
    checkpoints,
    claim_check,
    make_record,
    rademacher_instance,
)
from theorybox.engine import EngineState, advance
from theorybox.losses import weights
from theorybox.optimizers import RunConfig, Schedule
from theorybox.symbolic.epoch import rademacher_weights

FAMILY = "steps"

_SIGN = {"quick": {"steps": 10**5}, "full": {"steps": 10**7}}
_WEIGHTS = {"quick": {"epochs": 10**4}, "full": {"epochs": 10**6}}

#: A float64 step divided by its step size is resolved to about this.
STEP_ABS_ERR = 1e-12


def _sign_of_gradient(Z, w):
    """``sign(grad L(w))`` without underflow: the gradient is ``-sum_i g_i z_i``
    and a positive rescaling of the ``g_i`` (their softmax) keeps its sign."""
    return np.sign(-(weights(Z @ w) @ Z))


@claim_check(
    "adam_full_signgd_step",
    family=FAMILY,
    claim="full-batch Adam's step over eta_t tends to -sign(grad L(w_t))",
    source="theory.md section 2 (Prop. 2.5, Det-Adam); checklist C1",
)
def adam_full_signgd_step(profile: str):
    r"""Full-batch Adam is asymptotically SignGD.

    **Claim.** With ``eps = 0``, no bias correction, ``b1 <= b2`` and a decaying
    step, :math:`(w_{t+1} - w_t)/\eta_t = -(\operatorname{sign}\nabla L(w_t)
    + \epsilon_t)` with :math:`\epsilon_t \to 0` coordinate-wise (Prop. 2.5,
    Zhang, Zou, Cao 2024): the moving averages forget faster than the gradient's
    direction changes.

    **Measured** at geometric steps: :math:`\max_k |\epsilon_{t,k}|` from one
    engine step taken at ``w_t`` (the sign of the gradient from its softmax
    weights, so nothing underflows). **No rate** is stated: the verdict asks for a
    significant decay of ``max |eps|`` against ``t`` on the last four
    checkpoints (fail: a precise flat or rising fit; inconclusive otherwise).

    **Data.** ``rademacher(10, 8, seed=14)``; ``b1 = 0.9``, ``b2 = 0.999``,
    ``eta_t = 0.1 (t + 1)^-0.5``.
    """
    sizes = _SIGN[profile]
    ds = rademacher_instance()
    Z = np.ascontiguousarray(ds.Z)
    schedule = Schedule(0.1, 1.0, 0.5)
    config = RunConfig("adam", sizes["steps"], schedule=schedule)
    state = EngineState.initial(np.zeros(Z.shape[1]), 2)

    # Walk to each checkpoint, then take one step and compare it with -sign.
    steps = checkpoints(10, sizes["steps"])
    deviation = []
    median = []
    done = 0
    for t in steps:
        advance(Z, config, state, int(t - 1 - done))
        w_t = state.w[0].copy()
        dw = advance(Z, config, state, 1)[0].copy()
        done = int(t)
        eps_t = -dw / schedule(int(t - 1)) - _sign_of_gradient(Z, w_t)
        deviation.append(float(np.max(np.abs(eps_t))))
        median.append(float(np.median(np.abs(eps_t))))
    deviation = np.array(deviation)

    # Judge the decay of max |eps_t| on the geometric tail.
    xs, ys = geometric_tail(steps.astype(float), np.maximum(deviation, 1e-300), 4)
    fit = fit_rate(xs, ys)
    tol = SE_FACTOR * fit.slope_se
    if fit.slope < -tol:
        verdict = "pass"
    elif shows_no_decay(fit, tol):
        verdict = "fail"
    else:
        verdict = "inconclusive"
    return make_record(
        "adam_full_signgd_step",
        verdict=verdict,
        measured={"slope_vs_t": fit.slope, "slope_se": fit.slope_se,
                  "max_abs_eps": deviation.tolist(), "steps": steps.tolist(),
                  "max_abs_eps_final": float(deviation[-1]),
                  "median_abs_eps": median},
        predicted={"max_abs_eps": "-> 0 (no rate stated)"},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of log max|eps_t| against "
            "log t; steps over eta are resolved to ~1e-12, far below the values"
        ),
        data=ds.spec,
        settings=config.to_dict(),
    )


@claim_check(
    "inc_adam_rademacher_weights",
    family=FAMILY,
    claim="on Rademacher data Inc-Adam's epoch is a weighted GD whose weights "
    "stay comparable",
    source="theory.md claim 2 (Cor. 3.2); checklist C5",
)
def inc_adam_rademacher_weights(profile: str):
    r"""The per-sample weights of Inc-Adam's epoch map stay comparable.

    **Claim.** On generalised-Rademacher data (:math:`|z_{jk}| = a_j`), one epoch
    of Inc-Adam is the weighted GD step :math:`-\eta \sum_j \alpha_j(r)
    \nabla L_j` with :math:`\alpha_j(r) > 0` between two positive constants
    (Cor. 3.2). The weights' overall scale grows as the loss falls (they divide by
    the gradients), so the scale-free form is measured: the spread
    :math:`\max_j \alpha_j(r) / \min_j \alpha_j(r)` along a real run, with the
    weights from :func:`theorybox.symbolic.epoch.rademacher_weights` at the
    iterate at the start of epoch ``r``.

    **Judged:** a finite run cannot prove a bound, only refute one. Fail when the
    spread both rises significantly (fit of ``log spread`` against ``log r``) and
    ends more than 10 times its value at the middle checkpoint; pass when it ends
    within that factor; inconclusive otherwise. The bound's constants are unknown, so
    the spread itself is the reported measurement.

    **Data.** ``rademacher(10, 8, seed=14)``; ``b1 = 0.9``, ``b2 = 0.999``,
    ``eta_t = 0.1 (t + 1)^-0.5``, cyclic order.
    """
    sizes = _WEIGHTS[profile]
    ds = rademacher_instance()
    Z = np.ascontiguousarray(ds.Z)
    n = Z.shape[0]
    a = np.abs(Z[:, 0])
    b1, b2 = 0.9, 0.999
    config = RunConfig("adam-ps", sizes["epochs"] * n, hyper={"b1": b1, "b2": b2},
                       schedule=Schedule(0.1, 1.0, 0.5))
    state = EngineState.initial(np.zeros(Z.shape[1]), 2)

    # The weights' spread at the start of geometrically spaced epochs.
    epochs = checkpoints(10, sizes["epochs"])
    spread = []
    done = 0
    for r in epochs:
        advance(Z, config, state, int(r * n - done))
        done = int(r * n)
        g = weights(Z @ state.w[0])
        alpha = rademacher_weights(a, np.maximum(g, np.finfo(float).tiny), b1, b2)
        spread.append(float(alpha.max() / alpha.min()))
    spread = np.array(spread)

    # Judge: a significant rise fails; staying within 10x of the early value passes.
    xs, ys = geometric_tail(epochs.astype(float), spread, 4)
    fit = fit_rate(xs, ys)
    tol = SE_FACTOR * fit.slope_se
    early = spread[len(spread) // 2]
    rises = bool(fit.slope - tol > 0)
    if rises and spread[-1] > 10 * early:
        verdict = "fail"
    elif spread[-1] <= 10 * early:
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return make_record(
        "inc_adam_rademacher_weights",
        verdict=verdict,
        measured={"spread": spread.tolist(), "epochs": epochs.tolist(),
                  "slope_vs_epoch": fit.slope, "slope_se": fit.slope_se,
                  "rises_significantly": rises},
        predicted={"alpha_j": "between two positive constants (unknown)"},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of log spread against "
            "log epoch"
        ),
        data=ds.spec,
        settings=config.to_dict(),
    )
