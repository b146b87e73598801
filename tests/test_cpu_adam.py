"""recommenders.classic._cpu_adam.CpuAdam against torch.optim.Adam: the same update."""

from __future__ import annotations

import copy

import pytest
import torch

from recommenders.classic._cpu_adam import CpuAdam

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _params(seed: int) -> list[torch.nn.Parameter]:
    g = torch.Generator().manual_seed(seed)
    return [torch.nn.Parameter(torch.randn(shape, generator=g)) for shape in ((37, 8), (37,), (3, 8))]


def test_cpu_adam_takes_torch_adams_steps():
    ours, ref = _params(0), _params(0)
    options = {"lr": 0.05, "betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 1e-3}
    opt, ref_opt = CpuAdam(ours, **options), torch.optim.Adam(ref, **options)
    g = torch.Generator().manual_seed(1)
    for step in range(25):
        grads = [torch.randn(p.shape, generator=g) for p in ours]
        if step % 4 == 1:  # a parameter without a gradient this step: not updated, its own step count
            grads[2] = None
        for params in (ours, ref):
            for p, grad in zip(params, grads):
                p.grad = None if grad is None else grad.clone()
        opt.step()
        ref_opt.step()
        opt.zero_grad(set_to_none=True)
    for p, q in zip(ours, ref):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=1e-5, atol=1e-6)
    assert opt.state[ours[0]]["step"] == 25 and opt.state[ours[2]]["step"] == 19
    for key in ("exp_avg", "exp_avg_sq"):
        torch.testing.assert_close(opt.state[ours[0]][key], ref_opt.state[ref[0]][key], rtol=1e-5, atol=1e-7)


def test_cpu_adam_refuses_what_it_cannot_update_in_place():
    p = torch.nn.Parameter(torch.zeros(4, 3).t())  # a transposed (non-contiguous) view
    p.grad = torch.ones(3, 4)
    with pytest.raises(ValueError, match="contiguous float32 CPU tensor"):
        CpuAdam([p]).step()
    q = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    q.grad = torch.ones(3, dtype=torch.float64)
    with pytest.raises(ValueError, match="float32"):
        CpuAdam([q]).step()
    with pytest.raises(ValueError, match="invalid lr"):
        CpuAdam([q], lr=-1.0)


def test_cpu_adam_state_dict_round_trip_continues_the_same_steps():
    a, b = _params(3), _params(3)
    opt_a = CpuAdam(a, lr=0.02, weight_decay=1e-4)
    g = torch.Generator().manual_seed(4)
    grads = [[torch.randn(p.shape, generator=g) for p in a] for _ in range(6)]

    def step(opt, params, grad):
        for p, gr in zip(params, grad):
            p.grad = gr.clone()
        opt.step()

    for grad in grads[:3]:
        step(opt_a, a, grad)
    opt_b = CpuAdam(b, lr=0.02, weight_decay=1e-4)
    step(opt_b, b, grads[0])  # opt_b has moments (and cached views of them) of its own
    with torch.no_grad():
        for p, q in zip(b, a):
            p.copy_(q)
    opt_b.load_state_dict(copy.deepcopy(opt_a.state_dict()))  # as from a checkpoint file
    for grad in grads[3:]:
        step(opt_a, a, grad)
        step(opt_b, b, grad)
    for p, q in zip(a, b):
        torch.testing.assert_close(p.detach(), q.detach(), rtol=0, atol=0)


def test_cpu_adam_reads_gradients_changed_in_place_and_non_contiguous_ones():
    ours, ref = _params(5)[:1], _params(5)[:1]
    opt, ref_opt = CpuAdam(ours, lr=0.05), torch.optim.Adam(ref, lr=0.05)
    g = torch.Generator().manual_seed(6)
    kept = torch.zeros(8, 37).t()  # one non-contiguous gradient tensor, refilled in place each step
    for _ in range(4):
        grad = torch.randn(37, 8, generator=g)
        kept.copy_(grad)
        ours[0].grad = kept
        ref[0].grad = grad.clone()
        opt.step()
        ref_opt.step()
    torch.testing.assert_close(ours[0].detach(), ref[0].detach(), rtol=1e-5, atol=1e-5)
