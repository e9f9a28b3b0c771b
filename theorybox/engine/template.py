"""The source of the compiled float64 kernel, generated from an update rule.

The kernel's body is written here once, as a template; :func:`kernel_source`
pastes a rule's state and hyperparameter arguments into it.
:mod:`theorybox.engine.kernel` compiles the result with numba and caches it.

What the generated code does, for one run (``one_run``) and every step:

* per-sample weights are formed as ``log g_i`` (never ``g_i`` directly);
* each coordinate's gradient is formed relative to its own largest weight, so
  ``G_k`` and ``Q_k`` are exact however far apart the margins are;
* each coordinate's moments carry their own natural log-scale ``scale[k]``
  (``m = m_stored e^scale``, ``v = v_stored e^(2 scale)``), renormalised whenever a
  stored value leaves ``[2^-300, 2^300]`` (per power), so that a coordinate driven
  only by far-away samples is never frozen by underflow (theory.md section 5); a
  renormalised scale is a multiple of ``256 log 2``, so coordinates of similar size
  share it;
* a step whose non-zero update no longer changes any coordinate of ``w`` is
  counted as a *stall*, with the first step at which it happened.

A step forms every coordinate's gradient on the moments' scale first (with a
fast path when every coordinate is touched and the moments share one scale), then
applies the rule to all coordinates in a loop without data-dependent branches,
then renormalises the few moments that left their range. Two drivers call
``one_run`` for every run of a state, one in order (``serial``) and one with
``numba.prange`` over runs (``parallel``), so a run's bits never depend on which
driver advanced it.
"""

from __future__ import annotations

import dis
import math

__all__ = [
    "SCHEME_CODES",
    "kernel_source",
    "reads_argument",
    "switch_positions",
    "switch_values",
]

SCHEME_CODES = {"full": 0, "cyclic": 1, "reshuffle": 2, "replacement": 3}

#: A stored moment is renormalised when it leaves [2^-LIM, 2^LIM] (per power).
_LIM = 300.0
_HI = 2.0**_LIM
_LO = 2.0**-_LIM
#: The incoming gradient adopts its own scale when it exceeds the state's by this.
_JUMP = 300.0
#: e_q >= _FAST for the largest weight of a coordinate keeps the shared-scale path.
_FAST = 1e-140
#: Renormalised scales are multiples of this (a factor 2^256), which leaves a
#: renormalised moment within [2^-128, 2^128] (per power).
_GRID = 256 * math.log(2.0)

#: Bump when the layout of the generated module changes.
_FORMAT = "11"

# The hot loop. Hyperparameters, the step counter and the stall counters live in
# local variables, so that the compiler can keep them in registers and hoist the
# rule's hyperparameter branches. A step makes its passes over the coordinates in
# the order of the module docstring: gradients on the moments' scale, the rule,
# renormalisation.
_TEMPLATE = '''
def one_run(Z, Zt, Zg, zlog, w, st, scale, t, nsteps, hy, eta0, t0, a, seed, stream,
            scheme, bsize, loss_code, stall, perm, idx, lg, eq, dw_out):
    n, d = Z.shape
    nb = (n + bsize - 1) // bsize
{hyper_locals}
    stall_first = stall[0]
    stall_count = stall[1]
    cached_epoch = -1
    gsa = np.empty(d)
    qsa = np.empty(d)
    ga = np.empty(d)
    qa = np.zeros(d)
    sa = np.empty(d)
    ema = np.empty(d)
    tca = np.empty(d)
    live = np.empty(n, dtype=np.int64)
    lost = np.zeros(d, dtype=np.bool_)
    gl = np.zeros(d)
    ql = np.zeros(d)
    sl = np.zeros(d)

    # Columns with no zero entry: in any batch every sample touches them and their
    # largest weight is exactly 1 (the batch's largest), so only the others need
    # the per-sample bookkeeping below.
    sparse_cols = np.empty(d, dtype=np.int64)
    n_sparse = 0
    for k in range(d):
        ema[k] = 1.0
        tca[k] = 1.0
        for i in range(n):
            if Zg[i, k] == 0.0:
                sparse_cols[n_sparse] = k
                n_sparse += 1
                break
    # Rows without zeros, and whether any column was rescaled: a step whose
    # samples touch every coordinate of unrescaled columns can take the fast
    # path below.
    full_row = np.empty(n, dtype=np.bool_)
    for i in range(n):
        full_row[i] = True
        for k in range(d):
            if Zg[i, k] == 0.0:
                full_row[i] = False
    plain_cols = True
    for k in range(d):
        if zlog[k] != 0.0:
            plain_cols = False

    # The steps.
    for _ in range(nsteps):

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
                    permutation_nb(epoch_key_nb(seed, stream, epoch), perm)
                    cached_epoch = epoch
                for q in range(nbatch):
                    idx[q] = perm[start + q]
            else:
                key = epoch_key_nb(seed, stream, epoch)
                nbatch = bsize
                for q in range(nbatch):
                    idx[q] = min(int(uniform_nb(key, start + q) * n), n - 1)

        # Log-weights of the batch, and weights relative to the largest.
        # Each margin sums its products in coordinate order; with several samples
        # the samples' sums advance together, which keeps the same order per
        # sample but lets the processor overlap them.
        if nbatch == 1:
            s_i = 0.0
            row = Z[idx[0]]
            for k in range(d):
                s_i += row[k] * w[k]
            lg[0] = s_i
        elif scheme == 0:
            # Four coordinates per pass over the samples (the same additions in
            # the same order) keep the partial sums in registers between them.
            for q in range(n):
                lg[q] = 0.0
            k = 0
            while k + 4 <= d:
                w0 = w[k]
                w1 = w[k + 1]
                w2 = w[k + 2]
                w3 = w[k + 3]
                c0 = Zt[k]
                c1 = Zt[k + 1]
                c2 = Zt[k + 2]
                c3 = Zt[k + 3]
                for q in range(n):
                    lg[q] = (((lg[q] + c0[q] * w0) + c1[q] * w1) + c2[q] * w2
                             ) + c3[q] * w3
                k += 4
            while k < d:
                wk = w[k]
                col = Zt[k]
                for q in range(n):
                    lg[q] += col[q] * wk
                k += 1
        else:
            for q in range(nbatch):
                lg[q] = 0.0
            for k in range(d):
                wk = w[k]
                col = Zt[k]
                for q in range(nbatch):
                    lg[q] += col[idx[q]] * wk
        lgmax = -np.inf
        for q in range(nbatch):
            lg[q] = log_weight_scalar(lg[q], loss_code)
            if lg[q] > lgmax:
                lgmax = lg[q]
        # exp(0) = 1 exactly: the largest weight needs no exp.
        for q in range(nbatch):
            x = lg[q] - lgmax
            eq[q] = 1.0 if x == 0.0 else exp_or_zero(x)
        i0 = idx[0]
        e0 = eq[0]

        # Several samples: accumulate every coordinate's G, Q and largest weight
        # sample by sample over contiguous rows. Each coordinate still sums its
        # samples in batch order, and a zero entry adds an exact zero, so the
        # result is the same as summing coordinate by coordinate over its nonzero
        # entries; the loop over k has no branch and vectorises. Samples whose
        # weight underflowed to 0 are skipped (the sums start at +0 and only ever
        # subtract or add, so they are never -0 and adding +-0 leaves them as
        # they are), and the rest are taken four at a time, in order, so that
        # each sum stays in a register between them.
        if nbatch > 1:
            for k in range(d):
                gsa[k] = 0.0
                qsa[k] = 0.0  # Q
            nlive = 0
            for q in range(nbatch):
                if eq[q] != 0.0:
                    live[nlive] = q
                    nlive += 1
            p = 0
            while p + 4 <= nlive:
                ea = eq[live[p]]
                eb = eq[live[p + 1]]
                ec = eq[live[p + 2]]
                ed = eq[live[p + 3]]
                ra = Zg[idx[live[p]]]
                rb = Zg[idx[live[p + 1]]]
                rc = Zg[idx[live[p + 2]]]
                rd = Zg[idx[live[p + 3]]]
                for k in range(d):
                    za = ra[k]
                    zb = rb[k]
                    zc = rc[k]
                    zd = rd[k]
                    gsa[k] = (((gsa[k] - ea * za) - eb * zb) - ec * zc) - ed * zd
                    qk = qsa[k] + ea * ea * za * za  # Q
                    qk = qk + eb * eb * zb * zb  # Q
                    qk = qk + ec * ec * zc * zc  # Q
                    qsa[k] = qk + ed * ed * zd * zd  # Q
                p += 4
            while p < nlive:
                e = eq[live[p]]
                row = Zg[idx[live[p]]]
                for k in range(d):
                    zk = row[k]
                    gsa[k] -= e * zk
                    qsa[k] += e * e * zk * zk  # Q
                p += 1
            for j in range(n_sparse):
                k = sparse_cols[j]
                em = 0.0
                tc = 0.0
                for q in range(nbatch):
                    if Zg[idx[q], k] != 0.0:
                        tc += 1.0
                        if eq[q] > em:
                            em = eq[q]
                ema[k] = em
                tca[k] = tc

        # Every coordinate's G, Q and scale for the rule. The fast path: each
        # coordinate is touched with largest weight 1 (so its gradient scale is
        # lgmax), and (stateful rules) every coordinate's moments are nonzero
        # and share one scale that lgmax does not jump past; the arithmetic is
        # the general path's, without its per-coordinate tests.
        if nbatch == 1:
            fast = plain_cols and full_row[i0]
        else:
            fast = plain_cols and n_sparse == 0
{fast}
        lost_any = False
        if not fast:
            # The merge factors exp(sg - sc) of this step, for the last two scales sc
            # met (renormalised scales lie on a grid, so coordinates share them).
            last_sg = np.nan
            sc_a = np.nan
            f_a = 1.0
            sc_b = np.nan
            f_b = 1.0
            for k in range(d):
                lost[k] = False

                # The coordinate's gradient G (batch mean) and Q (sum of squares),
                # relative to its own log-scale sg. One sample a step is the same
                # arithmetic without the loop over the batch.
                touched = False
                gs = 0.0
                qs = 0.0
                emax = 0.0
                if nbatch == 1:
                    zk = Zg[i0, k]
                    if zk != 0.0:
                        touched = True
                        gs -= e0 * zk
                        qs += e0 * e0 * zk * zk  # Q
                        if e0 > emax:
                            emax = e0
                else:
                    emax = ema[k]
                    touched = tca[k] > 0.0
                    gs = gsa[k]
                    qs = qsa[k]  # Q
                sg = 0.0
                if touched:
                    sg = lgmax
                    if emax < FAST:
                        sg = -np.inf
                        for q in range(nbatch):
                            if Zg[idx[q], k] != 0.0 and lg[q] > sg:
                                sg = lg[q]
                        gs = 0.0
                        qs = 0.0
                        for q in range(nbatch):
                            zk = Zg[idx[q], k]
                            if zk != 0.0:
                                e = exp_or_zero(lg[q] - sg)
                                gs -= e * zk
                                qs += e * e * zk * zk  # Q
                    # Columns of extreme magnitude were rescaled by a power of 2.
                    sg = sg + zlog[k]
                # x / 1 is x exactly, so one sample a step skips the division.
                if nbatch == 1:
                    G = gs
                else:
                    G = gs / nbatch
                Q = qs

                # Bring gradient and stored moments to one scale.
{merge}
                ga[k] = G
                qa[k] = Q
                sa[k] = s_use

        # The update rule on every coordinate, and whether float64 could resolve
        # its step (an untouched coordinate has G = 0). Nothing here branches on
        # the data, so the compiler may vectorise the loop; a moment that leaves
        # its range is only flagged, and renormalised after it.
        wanted = False
        moved = False
        out_of_range = False
        for k in range(d):
            s_use = sa[k]
            G = ga[k]
            Q = qa[k]
{load}
            {call}
            wanted |= (dw != 0.0) | (G != 0.0)
            w_old = w[k]
            w_new = w_old + dw
            moved |= w_new != w_old
            w[k] = w_new
            dw_out[k] = dw
{flag}
{fixup}{renorm}
        if wanted and not moved:
            if stall_count == 0:
                stall_first = t
            stall_count += 1
        t += 1
    stall[0] = stall_first
    stall[1] = stall_count
    return t


def serial(Z, Zt, Zg, zlog, zsel, w, st, scale, tcount, nsteps, hy, sched, seeds,
           streams, schemes, bsizes, losses, stall, perm, idx, lg, eq, dw_out):
    n = Z.shape[1]
    for r in range(w.shape[0]):
        tcount[r] = one_run(
            Z[zsel[r]], Zt[zsel[r]], Zg[zsel[r]], zlog[zsel[r]], w[r], st[r],
            scale[r], tcount[r],
            nsteps, hy[r], sched[r, 0], sched[r, 1], sched[r, 2], seeds[r], streams[r],
            schemes[r], bsizes[r], losses[r], stall[r], perm[r, :n], idx[r],
            lg[r], eq[r], dw_out[r],
        )


def parallel(Z, Zt, Zg, zlog, zsel, w, st, scale, tcount, nsteps, hy, sched, seeds,
             streams, schemes, bsizes, losses, stall, perm, idx, lg, eq, dw_out):
    n = Z.shape[1]
    eta0s = sched[:, 0].copy()
    t0s = sched[:, 1].copy()
    powers = sched[:, 2].copy()
    for r in numba.prange(w.shape[0]):
        tcount[r] = one_run(
            Z[zsel[r]], Zt[zsel[r]], Zg[zsel[r]], zlog[zsel[r]], w[r], st[r],
            scale[r], tcount[r],
            nsteps, hy[r], eta0s[r],
            t0s[r], powers[r], seeds[r], streams[r], schemes[r], bsizes[r],
            losses[r], stall[r], perm[r, :n], idx[r], lg[r], eq[r], dw_out[r],
        )
'''

_MERGE_STATELESS = """\
                s_use = sg
"""

# The fast path's G, Q and scale (sg is lgmax + 0.0, as the general path's
# lgmax + zlog[k]; 0.0 - x and 0.0 + x are its accumulations from zero).
_FAST_FILL = """\
            if nbatch == 1:
                for k in range(d):
                    zk = Zg[i0, k]
                    g = 0.0 - e0 * zk
                    ga[k] = g{f}
                    qa[k] = (0.0 + e0 * e0 * zk * zk){ff}  # Q
                    sa[k] = {s}{check}
            else:
                for k in range(d):
                    g = gsa[k] / nbatch
                    ga[k] = g{f}
                    qa[k] = qsa[k]{ff}  # Q
                    sa[k] = {s}{check}
"""

_FAST_STATELESS = """\
        if fast:
            sg = lgmax + 0.0
""" + _FAST_FILL.format(f="", ff="", s="sg", check="")

_FAST_STATEFUL = """\
        if fast:
            sg = lgmax + 0.0
            sc = scale[0]
            for k in range(d):
                fast &= (scale[k] == sc) & ({nonzero})
            fast &= not sg > sc + JUMP
        if fast:
            x = sg - sc
            f = 1.0 if x == 0.0 else math.exp(x)
            gone = False
""" + _FAST_FILL.format(
    f=" * f", ff=" * f * f", s="sc",
    check="\n                    gone |= (ga[k] == 0.0) & (g != 0.0)",
) + """\
            # A gradient lost to underflow on the moments' scale: general path.
            fast = not gone
"""

_MERGE_STATEFUL = """\
                sc = scale[k]
                if touched:
                    if {all_zero}:
                        sc = sg
                    elif sg > sc + JUMP:
                        f = math.exp(sc - sg)
{rescale_to_sg}
                        sc = sg
                    # exp is shared by coordinates with the same two scales.
                    if sg != last_sg:
                        last_sg = sg
                        sc_a = np.nan
                        sc_b = np.nan
                    if sc == sc_a:
                        f = f_a
                    elif sc == sc_b:
                        f = f_b
                    else:
                        x = sg - sc
                        f = 1.0 if x == 0.0 else math.exp(x)
                        sc_b = sc_a
                        f_b = f_a
                        sc_a = sc
                        f_a = f
                    # A gradient below the moments' scale by more than float64's
                    # range vanishes here; it is kept for the rule to be redone
                    # on its own scale should the moments vanish too.
                    gf = G * f
                    if gf == 0.0 and G != 0.0:
                        lost[k] = True
                        lost_any = True
                        gl[k] = G
                        ql[k] = Q
                        sl[k] = sg
                    G = gf
                    Q = Q * f * f  # Q
                else:
                    G = 0.0
                    Q = 0.0
                scale[k] = sc
                s_use = sc
"""

# A gradient lost in the merge (see _MERGE_STATEFUL) whose rule kept none of the
# old moments (Signum with beta = 0): the step is redone on the gradient's own
# scale from zero moments, which is what the rule computes in exact arithmetic
# when the old moments are multiplied by 0.
_FIXUP = """\
        if lost_any:
            for k in range(d):
                if not (lost[k] and dw_out[k] == 0.0 and {all_zero}):
                    continue
{zeros}
                s_use = sl[k]
                G = gl[k]
                Q = ql[k]
                {call}
                wanted = True
                w_old = w[k]
                w_new = w_old + dw
                moved |= w_new != w_old
                w[k] = w_new
                dw_out[k] = dw
                scale[k] = s_use
{store}
                out_of_range |= {leaves}
"""

_RENORM = """\
        if out_of_range:
            for k in range(d):
{load}
                if {out_of_range}:
                    mag = 0.0
{magnitudes}
                    if mag > HI or 0.0 < mag < LO:
{divide}
                        # The new scale is the grid point nearest sc + log(mag), so
                        # that coordinates of similar size share it (and its merge
                        # factor).
                        r = scale[k] + math.log(mag)
                        sc = math.floor(r / GRID + 0.5) * GRID
                        f = math.exp(r - sc)
{regrid}
                        scale[k] = sc
{store}
"""


def switch_positions(spec) -> tuple[int, ...]:
    """Positions of ``spec``'s *switches*: hyperparameters whose default is an int.

    An integer hyperparameter selects a mode of the rule (Adam's ``eps_mode`` and
    ``bias_correction``). The kernel is compiled once per combination of switch
    values, with each value written into the source as a constant, so that the
    rule's branches on it and divisions by constants it implies (``m / 1``) are
    resolved at compile time instead of at every coordinate of every step. The
    arithmetic is unchanged: the constant is the same float64 the run axis holds.
    """
    return tuple(
        j
        for j, value in enumerate(spec.hyper.values())
        if isinstance(value, int) and not isinstance(value, bool)
    )


def switch_values(spec, hyper) -> tuple[tuple[int, float], ...]:
    """``(position, value)`` of each switch in the resolved ``hyper`` mapping."""
    values = list(hyper.values())
    return tuple((j, float(values[j])) for j in switch_positions(spec))


def reads_argument(rule, name: str) -> bool:
    """Whether ``rule``'s code ever reads its argument ``name``.

    Read from the bytecode: any instruction that loads the local ``name``. A rule
    whose code cannot be inspected this way counts as reading it.
    """
    code = getattr(rule, "__code__", None)
    if code is None or name not in code.co_varnames:
        return code is None
    for instruction in dis.get_instructions(code):
        if not instruction.opname.startswith("LOAD_"):
            continue
        value = instruction.argval
        if value == name or (isinstance(value, tuple) and name in value):
            return True
    return False


def _render(spec, switches=(), fast_path=True) -> str:
    """The kernel's source for one optimizer spec and fixed switch values.

    ``fast_path=False`` leaves out the fast path for dense steps, so that tests can
    check it against the general path bit for bit.

    Lines of the template tagged ``# Q`` form the sum of squared per-sample
    gradients ``Q``; they are left out for a rule that never reads ``Q`` (all but
    the AdamProxy family), which then receives ``Q = 0``.
    """
    source = _render_all(spec, switches, fast_path)
    if reads_argument(spec.rule, "Q"):
        return source
    return "\n".join(
        line for line in source.split("\n") if not line.endswith("  # Q")
    )


def _render_all(spec, switches, fast_path) -> str:
    ns = len(spec.state)
    nh = len(spec.hyper)
    fixed = dict(switches)
    hyper_locals = "\n".join(
        f"    h{j} = {fixed[j]!r}" if j in fixed else f"    h{j} = hy[{j}]"
        for j in range(nh)
    ) or "    pass"
    state_args = [f"x{j}" for j in range(ns)]
    hyper_args = [f"h{j}" for j in range(nh)]
    args = ", ".join(["lr", "t + 1", "s_use", "G", "Q", *state_args, *hyper_args])
    targets = ", ".join(["dw", *state_args]) + ("," if ns == 0 else "")
    call = f"{targets} = RULE({args})"
    fast = _fast_fragment(spec) if fast_path else "        fast = False\n"
    if ns == 0:
        return _TEMPLATE.format(
            hyper_locals=hyper_locals, merge=_MERGE_STATELESS, call=call, load="",
            flag="", renorm="", fast=fast, fixup="",
        )

    def lines(pattern, indent):
        """``pattern`` for each moment ``j``; ``{f}`` is its factor ``f`` or
        ``f * f`` (by the moment's power)."""
        return "\n".join(
            " " * indent + pattern.format(j=j, f="f" if p == 1 else "f * f")
            for j, (_, p) in enumerate(spec.state)
        )

    load = lines("x{j} = st[{j}, k]", 12)
    store = lines("st[{j}, k] = x{j}", 12)
    all_zero = " and ".join(f"st[{j}, k] == 0.0" for j in range(ns))
    merge = _MERGE_STATEFUL.format(
        all_zero=all_zero, rescale_to_sg=lines("st[{j}, k] *= {f}", 24)
    )
    checks = []
    mags = []
    divides = []
    for j, (_, p) in enumerate(spec.state):
        ref = f"x{j}"
        hi, lo = ("HI", "LO") if p == 1 else ("HI * HI", "LO * LO")
        checks.append(f"(abs({ref}) > {hi}) | ((abs({ref}) < {lo}) & ({ref} != 0.0))")
        root = f"abs({ref})" if p == 1 else f"math.sqrt(abs({ref}))"
        mags.append(f"                    mag = max(mag, {root})")
        # Two divisions for v: mag * mag itself can underflow (or overflow).
        div = "mag" if p == 1 else "mag / mag"
        divides.append(f"                        {ref} = {ref} / {div}")
    leaves = " | ".join(f"({c})" for c in checks)
    renorm = _RENORM.format(
        out_of_range=leaves,
        load=lines("x{j} = st[{j}, k]", 16),
        magnitudes="\n".join(mags),
        divide="\n".join(divides),
        regrid=lines("x{j} *= {f}", 24),
        store=lines("st[{j}, k] = x{j}", 20),
    )
    return _TEMPLATE.format(
        hyper_locals=hyper_locals, merge=merge, call=call, load=load,
        flag=f"{store}\n            out_of_range |= {leaves}", renorm=renorm,
        fast=fast,
        fixup=_FIXUP.format(
            all_zero=all_zero, zeros=lines("x{j} = 0.0", 16), call=call,
            store=lines("st[{j}, k] = x{j}", 16), leaves=leaves,
        ),
    )


def _fast_fragment(spec) -> str:
    """The fast path's code for ``spec`` (see the template)."""
    if not spec.state:
        return _FAST_STATELESS
    nonzero = " | ".join(f"(st[{j}, k] != 0.0)" for j in range(len(spec.state)))
    return _FAST_STATEFUL.format(nonzero=nonzero)


def kernel_source(spec, switches=(), fast_path=True) -> str:
    """The generated Python source of ``spec``'s kernel (for inspection)."""
    return _render(spec, switches, fast_path)
