"""AdamProxy: directional convergence (measured), the dual fixed point, reductions.

Claim 3 of theory.md section 3 (Baek, Song, Yun, Prop. 4.3, Assumption 4.4,
Thm 4.8, Algorithm 3), checklist items C7-C10 of paper-notes.md section 7.
"""

from __future__ import annotations

import warnings

import numpy as np

from proofs_check.checks_persample import DIR_ABS_ERR, judge_to_target
from proofs_check.fit import (
    SE_FACTOR,
    fit_rate,
    geometric_tail,
    precision_floor,
    shows_no_decay,
)
from proofs_check.registry import (
    checkpoints,
    claim_check,
    gaussian_instance,
    make_record,
    rademacher_instance,
    reference_metrics,
    references,
    run_series,
    worst_verdict,
)
from theorybox.metrics import direction_distance
from theorybox.optimizers import RunConfig, Schedule
from theorybox.proxy import predicted_direction, solve_fixed_point
from theorybox.references import project_to_face

FAMILY = "adamproxy"

_RUN = {"quick": {"steps": 10**6}, "full": {"steps": 10**7}}
_FP = {
    "quick": {"steps": 10**6, "n_starts": 4, "adam_ps_epochs": 0},
    "full": {"steps": 10**7, "n_starts": 16, "adam_ps_epochs": 10**6},
}

#: The AdamProxy schedule used throughout (mean-loss clock).
SCHEDULE = Schedule(1.0, 1.0, 0.5)


def _fixed_point(Z, n_starts: int):
    """Solve for ``c*`` (warnings kept as notes) and return report and direction."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        report = solve_fixed_point(Z, n_starts=n_starts)
        w = predicted_direction(report)
    return report, w, [str(c.message) for c in caught]


@claim_check(
    "adamproxy_directional_convergence",
    family=FAMILY,
    claim="AdamProxy's loss -> 0 and its direction converges (Assumption 4.4, "
          "measured)",
    source="theory.md claim 3 (Prop. 4.3, Assumption 4.4); checklist C7",
)
def adamproxy_directional_convergence(profile: str):
    r"""AdamProxy converges in direction (an assumption, so measured).

    **Claim.** AdamProxy, :math:`w \leftarrow w - \eta_t \nabla L(w) /
    \sqrt{\sum_i \nabla L_i(w)^2}`, drives the loss to 0 (Prop. 4.3). Thm 4.8
    *assumes* it converges in direction (Assumption 4.4); the toolkit measures it.

    **Measured.** The increments :math:`\delta_k = \|u_{t_k} - u_{t_{k-1}}\|` of
    the unit direction between geometric checkpoints (a Cauchy criterion on a
    log-time grid) and the loss. Pass: the loss falls at every checkpoint of the
    fit window and the increments decay (fitted slope against ``log t`` below
    ``-tol``). Fail: the increments do not decay. There is no rate to compare.

    **Data.** The Gaussian instance ``gaussian(10, 10, seed=0)``, whose
    prediction is neither ``w_2*`` nor l_inf; ``eta_t = (t + 1)^-0.5``.
    """
    sizes = _RUN[profile]
    ds = gaussian_instance()
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(100, sizes["steps"])
    config = RunConfig("adamproxy", sizes["steps"], schedule=SCHEDULE)
    t, series, result = run_series(ds.Z, config, steps, metrics)
    u = np.array([row["direction"] for row in result.metrics])
    inc = np.linalg.norm(np.diff(u, axis=0), axis=1)
    xs, ys = geometric_tail(t[1:], inc, 4)
    fit = fit_rate(xs, ys)
    tol = SE_FACTOR * fit.slope_se + precision_floor(xs, ys, DIR_ABS_ERR)
    loss = series["log10_loss"]
    loss_falls = bool(np.all(np.diff(loss[-5:]) < 0))
    if shows_no_decay(fit, tol):
        verdict = "fail"
    elif loss_falls:
        verdict = "pass"
    else:
        verdict = "inconclusive"
    return make_record(
        "adamproxy_directional_convergence",
        verdict=verdict,
        measured={"slope_increments_vs_t": fit.slope, "slope_se": fit.slope_se,
                  "increments": inc.tolist(), "log10_loss": loss.tolist(),
                  "loss_falls": loss_falls, "steps": t.tolist(),
                  "status": result.status},
        predicted={"increments": "-> 0 (assumed by Thm 4.8; no rate)",
                   "loss": "-> 0 (Prop. 4.3)"},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of the direction increments "
            "against log t + the 1e-8 floor of unit directions"
        ),
        data=ds.spec,
        settings=config.to_dict(),
    )


@claim_check(
    "adamproxy_fixed_point",
    family=FAMILY,
    claim="AdamProxy -> the direction w(c*) of a certified dual fixed point "
          "c* = T(c*)",
    source="theory.md claim 3 (Thm 4.8, Algorithm 3); checklist C8, C10",
)
def adamproxy_fixed_point(profile: str):
    r"""The fixed-point prediction, its certificate, and AdamProxy reaching it.

    **Claim.** Under Assumption 4.4, AdamProxy's limit direction is ``w(c*)``
    for a fixed point ``c* = T(c*)`` of the dual map of the Mahalanobis max margin
    with :math:`M(c) = \mathrm{diag}(\sqrt{\sum_i c_i^2 z_i^2})` (Thm 4.8).

    **Measured.** ``c*`` from the uniform start and random starts (damped and
    undamped, :func:`~theorybox.proxy.solve_fixed_point`); whether all starts
    agree; the 50-digit certificate (stationarity, complementarity, duality gap);
    and the distance of an AdamProxy run to ``w(c*)``. Being a fixed point is
    necessary, not sufficient (theory.md section 6): the run decides.

    **Judged.** Fail if the certificate fails. Otherwise the run's distance to the
    prediction is judged as in ``adam_ps_rademacher_l2``, with the yardstick the
    distance from the prediction to the nearer of ``w_2*`` and the l_inf face
    (so a pass means the run is nearer the prediction than either classical
    limit by a factor of ten). Several distinct fixed points make the verdict at
    best inconclusive. The full profile also reports per-sample Adam
    (``b2 = 0.999``) against the prediction, as measured.

    **Data.** ``gaussian(10, 10, seed=0)``.
    """
    sizes = _FP[profile]
    ds = gaussian_instance()
    refs = references(ds.Z)
    report, w_pred, notes = _fixed_point(ds.Z, sizes["n_starts"])
    cert = report.points[0].certificate
    face_pt = project_to_face(refs.face, w_pred)
    yardstick = min(direction_distance(w_pred, refs.l2.w),
                    direction_distance(w_pred, face_pt))

    # AdamProxy against the prediction.
    metrics = reference_metrics(ds.Z, extra={"pred": w_pred})
    steps = checkpoints(1000, sizes["steps"])
    config = RunConfig("adamproxy", sizes["steps"], schedule=SCHEDULE)
    t, series, result = run_series(ds.Z, config, steps, metrics)
    verdict, fit, tol = judge_to_target(t, series["dist_pred"], yardstick)
    if not cert.ok:
        verdict = "fail"
    elif not report.unique:
        verdict = worst_verdict([verdict, "inconclusive"])
    measured = {
        "fixed_points": len(report.points),
        "unique": report.unique,
        "certificate_ok": cert.ok,
        "certificate": cert.to_dict(),
        "support": report.points[0].support.tolist(),
        "dist_pred_final": float(series["dist_pred"][-1]),
        "dist2_final": float(series["dist2"][-1]),
        "slope_dist_pred_vs_t": fit.slope,
        "slope_se": fit.slope_se,
        "dist_pred": series["dist_pred"].tolist(),
        "steps": t.tolist(),
        "summary": report.summary(),
    }

    # Full profile: per-sample Adam on the epoch clock, reported as measured.
    if sizes["adam_ps_epochs"]:
        epochs = sizes["adam_ps_epochs"]
        ps = RunConfig("adam-ps", epochs * ds.n, hyper={"b1": 0.9, "b2": 0.999},
                       schedule=Schedule(0.1, 1.0, 0.5))
        tp, sp, _ = run_series(ds.Z, ps, checkpoints(1000, epochs * ds.n), metrics)
        measured["adam_ps_dist_pred"] = sp["dist_pred"].tolist()
        measured["adam_ps_steps"] = tp.tolist()
    return make_record(
        "adamproxy_fixed_point",
        verdict=verdict,
        measured=measured,
        predicted={"direction": w_pred.tolist(), "yardstick": yardstick,
                   "cos_pred_w2": float(np.dot(w_pred, refs.l2.w)
                                        / np.linalg.norm(refs.l2.w))},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of dist(u_t, w(c*)) against "
            "log t + the 1e-8 floor; pass needs the final distance below a tenth of "
            "the prediction's distance to the nearer classical limit; the "
            "certificate uses its own tolerance (theorybox.proxy.certificate)"
        ),
        data=ds.spec,
        settings={**config.to_dict(), "n_starts": sizes["n_starts"]},
        notes=notes,
    )


@claim_check(
    "adamproxy_rademacher_l2",
    family=FAMILY,
    claim="on Rademacher data the fixed point gives w_2* and AdamProxy goes there",
    source="theory.md claim 3 (reductions), claim 2; checklist C9",
)
def adamproxy_rademacher_l2(profile: str):
    r"""The Rademacher reduction: ``M(c)`` is a multiple of the identity.

    **Claim.** With :math:`|x_{ik}| = a_i`, :math:`M(c) = \sqrt{\sum_i c_i^2
    a_i^2}\, I`, so ``P(c)`` is the hard SVM for every ``c`` and the prediction
    is ``w_2*``; AdamProxy (the ``b2 -> 1`` limit of per-sample Adam) goes to
    ``w_2*``, while SignGD and full-batch Adam go to l_inf. This is the check a
    proxy that divides by :math:`|\sum_i \nabla L_i|` (turning it into SignGD)
    fails.

    **Judged.** The fixed point's direction must equal ``w_2*`` to the
    certificate's tolerance, and the AdamProxy run's distance to ``w_2*`` is
    judged as in ``adam_ps_rademacher_l2`` with the yardstick ``d2inf``.

    **Data.** ``rademacher(10, 8, seed=14)``, strongly discriminating.
    """
    sizes = _RUN[profile]
    ds = rademacher_instance()
    refs = references(ds.Z)
    report, w_pred, notes = _fixed_point(ds.Z, 2)
    pred_dist = direction_distance(w_pred, refs.l2.w)
    metrics = reference_metrics(ds.Z)
    steps = checkpoints(1000, sizes["steps"])
    config = RunConfig("adamproxy", sizes["steps"], schedule=SCHEDULE)
    t, series, result = run_series(ds.Z, config, steps, metrics)
    verdict, fit, tol = judge_to_target(t, series["dist2"], refs.d2inf)
    pred_tol = 1e-6
    if pred_dist > pred_tol:
        verdict = "fail"
    return make_record(
        "adamproxy_rademacher_l2",
        verdict=verdict,
        measured={"prediction_dist_to_w2": pred_dist,
                  "certificate_ok": report.points[0].certificate.ok,
                  "dist2_final": float(series["dist2"][-1]),
                  "slope_dist2_vs_t": fit.slope, "slope_se": fit.slope_se,
                  "dist2": series["dist2"].tolist(), "steps": t.tolist(),
                  "status": result.status},
        predicted={"prediction": "w_2*", "limit": "w_2*",
                   "d2inf_yardstick": refs.d2inf,
                   "prediction_dist_to_w2_at_most": pred_tol},
        tolerance=tol,
        tolerance_reason=(
            f"{SE_FACTOR:g} standard errors of the slope of dist(u_t, u_2*) + the "
            "1e-8 floor; pass needs the final distance < d2inf/10; the prediction "
            "must match w_2* to 1e-6 (the QP solves' accuracy)"
        ),
        data=ds.spec,
        settings=config.to_dict(),
        notes=notes,
    )
