"""Fused loss and gradient of BPR-MF's ranking loss (the CPU fast path of ``BPRMF._loss``).

``BPRMF._loss`` in torch is the definition; autograd runs it as some 30 full passes over
(rows, factors) tensors per batch (gathers, window sums, their adjoints, scatters): memory
traffic, not arithmetic, ~7x slower per epoch than a Cython SGD loop over the same
interactions. This kernel computes the same loss and the same gradients in one sweep over
the batch with the window sums kept as running sums, touching each table row while it is
in cache. Its Adam step (``_cpu_adam.CpuAdam``) is torch's update, so a fit with and without
the kernel is the same model trained the same way (the tests compare the kernel's loss and
gradients with autograd's, CpuAdam's steps with torch's Adam, and the two fits' scores).

Batch layout (``BPRMF._batches``, the "gap layout"): whole user timelines laid end to
end, each preceded by ``width`` rows of bucket ``gap`` whose gate is zero. Row k (k >= 1)
is a target when norm[k] > 0: positive items[k], negative neg[k], user vector

    u_k = norm[k] * s_k,   s_k = sum_{j=k-width}^{k-1} gate[buckets[j]] * P[items[j]]

and loss = mean over targets of -log sigmoid(u_k . (Q[pos] - Q[neg]) + b[pos] - b[neg]).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from recommenders.classic._numba import noalias_njit

# Rows between flushes of the loss product (each factor is in (1, 2]: 2**512 is finite).
_LOSS_FLUSH = 512


@njit(cache=True, nogil=True, inline="always")
def _claim_row(seen, grad, row):
    """Zero a gradient row the first time the sweep writes to it (the buffers come in
    holding the previous step's gradients; see _sweep)."""
    if not seen[row]:
        seen[row] = True
        for f in range(grad.shape[1]):
            grad[row, f] = 0.0


@noalias_njit(fastmath=True)  # callers pass separate tables and gradient buffers
def _sweep(items, buckets, norm, neg, history, item, bias, gate, width, gap,
           g_history, g_item, g_bias, g_gate):
    """The mean of the batch's target losses; its gradients are written into the g_*
    arrays (whatever they held before: a table row's gradient is zeroed when the sweep
    first touches it and the rows it never touches are zeroed at the end, which saves a
    separate zeroing pass over the tables before each step).

    Step k adds row k-1 to the forward window sum s (= s_k) and scores target k. The
    gradient w.r.t. s_k, G_k = c_k * norm[k] * (Q[pos_k] - Q[neg_k]), joins a second
    running sum r of the last `width` G's, which is exactly the gradient of row k-width's
    embedding (that row feeds the windows of rows k-width+1 .. k), so row k-width's
    backward runs at step k while its table rows are still in cache. Both windows keep
    their rows in ring buffers and are reset to exact zero after `width` idle rows (a
    user's start), so rounding never carries from one user to the next. Scalars stay
    float32 and rows are indexed [row, f] so the loops over factors vectorise; the work
    is about six such loops per row (fewer, fused loops measured faster than one loop per
    written array).
    """
    n = items.shape[0]
    d = history.shape[1]
    one = np.float32(1.0)
    g_bias[:] = 0.0
    g_gate[:] = 0.0
    seen_history = np.zeros(history.shape[0], dtype=np.bool_)  # g_history row zeroed yet?
    seen_item = np.zeros(item.shape[0], dtype=np.bool_)
    targets = 0
    for k in range(1, n):
        if norm[k] > 0:
            targets += 1
    inv_targets = np.float32(1.0 / max(targets, 1))

    s = np.zeros(d, dtype=np.float32)  # sum of embeddings of rows k-width .. k-1
    r = np.zeros(d, dtype=np.float32)  # sum of G over rows k-width+1 .. k
    ring_e = np.zeros((width, d), dtype=np.float32)  # embedding of row j at slot j % width
    ring_g = np.zeros((width, d), dtype=np.float32)  # G of row k at slot k % width
    # -log sigmoid(x) = log(1 + exp(-|x|)) + max(-x, 0): the logs are summed as the log of a
    # running product (one log per _LOSS_FLUSH targets instead of a log1p call per target).
    loss, product, in_product = 0.0, 1.0, 0
    gap_run = 0  # consecutive gap rows up to k-1
    idle_run = 0  # consecutive non-target rows up to k
    slot_e, slot = 0, 1 % width  # ring slots of rows k-1 and k (counters: no division per row)
    for k in range(1, n + width - 1):
        if k < n:
            # forward: row k-1 enters the window, row k-1-width (in its ring slot) leaves it
            j = k - 1
            if buckets[j] == gap:
                gap_run += 1
                for f in range(d):
                    s[f] -= ring_e[slot_e, f]
                for f in range(d):
                    ring_e[slot_e, f] = 0.0
            else:
                gap_run = 0
                a, b = items[j], buckets[j]
                for f in range(d):
                    e = gate[b, f] * history[a, f]
                    s[f] += e - ring_e[slot_e, f]
                    ring_e[slot_e, f] = e
            if gap_run >= width:
                for f in range(d):
                    s[f] = 0.0
            slot_e = slot
        if k < n and norm[k] > 0:
            idle_run = 0
            pos, ng, scale = items[k], neg[k], norm[k]
            dot = np.float32(0.0)
            for f in range(d):
                dot += s[f] * (item[pos, f] - item[ng, f])
            x = scale * dot + bias[pos] - bias[ng]
            t = math.exp(-abs(x))
            product *= 1.0 + t
            loss += max(-x, 0.0)
            in_product += 1
            if in_product == _LOSS_FLUSH:
                loss += math.log(product)
                product, in_product = 1.0, 0
            c = -inv_targets * (t if x >= 0 else one) / (one + t)  # dL/dx = -sigmoid(-x) / targets
            g_bias[pos] += c
            g_bias[ng] -= c
            cs = c * scale
            _claim_row(seen_item, g_item, pos)
            _claim_row(seen_item, g_item, ng)
            for f in range(d):
                sv = cs * s[f]
                g_item[pos, f] += sv
                g_item[ng, f] -= sv
            for f in range(d):
                gv = cs * (item[pos, f] - item[ng, f])
                r[f] += gv - ring_g[slot, f]
                ring_g[slot, f] = gv
        else:  # no target (or past the last row): G_k = 0, the oldest G leaves
            idle_run += 1
            for f in range(d):
                r[f] -= ring_g[slot, f]
            for f in range(d):
                ring_g[slot, f] = 0.0
        slot = slot + 1 if slot + 1 < width else 0
        if idle_run >= width:
            for f in range(d):
                r[f] = 0.0
            continue
        # backward of row j = k - width: its embedding's gradient is r
        j = k - width
        if j < 0 or buckets[j] == gap:
            continue
        a, b = items[j], buckets[j]
        _claim_row(seen_history, g_history, a)
        for f in range(d):
            rv = r[f]
            g_history[a, f] += gate[b, f] * rv
            g_gate[b, f] += history[a, f] * rv
    loss += math.log(product)
    for row in range(g_history.shape[0]):  # rows no target touched: a zero gradient
        _claim_row(seen_history, g_history, row)
    for row in range(g_item.shape[0]):
        _claim_row(seen_item, g_item, row)
    return loss / max(targets, 1)


@noalias_njit()
def take_segments(source, starts, lengths, out):
    """out = source[starts[0] : starts[0] + lengths[0]], then the next segment, ... (the
    epoch's shuffled user timelines as block copies: ~3x faster than numpy's take on the
    row indices)."""
    at = 0
    for i in range(starts.shape[0]):
        start, length = starts[i], lengths[i]
        out[at : at + length] = source[start : start + length]
        at += length


def bpr_fold_in_grads(items, buckets, norm, neg, history, item, bias, gate, width: int, gap: int,
                      g_history, g_item, g_bias, g_gate) -> float:
    """The batch's mean loss (0 without targets); its gradients are written into the g_*
    arrays (no zeroing needed beforehand).

    items, buckets, neg: int64 (n,); norm: float32 (n,); history, item: float32 (V, d)
    tables P and Q; bias: (V,); gate: (B, d) with B > gap (row ``gap`` is never read: gap
    rows embed to zero, and it is not a parameter). The g_* arrays have the shapes of
    history, item, bias, gate and must not overlap them or each other.

    One thread: numba's parallel layer here is OpenMP, which shares torch's runtime and
    changes torch's thread count as a side effect (and two threads measured no faster on
    8,192-row batches).
    """
    return _sweep(items, buckets, norm, neg, history, item, bias, gate, width, gap, g_history, g_item, g_bias, g_gate)
