"""Adam for float32 CPU parameters in one compiled call per step (BPR-MF's CPU fast path).

The update is ``torch.optim.Adam``'s (L2 ``weight_decay`` added to the gradient, bias-
corrected moments, ``eps`` added after the square root; no amsgrad), so a fit with it is
the same model trained the same way (the tests compare the two step by step). Why not
torch's own: BPR-MF's ranking epoch is a dozen steps over ~220k floats, and torch's fused
CPU Adam spends about as long in Python (parameter grouping, state-step tensors,
profiler hooks) as in arithmetic; here the per-step cost is one numba call over flat
views prepared once. bench/bench_bpr.py times the whole fit.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from recommenders.classic._numba import noalias_njit


@noalias_njit()  # parameters, gradients and moments are separate tensors
def _adam_update(params, grads, exp_avgs, exp_avg_sqs, step_size, beta1, beta2, weight_decay, eps, inv_bc2_sqrt):
    """One Adam step, in place, over tuples of flat float32 arrays (bias corrections precomputed)."""
    c1 = np.float32(1.0) - beta1
    c2 = np.float32(1.0) - beta2
    for t in range(len(params)):
        param, grad, exp_avg, exp_avg_sq = params[t], grads[t], exp_avgs[t], exp_avg_sqs[t]
        for i in range(param.shape[0]):
            g = grad[i] + weight_decay * param[i]
            m = exp_avg[i] + c1 * (g - exp_avg[i])  # torch's lerp form of beta1 * m + (1 - beta1) * g
            v = beta2 * exp_avg_sq[i] + c2 * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            param[i] -= step_size * m / (np.sqrt(v) * inv_bc2_sqrt + eps)


def _flat(tensor: torch.Tensor, what: str) -> np.ndarray:
    """A flat float32 view of a CPU tensor (the update is in place: no copies)."""
    if (tensor.device.type != "cpu" or tensor.dtype != torch.float32 or tensor.layout != torch.strided
            or not tensor.is_contiguous()):
        raise ValueError(f"CpuAdam: {what} must be a contiguous float32 CPU tensor, "
                         f"got {tensor.dtype} {tensor.layout} on {tensor.device}")
    return tensor.detach().numpy().reshape(-1)


class CpuAdam(torch.optim.Optimizer):
    """``torch.optim.Adam(params, lr, betas, eps, weight_decay)`` for contiguous float32 CPU
    parameters. State per parameter: ``step`` (an int), ``exp_avg``, ``exp_avg_sq``."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        if lr < 0 or eps < 0 or weight_decay < 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1):
            raise ValueError(f"CpuAdam: invalid lr={lr}, betas={betas}, eps={eps} or weight_decay={weight_decay}")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self._views: dict = {}  # parameter -> flat numpy views (see _arrays)

    def zero_grad(self, set_to_none: bool = True) -> None:
        # Optimizer.zero_grad's profiler hooks cost more than the few parameters here
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad.zero_()

    def _arrays(self, p: torch.Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Flat views of a parameter, its gradient and its moments. Cached: per-step tensor-
        to-numpy conversions and checks cost more than a small table's update. Rebuilt
        when a tensor behind them changes (new storage, load_state_dict, a new gradient)."""
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.contiguous_format)
        key = (p.data_ptr(), state["exp_avg"], state["exp_avg_sq"])
        cached = self._views.get(p)
        if cached is None or cached[0][0] != key[0] or cached[0][1] is not key[1] or cached[0][2] is not key[2]:
            cached = (key, _flat(p, "a parameter"), _flat(key[1], "exp_avg"), _flat(key[2], "exp_avg_sq"), None, None)
        grad = p.grad
        if not grad.is_contiguous():  # read through a fresh copy: a cached one would go stale
            self._views[p] = cached
            return cached[1], _flat(grad.contiguous(), "a gradient"), cached[2], cached[3]
        if cached[4] is not grad:
            cached = cached[:4] + (grad, _flat(grad, "a gradient"))
        self._views[p] = cached
        return cached[1], cached[5], cached[2], cached[3]

    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            # Parameters stepped together share a step count (Adam's bias correction), so
            # they are updated in runs of equal counts (one run, unless some once had no grad).
            runs: dict[int, list] = {}
            for p in group["params"]:
                if p.grad is None:
                    continue
                arrays = self._arrays(p)
                state = self.state[p]
                state["step"] += 1
                runs.setdefault(state["step"], []).append(arrays)
            beta1, beta2 = group["betas"]
            for t, arrays in runs.items():
                params, grads, exp_avgs, exp_avg_sqs = (tuple(a) for a in zip(*arrays))
                _adam_update(params, grads, exp_avgs, exp_avg_sqs, np.float32(group["lr"] / (1 - beta1**t)),
                             np.float32(beta1), np.float32(beta2), np.float32(group["weight_decay"]),
                             np.float32(group["eps"]), np.float32(1 / math.sqrt(1 - beta2**t)))
        return loss
