r"""Numeric confirmation of symbolic results, and time limits for sympy.

A symbolic ``simplify(a - b) == 0`` can be wrong in both directions: it may miss
a true identity (returns a non-zero form) or take unbounded time. Every identity
in :mod:`theorybox.symbolic` is therefore *confirmed numerically*: both sides are
evaluated with mpmath at random points and at 50 digits, and the largest relative
disagreement is reported beside the tolerance it is held to,

.. math::

    \operatorname{err} = \max_{\text{points}}
        \frac{|a(p) - b(p)|}{\max(1, |a(p)|, |b(p)|)}
        \;\le\; \mathrm{rtol} = 10^{\,k - \mathrm{dps}},

with ``k = 8`` digits of slack for cancellation. The symbolic attempt, when made,
runs under a time limit (:func:`time_limited`) and its status (``"proved"``,
``"not proved"``, ``"timeout"`` or ``"error"``) is recorded, never trusted alone.
"""

from __future__ import annotations

import logging
import random
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import mpmath
import sympy

__all__ = [
    "Confirmation",
    "IdentityCheck",
    "TimedResult",
    "check_identity",
    "confirm",
    "evaluate_mp",
    "time_limited",
]

logger = logging.getLogger(__name__)

#: Digits of slack between the working precision and the confirmation tolerance.
SLACK_DIGITS = 8


@dataclass(frozen=True)
class TimedResult:
    """Outcome of :func:`time_limited`: ``status`` is ``"done"``, ``"timeout"`` or
    ``"error"``; ``value`` is the return value (``None`` unless done)."""

    status: str
    value: object = None
    error: str = ""


class _Timeout(Exception):
    pass


def _alarm_handler(signum, frame):
    raise _Timeout


def time_limited(fn: Callable, seconds: float, *args, **kwargs) -> TimedResult:
    """Run ``fn(*args, **kwargs)`` for at most ``seconds``.

    Parameters
    ----------
    fn : callable
        Usually a sympy call (``simplify``, ``limit``, ``linsolve``).
    seconds : float
        Wall-clock limit.

    Returns
    -------
    TimedResult

    Notes
    -----
    In the main thread, with no interval timer already armed, the call is
    interrupted by ``SIGALRM`` (``signal.setitimer``) and the previous handler is
    restored. Otherwise (another thread, or an outer timer such as pytest-timeout's
    that must not be disturbed) the call runs in a daemon thread: on timeout the
    result is abandoned but the thread runs on until sympy returns, since Python
    cannot interrupt it.
    """
    use_signal = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0
    )

    # Signal path: interruptible, nothing left running afterwards.
    if use_signal:
        previous = signal.signal(signal.SIGALRM, _alarm_handler)
        try:
            signal.setitimer(signal.ITIMER_REAL, seconds)
            try:
                return TimedResult("done", fn(*args, **kwargs))
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except _Timeout:
            logger.info(
                "%s timed out after %.3g s", getattr(fn, "__name__", fn), seconds
            )
            return TimedResult("timeout")
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            return TimedResult("error", error=f"{type(exc).__name__}: {exc}")
        finally:
            signal.signal(signal.SIGALRM, previous)

    # Thread path: the call is abandoned, not stopped, on timeout.
    box: dict = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - reported, not hidden
            box["error"] = f"{type(exc).__name__}: {exc}"

    worker = threading.Thread(target=target, daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        logger.info("%s timed out after %.3g s (thread left running)", fn, seconds)
        return TimedResult("timeout")
    if "error" in box:
        return TimedResult("error", error=box["error"])
    return TimedResult("done", box.get("value"))


def evaluate_mp(expr, symbols: Sequence[sympy.Symbol], point: Sequence, dps: int):
    """Evaluate ``expr`` at ``point`` with mpmath at ``dps`` digits.

    ``sympy.lambdify(..., modules="mpmath")`` keeps rationals and long floats exact
    (cases.md K12); the call runs inside ``mpmath.workdps``, which restores the
    global precision afterwards.
    """
    fn = sympy.lambdify(list(symbols), expr, modules="mpmath")
    with mpmath.workdps(dps):
        return fn(
            *[mpmath.mpf(x) if not isinstance(x, mpmath.mpf) else x for x in point]
        )


def _random_point(symbols, domains, rng, dps):
    # Random mantissas of the full working precision, so that no point is a
    # short decimal that might hide a cancellation.
    point = []
    bits = int(dps * 3.33) + 8
    for sym in symbols:
        if sym in domains:
            low, high = domains[sym]
        elif sym.is_positive:
            low, high = 0.1, 2.0
        else:
            low, high = -2.0, 2.0
        u = mpmath.mpf(rng.getrandbits(bits)) / mpmath.mpf(2) ** bits
        point.append(mpmath.mpf(low) + (mpmath.mpf(high) - mpmath.mpf(low)) * u)
    return point


@dataclass(frozen=True)
class Confirmation:
    """Result of :func:`confirm`.

    Attributes
    ----------
    max_rel_err : mpmath.mpf
        Largest disagreement over the points (relative, floor 1).
    rtol : mpmath.mpf
        The tolerance it is held to.
    n_points, dps : int
        How many points, at how many digits.
    """

    max_rel_err: object
    rtol: object
    n_points: int
    dps: int

    @property
    def ok(self) -> bool:
        return bool(self.max_rel_err <= self.rtol)

    def __bool__(self) -> bool:
        return self.ok


def confirm(
    expr_a,
    expr_b,
    symbols: Sequence[sympy.Symbol],
    n_points: int = 5,
    dps: int = 50,
    domains: Mapping | None = None,
    seed: int = 0,
    sampler: Callable | None = None,
) -> Confirmation:
    r"""Confirm ``expr_a == expr_b`` numerically at random points.

    Parameters
    ----------
    expr_a, expr_b : sympy expressions
        The two sides.
    symbols : sequence of Symbol
        Every free symbol of both sides.
    n_points : int
        Number of random points.
    dps : int
        mpmath working precision in decimal digits.
    domains : mapping Symbol -> (low, high), optional
        Sampling interval per symbol; default ``(0.1, 2)`` for positive symbols,
        ``(-2, 2)`` otherwise.
    seed : int
        Seed of the private ``random.Random``.
    sampler : callable, optional
        ``sampler(rng) -> sequence of numbers`` replaces the uniform draw (for
        constrained points, e.g. :math:`S^2 \le N Q`).

    Returns
    -------
    Confirmation
        ``max_rel_err`` beside ``rtol = 10^(8 - dps)``; truthy when within it.
    """
    symbols = list(symbols)
    missing = sympy.sympify(expr_a).free_symbols | sympy.sympify(expr_b).free_symbols
    missing -= set(symbols)
    if missing:
        raise ValueError(
            f"symbols {sorted(map(str, missing))} have no values; add them"
        )
    domains = dict(domains or {})
    rng = random.Random(seed)
    fa = sympy.lambdify(symbols, expr_a, modules="mpmath")
    fb = sympy.lambdify(symbols, expr_b, modules="mpmath")
    with mpmath.workdps(dps):
        rtol = mpmath.mpf(10) ** (SLACK_DIGITS - dps)
        worst = mpmath.mpf(0)
        for _ in range(n_points):
            if sampler is not None:
                point = [mpmath.mpf(x) for x in sampler(rng)]
            else:
                point = _random_point(symbols, domains, rng, dps)
            a, b = fa(*point), fb(*point)
            scale = max(mpmath.mpf(1), abs(a), abs(b))
            worst = max(worst, abs(a - b) / scale)
        result = Confirmation(+worst, +rtol, n_points, dps)
    logger.info(
        "confirm: max rel err %s (rtol %s) at %d points, %d digits",
        mpmath.nstr(result.max_rel_err, 3),
        mpmath.nstr(result.rtol, 3),
        n_points,
        dps,
    )
    return result


@dataclass(frozen=True)
class IdentityCheck:
    """A symbolic attempt and the numeric confirmation of one identity.

    ``symbolic`` is ``"proved"``, ``"not proved"``, ``"timeout"``, ``"error"`` or
    ``"skipped"``;
    ``numeric`` is the :class:`Confirmation`. The identity is accepted when the
    numeric confirmation holds, whatever the symbolic status.
    """

    name: str
    symbolic: str
    numeric: Confirmation

    @property
    def ok(self) -> bool:
        return self.numeric.ok

    def __bool__(self) -> bool:
        return self.ok


def check_identity(
    name: str,
    expr_a,
    expr_b,
    symbols: Sequence[sympy.Symbol],
    timeout: float = 5.0,
    simplifier: Callable | None = sympy.simplify,
    **confirm_kwargs,
) -> IdentityCheck:
    """Try ``simplifier(a - b) == 0`` under ``timeout`` and always :func:`confirm`.

    Returns
    -------
    IdentityCheck
    """

    # Symbolic attempt, bounded in time (``simplifier=None`` skips it).
    if simplifier is None:
        attempt = TimedResult("skipped")
    else:
        attempt = time_limited(simplifier, timeout, sympy.sympify(expr_a) - expr_b)
    if attempt.status == "done":
        status = "proved" if attempt.value == 0 else "not proved"
    else:
        status = attempt.status

    # Numeric confirmation, always.
    numeric = confirm(expr_a, expr_b, symbols, **confirm_kwargs)
    logger.info("%s: symbolic %s, numeric ok=%s", name, status, numeric.ok)
    return IdentityCheck(name, status, numeric)
