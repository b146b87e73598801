"""Relative L2 perturbations of embedding tensors, row by row.

A "row" is one embedding vector: the last dimension of a tensor (an item's row in an MF /
SASRec item table, one token's vector in an LLM's inputs_embeds). The budget is relative
to the clean vector, the same for every model:

    ||delta_r||_2 <= epsilon * ||e_r||_2   for every row r.

This is APR's perturbation (He et al., SIGIR 2018: per-row L2-normalised gradient, their
default epsilon 0.5) made relative to the row's norm, so that one epsilon means the same
on MF item embeddings and on token embeddings whose norms differ by orders of magnitude.
Steps are L2 (FGM-style), not sign steps: a sign step's size is not defined by a row norm.
"""

from __future__ import annotations

import torch

TINY = 1e-12


def row_norms(t: torch.Tensor) -> torch.Tensor:
    return t.norm(dim=-1, keepdim=True)


def l2_step(grad: torch.Tensor, ref: torch.Tensor, size: float) -> torch.Tensor:
    """Per row: size * ||ref_r|| in the direction of grad_r (zero where grad_r is zero)."""
    g = row_norms(grad)
    direction = torch.where(g > TINY, grad / g.clamp_min(TINY), torch.zeros_like(grad))
    return size * row_norms(ref) * direction


def project(delta: torch.Tensor, ref: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Shrink each row of delta onto the ball ||delta_r|| <= epsilon * ||ref_r||."""
    limit = epsilon * row_norms(ref)
    norm = row_norms(delta)
    scale = torch.where(norm > limit, limit / norm.clamp_min(TINY), torch.ones_like(norm))
    return delta * scale


def max_relative_norm(delta: torch.Tensor, ref: torch.Tensor) -> float:
    """max_r ||delta_r|| / ||ref_r|| over rows with a non-zero clean vector (0 if none)."""
    ref_n = row_norms(ref)
    mask = ref_n > TINY
    if not bool(mask.any()):
        return 0.0
    return float((row_norms(delta)[mask] / ref_n[mask]).max())


def rows_changed(delta: torch.Tensor) -> int:
    return int((row_norms(delta) > TINY).sum())
