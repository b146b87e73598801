"""PGA (Li et al., NeurIPS 2016, "Data poisoning attacks on factorization-based
collaborative filtering"), in the form ARLib and RevAdv use: projected gradient ascent on a
continuous fake-user matrix, through a surrogate the attacker trains itself.

Black-box to the victim: the attack never queries or differentiates the victim; it only
sees the training interactions (the same knowledge as the heuristic attacks) and trains a
WRMF surrogate (weighted matrix factorisation, Hu et al. 2008: squared loss, weight 1 on
observed entries and `neg_weight` on the rest) on them.

The surrogate is trained once on the clean data. Each round: (1) the fake users' factors
are solved from the item factors (ridge regression: one ALS half-step); (2) `unroll`
gradient steps of the surrogate's loss on real + fake rows are taken with the fake matrix
as a differentiable input (the unrolled-training approximation of RevAdv / ARLib's PGA,
shortened to fit a CPU); (3) the attack loss, over real users who have not interacted
with a target, is a hinge on the gap between the target's score and the user's 10th best
score (ARLib's "CE/top-k" losses have the same shape); (4) the fake matrix moves against
the loss gradient and is projected: targets fixed at 1, the `filler` largest other entries
kept (clipped to [0, 1]), the rest set to 0. The final fillers are each row's largest entries.
Fillers are rated with their item mean where the data has ratings (the average attack's
camouflage); targets get the top rating.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.poisoning.base import PoisoningAttack, PoisoningOptionError, TrainView, random_fillers
from benchmark.options import Options, option


@dataclass
class PGAOptions(Options):
    factors: int = option(16, "factors of the attacker's WRMF surrogate")
    surrogate_steps: int = option(100, "Adam steps training the surrogate on the clean data")
    unroll: int = option(5, "unrolled surrogate training steps per round, differentiated through")
    rounds: int = option(3, "projected gradient rounds on the fake-user matrix")
    lr: float = option(0.05, "learning rate of the surrogate (training and unrolled steps)")
    step_size: float = option(2.0, "gradient step on the fake-user matrix per round")
    neg_weight: float = option(0.1, "WRMF weight of the unobserved entries")
    l2: float = option(1e-3, "L2 penalty of the surrogate's factors")
    top_k: int = option(10, "the attack loss's hinge is on the gap to each user's top_k-th best score")


class PGAAttack(PoisoningAttack):
    name = "pga"
    description = "projected gradient ascent on fake profiles through a WRMF surrogate trained by the attacker"

    OPTIONS = PGAOptions

    def fillers(self, view: TrainView, targets, n_fake, rng):
        s = self.settings
        for key in ("factors", "surrogate_steps", "unroll", "rounds", "top_k"):
            if isinstance(s[key], bool) or not isinstance(s[key], (int, np.integer)) or s[key] < 1:
                raise PoisoningOptionError(f"option {key}: must be a whole number >= 1, got {s[key]!r}")
        gen = torch.Generator().manual_seed(int(rng.integers(2 ** 31)))
        real = torch.tensor(view.matrix.toarray(), dtype=torch.float32)
        n_users, n_items = real.shape
        t_idx = torch.as_tensor(targets, dtype=torch.long)
        # Start from a random attack's profiles (a continuous relaxation of them).
        fake = torch.zeros(n_fake, n_items)
        fake.scatter_(1, torch.as_tensor(random_fillers(rng, n_items, targets, n_fake, self.filler)), 1.0)
        fake[:, t_idx] = 1.0
        w0, l2, k = float(s["neg_weight"]), float(s["l2"]), int(s["factors"])

        def loss_fn(U, V, R):
            W = w0 + (1 - w0) * R
            return ((W * (R - U @ V.T) ** 2).sum() + l2 * ((U ** 2).sum() + (V ** 2).sum())) / R.shape[0]

        U0 = (0.1 * torch.randn(n_users, k, generator=gen)).requires_grad_()
        V0 = (0.1 * torch.randn(n_items, k, generator=gen)).requires_grad_()
        opt = torch.optim.Adam([U0, V0], lr=s["lr"])
        for _ in range(int(s["surrogate_steps"])):  # the clean surrogate, trained once
            opt.zero_grad()
            loss_fn(U0, V0, real).backward()
            opt.step()
        U0, V0 = U0.detach(), V0.detach()
        ridge = torch.linalg.inv(V0.T @ V0 + l2 * torch.eye(k))
        not_seen = 1.0 - real[:, t_idx]  # real users who have not interacted with each target
        history = []
        for _ in range(int(s["rounds"])):
            X = fake.clone().requires_grad_()
            # Fake users' factors from the clean item factors (a ridge solve, as one ALS half-step),
            # then `unroll` differentiable gradient steps on everyone: V now depends on X.
            U = torch.cat([U0, X @ V0 @ ridge])
            V = V0.clone().requires_grad_()
            for _ in range(int(s["unroll"])):
                gU, gV = torch.autograd.grad(loss_fn(U, V, torch.cat([real, X])), [U, V], create_graph=True)
                U, V = U - s["lr"] * gU, V - s["lr"] * gV
            scores = U[:n_users] @ V.T
            kth = scores.detach().topk(int(s["top_k"]), dim=1).values[:, -1:]
            adv = (torch.nn.functional.softplus(kth - scores[:, t_idx]) * not_seen).sum() / not_seen.sum().clamp(min=1)
            (grad,) = torch.autograd.grad(adv, [X])
            history.append(float(adv.detach()))
            with torch.no_grad():
                grad[:, t_idx] = 0.0  # targets stay fixed: scale the step by the fillers' gradients
                fake = self._project(fake - s["step_size"] * grad / (grad.abs().amax(dim=1, keepdim=True) + 1e-12),
                                     t_idx)
        self.info = {"surrogate_attack_loss": history}
        score = fake.clone()
        score[:, t_idx] = -np.inf
        fill = score.topk(self.filler, dim=1).indices.numpy()
        ratings = view.item_mean[fill] if view.has_ratings else None
        return fill, ratings

    def _project(self, X: torch.Tensor, t_idx: torch.Tensor) -> torch.Tensor:
        X = X.clamp(0.0, 1.0)
        masked = X.clone()
        masked[:, t_idx] = -1.0
        keep = masked.topk(self.filler, dim=1).indices
        out = torch.zeros_like(X)
        out.scatter_(1, keep, X.gather(1, keep).clamp(min=1e-3))  # kept fillers stay present
        out[:, t_idx] = 1.0
        return out
