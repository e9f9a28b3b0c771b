"""Metrics of an iterate, computed at checkpoints.

Everything here takes plain arrays: the reference directions are computed by a
higher layer (:mod:`theorybox.references`) and passed in, so this module sits below
it. Undefined quantities (the margin of ``w = 0``) are NaN, never complex.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from theorybox.losses import mean_log_loss, weights

__all__ = ["cosine", "direction_distance", "make_metrics", "metrics_for"]

_LN10 = np.log(10.0)


def cosine(a, b) -> float:
    """Cosine of two vectors, clipped to [-1, 1]; NaN if either is zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a)
    nb = np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.clip(a @ b / (na * nb), -1.0, 1.0))


def direction_distance(a, b) -> float:
    """Euclidean distance between the unit-l2 directions of ``a`` and ``b``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a)
    nb = np.linalg.norm(b)
    if na == 0 or nb == 0:
        return float("nan")
    return float(np.linalg.norm(a / na - b / nb))


def make_metrics(
    loss: str = "logistic",
    *,
    w2=None,
    gamma2: float | None = None,
    winf=None,
    gamma_inf: float | None = None,
    face_project: Callable[[np.ndarray], np.ndarray] | None = None,
    extra: dict[str, np.ndarray] | None = None,
    support_rtol: float = 1e-3,
):
    """A metrics function ``f(Z, w, t) -> dict`` for :func:`theorybox.engine.run`.

    Parameters
    ----------
    loss : str
    w2, gamma2 : array, float, optional
        The l2 max-margin direction and margin.
    winf, gamma_inf : array, float, optional
        A vertex of the l_inf max-margin face, and the l_inf max margin.
    face_project : callable, optional
        Maps a unit-l_inf direction to its nearest point of the l_inf optimal face.
    extra : dict of str to array, optional
        Further reference directions: ``cos_<name>`` and ``dist_<name>`` are added.
    support_rtol : float
        A sample is *near-support* when its margin is within ``support_rtol``
        (relative) of the smallest margin.

    Returned keys: ``log10_loss``, ``norm2``, ``margin2``, ``margin_inf`` (normalised
    margins), ``gap2``, ``gap_inf``, ``cos2``, ``dist2``, ``cos_inf_vertex``,
    ``cos_face``, ``dist_face``, ``near_support``, ``weights`` (``g_i / sum_j g_j``)
    and ``direction`` (``w / ||w||_2``), where the references allow.
    """
    w2 = None if w2 is None else np.asarray(w2, dtype=np.float64)
    winf = None if winf is None else np.asarray(winf, dtype=np.float64)
    extra = {k: np.asarray(v, dtype=np.float64) for k, v in (extra or {}).items()}

    def metrics(Z, w, t):
        s = Z @ w
        norm2 = float(np.linalg.norm(w))
        norm_inf = float(np.max(np.abs(w)))
        low = float(s.min())
        out = {
            "log10_loss": mean_log_loss(s, loss) / _LN10,
            "norm2": norm2,
            "margin2": low / norm2 if norm2 > 0 else float("nan"),
            "margin_inf": low / norm_inf if norm_inf > 0 else float("nan"),
            "near_support": int(np.sum(s <= low + support_rtol * abs(low))),
            "weights": weights(s, loss),
            "direction": w / norm2 if norm2 > 0 else np.zeros_like(w),
        }
        if gamma2 is not None:
            out["gap2"] = gamma2 - out["margin2"]
        if gamma_inf is not None:
            out["gap_inf"] = gamma_inf - out["margin_inf"]
        if w2 is not None:
            out["cos2"] = cosine(w, w2)
            out["dist2"] = direction_distance(w, w2)
        if winf is not None:
            out["cos_inf_vertex"] = cosine(w, winf)
        if face_project is not None and norm_inf > 0:
            nearest = face_project(w / norm_inf)
            out["cos_face"] = cosine(w, nearest)
            out["dist_face"] = direction_distance(w, nearest)
        for name, ref in extra.items():
            out[f"cos_{name}"] = cosine(w, ref)
            out[f"dist_{name}"] = direction_distance(w, ref)
        return out

    return metrics


def metrics_for(refs, loss: str = "logistic", *, face: bool = True, extra=None):
    """:func:`make_metrics` with one dataset's reference directions.

    Parameters
    ----------
    refs : References
        From :func:`theorybox.references.compute_references`: ``w_2*`` and
        ``gamma_2``, an l_inf max-margin vertex, and ``gamma_inf`` of the exact
        simplex vertex (``refs.face.gamma``).
    loss : str
    face : bool
        Also measure the distance to the l_inf optimal face (a projection per
        checkpoint).
    extra : dict of str to array, optional
        Further reference directions, as in :func:`make_metrics`.
    """
    from theorybox.references import project_to_face

    return make_metrics(
        loss,
        w2=refs.l2.w,
        gamma2=refs.l2.gamma,
        winf=refs.linf.w,
        gamma_inf=refs.face.gamma,
        face_project=partial(project_to_face, refs.face) if face else None,
        extra=extra,
    )
