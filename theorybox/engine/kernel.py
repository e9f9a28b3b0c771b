"""The compiled float64 kernel, generated from an optimizer's update rule.

One kernel per update rule advances a batch of runs (leading run axis) by a number
of steps. It owns the numerics that keep float64 honest far past the underflow wall:

* per-sample weights are formed as ``log g_i`` (never ``g_i`` directly);
* each coordinate's gradient is formed relative to its own largest weight, so
  ``G_k`` and ``Q_k`` are exact however far apart the margins are;
* each coordinate's moments carry their own natural log-scale ``scale[k]``
  (``m = m_stored e^scale``, ``v = v_stored e^(2 scale)``), renormalised whenever a
  stored value leaves ``[2^-300, 2^300]`` (per power), so that a coordinate driven
  only by far-away samples is never frozen by underflow (theory.md section 5);
* a step whose non-zero update no longer changes any coordinate of ``w`` is
  counted as a *stall*, with the first step at which it happened.

The kernel's body is written here once; :func:`build_kernel` pastes the rule's
state and hyperparameter arguments into it and compiles it with numba.
"""

from __future__ import annotations

import logging
import math
import threading

import numba
import numpy as np

from theorybox.arith.ops import bind_ops, numba_ops
from theorybox.losses import log_weight_scalar
from theorybox.rng import epoch_key_nb, permutation_nb, uniform_nb

__all__ = ["build_kernel", "SCHEME_CODES"]

logger = logging.getLogger(__name__)

SCHEME_CODES = {"full": 0, "cyclic": 1, "reshuffle": 2, "replacement": 3}

#: A stored moment is renormalised when it leaves [2^-LIM, 2^LIM] (per power).
_LIM = 300.0
_HI = 2.0**_LIM
_LO = 2.0**-_LIM
#: The incoming gradient adopts its own scale when it exceeds the state's by this.
_JUMP = 300.0
#: e_q >= _FAST for the largest weight of a coordinate keeps the shared-scale path.
_FAST = 1e-140

_TEMPLATE = '''
def kernel(Z, w, st, scale, tcount, nsteps, hy, sched, seeds, scheme, bsize,
           loss_code, stall, perm, idx, lg, eq, dw_out):
    n, d = Z.shape
    n_runs = w.shape[0]
    nb = (n + bsize - 1) // bsize
    for r in range(n_runs):
        cached_epoch = -1
        eta0 = sched[r, 0]
        t0 = sched[r, 1]
        a = sched[r, 2]
        for _ in range(nsteps):
            t = tcount[r]

            # Step size and this step's batch.
            if a == 0.0:
                lr = eta0
            else:
                lr = eta0 * (t + t0) ** (-a)
            epoch = t // nb
            j = t - epoch * nb
            if scheme == 0:
                nbatch = n
                for q in range(n):
                    idx[q] = q
            else:
                start = j * bsize
                nbatch = min(bsize, n - start)
                if scheme == 1:
                    for q in range(nbatch):
                        idx[q] = start + q
                elif scheme == 2:
                    if cached_epoch != epoch:
                        permutation_nb(epoch_key_nb(seeds[r], r, epoch), perm)
                        cached_epoch = epoch
                    for q in range(nbatch):
                        idx[q] = perm[start + q]
                else:
                    key = epoch_key_nb(seeds[r], r, epoch)
                    nbatch = bsize
                    for q in range(nbatch):
                        idx[q] = min(int(uniform_nb(key, start + q) * n), n - 1)

            # Log-weights of the batch, and weights relative to the largest.
            lgmax = -np.inf
            for q in range(nbatch):
                i = idx[q]
                s_i = 0.0
                for k in range(d):
                    s_i += Z[i, k] * w[r, k]
                lg[q] = log_weight_scalar(s_i, loss_code)
                if lg[q] > lgmax:
                    lgmax = lg[q]
            for q in range(nbatch):
                eq[q] = math.exp(lg[q] - lgmax)

            wanted = False
            moved = False
            last_sg = np.nan
            last_sc = np.nan
            last_f = 1.0
            for k in range(d):

                # The coordinate's gradient G (batch mean) and Q (sum of squares),
                # relative to its own log-scale sg.
                touched = False
                gs = 0.0
                qs = 0.0
                emax = 0.0
                for q in range(nbatch):
                    zk = Z[idx[q], k]
                    if zk != 0.0:
                        touched = True
                        gs -= eq[q] * zk
                        qs += eq[q] * eq[q] * zk * zk
                        if eq[q] > emax:
                            emax = eq[q]
                sg = 0.0
                if touched:
                    sg = lgmax
                    if emax < FAST:
                        sg = -np.inf
                        for q in range(nbatch):
                            if Z[idx[q], k] != 0.0 and lg[q] > sg:
                                sg = lg[q]
                        gs = 0.0
                        qs = 0.0
                        for q in range(nbatch):
                            zk = Z[idx[q], k]
                            if zk != 0.0:
                                e = math.exp(lg[q] - sg)
                                gs -= e * zk
                                qs += e * e * zk * zk
                G = gs / nbatch
                Q = qs

                # Bring gradient and stored moments to one scale.
{merge}
                # The update rule, and whether float64 could resolve its step.
                {call}
                if dw != 0.0 or (touched and G != 0.0):
                    wanted = True
                w_new = w[r, k] + dw
                if w_new != w[r, k]:
                    moved = True
                w[r, k] = w_new
                dw_out[r, k] = dw
{renorm}
            tcount[r] = t + 1
            if wanted and not moved:
                if stall[r, 1] == 0:
                    stall[r, 0] = t
                stall[r, 1] += 1
'''

_MERGE_STATELESS = """\
                s_use = sg
"""

_MERGE_STATEFUL = """\
                sc = scale[r, k]
                if touched:
                    if {all_zero}:
                        sc = sg
                    elif sg > sc + JUMP:
                        f = math.exp(sc - sg)
{rescale_to_sg}
                        sc = sg
                    # exp is shared by coordinates with the same two scales.
                    if sg != last_sg or sc != last_sc:
                        last_sg = sg
                        last_sc = sc
                        last_f = math.exp(sg - sc)
                    G = G * last_f
                    Q = Q * last_f * last_f
                else:
                    G = 0.0
                    Q = 0.0
                s_use = sc
"""

_RENORM = """\
                if {out_of_range}:
                    mag = 0.0
{magnitudes}
                    if mag > HI or 0.0 < mag < LO:
{divide}
                        sc = sc + math.log(mag)
                scale[r, k] = sc
"""


def _state_ref(j):
    return f"st[r, {j}, k]"


def _render(spec) -> str:
    """The kernel's source for one optimizer spec."""
    ns = len(spec.state)
    nh = len(spec.hyper)
    state_args = [_state_ref(j) for j in range(ns)]
    hyper_args = [f"hy[r, {j}]" for j in range(nh)]
    args = ", ".join(["lr", "t + 1", "s_use", "G", "Q", *state_args, *hyper_args])
    targets = ", ".join(["dw", *state_args]) + ("," if ns == 0 else "")
    call = f"{targets} = RULE({args})"
    if ns == 0:
        return _TEMPLATE.format(merge=_MERGE_STATELESS, call=call, renorm="")
    all_zero = " and ".join(f"{ref} == 0.0" for ref in state_args)
    rescale = "\n".join(
        f"                        {_state_ref(j)} *= {'f' if p == 1 else 'f * f'}"
        for j, (_, p) in enumerate(spec.state)
    )
    merge = _MERGE_STATEFUL.format(all_zero=all_zero, rescale_to_sg=rescale)
    checks = []
    mags = []
    divides = []
    for j, (_, p) in enumerate(spec.state):
        ref = _state_ref(j)
        hi, lo = ("HI", "LO") if p == 1 else ("HI * HI", "LO * LO")
        checks.append(f"abs({ref}) > {hi} or (0.0 < abs({ref}) < {lo})")
        root = f"abs({ref})" if p == 1 else f"math.sqrt(abs({ref}))"
        mags.append(f"                    mag = max(mag, {root})")
        div = "mag" if p == 1 else "(mag * mag)"
        divides.append(f"                        {ref} /= {div}")
    renorm = _RENORM.format(
        out_of_range=" or ".join(f"({c})" for c in checks),
        magnitudes="\n".join(mags),
        divide="\n".join(divides),
    )
    return _TEMPLATE.format(merge=merge, call=call, renorm=renorm)


_CACHE: dict = {}
_LOCK = threading.Lock()


def build_kernel(spec):
    """The compiled kernel for ``spec`` (compiled once per rule and state layout)."""
    key = (spec.rule, spec.state, len(spec.hyper))
    with _LOCK:
        kernel = _CACHE.get(key)
        if kernel is None:
            source = _render(spec)
            namespace = {
                "np": np,
                "math": math,
                "RULE": numba.njit(inline="always")(bind_ops(spec.rule, numba_ops)),
                "log_weight_scalar": log_weight_scalar,
                "epoch_key_nb": epoch_key_nb,
                "permutation_nb": permutation_nb,
                "uniform_nb": uniform_nb,
                "HI": _HI,
                "LO": _LO,
                "JUMP": _JUMP,
                "FAST": _FAST,
            }
            exec(compile(source, f"<theorybox kernel {spec.name}>", "exec"), namespace)
            kernel = numba.njit(namespace["kernel"])
            _CACHE[key] = kernel
            logger.debug("generated kernel for %s", spec.name)
        return kernel
