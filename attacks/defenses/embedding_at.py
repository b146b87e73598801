"""embedding-at: adversarial training in embedding space, against the embedding-fgsm /
embedding-pgd threat model (attacks.embedding), with the same budget: per row (one item's
embedding, one token's input embedding), ||delta_r||_2 <= epsilon * ||e_r||_2.

Torch classic models (bpr-mf, sasrec) — APR (He et al., SIGIR 2018, "Adversarial
Personalized Ranking"):

    L = L(Theta) + lambda * L(Theta + Delta_adv),   Delta_adv = epsilon * g / ||g||,  g = dL/dTheta_emb

on the embedding tables the model exposes (``embedding_tables()``: BPR-MF's candidate-side
item table Q and the history table P the user vector is pooled from — the fold-in
counterpart of APR's user embeddings; SASRec's shared item table). The fast gradient is
normalised per row; with norm="relative" (default) its size is epsilon * ||e_r|| (the
attack's budget), with norm="absolute" it is epsilon (APR's own formulation). Delta is a
constant in the second term (no gradient flows through it), as in APR. As in the APR
paper, the model is first trained plainly (BPR), then trained further under the
adversarial objective for `epochs` (default: the model's own epochs). select="last"
(default) keeps the last epoch, as APR trains for a fixed number of epochs; "best" keeps
the adversarial epoch with the best CLEAN validation metric (with early stopping after
`patience` epochs) — which favours the least adversarially trained epochs. Defaults
epsilon=0.5, lambda (adv_weight)=1, as in the paper.

Text models (cross-encoder, two-tower) — PGD / FreeLB-style training on the input token
embeddings (the word embeddings, before position embeddings and LayerNorm, as the attack
perturbs them; padding is never perturbed). Per training step: the clean loss and its
gradient w.r.t. the token embeddings; `steps` L2 ascent steps of size `alpha` (default
epsilon for one step, else 2.5 * epsilon / steps as in the attack), each projected on the
budget; then

    pgd:    loss = clean_weight * L(x) + adv_weight * L(x + delta_K)
    freelb: loss = clean_weight * L(x) + adv_weight * mean_t L(x + delta_t)   (t = 1..K)

(FreeLB averages the parameter gradient over the ascent trajectory.) The model's own
training loop (epochs, warmup, early stopping) runs with this loss: from the pretrained
backbone when fit=true, or on the model's training units from its current weights when
fit=false.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from attacks.defenses.base import Defense
from benchmark.options import Options, option
from attacks.defenses import fitting
from attacks.embedding import perturb

DEFAULT_EPSILON = 0.5  # = attacks.embedding.attacks.DEFAULT_EPSILON (APR's default)
NORMS = ("relative", "absolute")
METHODS = ("pgd", "freelb")


@dataclass
class EmbeddingATOptions(Options):
    epsilon: float = option(DEFAULT_EPSILON, "perturbation budget per embedding row (relative to its norm, see norm)")
    adv_weight: float = option(1.0, "weight of the adversarial loss (APR's lambda)")
    clean_weight: float = option(1.0, "weight of the clean loss")
    norm: str = option("relative", "APR: 'relative' (epsilon * ||e_r||, the attack's budget) or 'absolute' (epsilon)")
    tables: list | None = option(None, "APR: which embedding tables to perturb (default: all the model exposes)")
    epochs: int | None = option(None, "adversarial epochs (default: the model's own epochs)")
    patience: int | None = option(None, "APR with select='best': epochs without a better clean validation metric "
                                        "before stopping (default: the model's own)")
    select: str = option("last", "APR: keep the 'last' adversarial epoch, or the 'best' on clean validation")
    steps: int = option(1, "text models: L2 ascent steps per training step")
    alpha: float | None = option(None, "text models: ascent step size (default epsilon for one step, else "
                                       "2.5 * epsilon / steps)")
    method: str = option("pgd", "text models: 'pgd' (last iterate) or 'freelb' (mean over the ascent trajectory)")
    fit: bool = option(True, "train from scratch first; false: train the fitted model further")


def apr_perturbation(grad, ref, epsilon: float, norm: str = "relative"):
    """APR's fast-gradient perturbation, per row r: epsilon * ||ref_r|| * g_r / ||g_r||
    (relative) or epsilon * g_r / ||g_r|| (absolute); zero where g_r is zero."""
    import torch

    if norm == "relative":
        return perturb.l2_step(grad, ref, epsilon)
    if norm == "absolute":
        g = perturb.row_norms(grad)
        return torch.where(g > perturb.TINY, epsilon * grad / g.clamp_min(perturb.TINY), torch.zeros_like(grad))
    raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")


class _NormStats:
    """Running min / max of ||delta_r|| / ||e_r|| over the perturbed rows (what the defense really used)."""

    def __init__(self):
        self.lo, self.hi, self.rows, self.batches = float("inf"), 0.0, 0, 0

    def add(self, delta, ref) -> None:
        d, r = perturb.row_norms(delta).squeeze(-1), perturb.row_norms(ref).squeeze(-1)
        mask = (d > perturb.TINY) & (r > perturb.TINY)
        self.batches += 1
        if bool(mask.any()):
            ratio = (d[mask] / r[mask]).detach()
            self.lo = min(self.lo, float(ratio.min()))
            self.hi = max(self.hi, float(ratio.max()))
            self.rows += int(mask.sum())

    def to_dict(self) -> dict:
        return {"batches": self.batches, "rows_perturbed": self.rows,
                "min_relative_norm": None if self.rows == 0 else round(self.lo, 6),
                "max_relative_norm": None if self.rows == 0 else round(self.hi, 6)}


class EmbeddingAT(Defense):
    name = "embedding-at"
    description = "adversarial training in embedding space: APR on item embeddings (bpr-mf, sasrec), PGD/FreeLB on input token embeddings (text models)"

    OPTIONS = EmbeddingATOptions

    def __init__(self, **options):
        super().__init__(**options)
        s = self.settings
        eps = float(s.epsilon)
        if eps <= 0:
            raise ValueError(f"embedding-at: epsilon must be > 0, got {eps}")
        if s.norm not in NORMS:
            raise ValueError(f"embedding-at: norm must be one of {NORMS}, got {s.norm!r}")
        if s.method not in METHODS:
            raise ValueError(f"embedding-at: method must be one of {METHODS}, got {s.method!r}")
        if s.select not in ("best", "last"):
            raise ValueError(f"embedding-at: select must be 'best' or 'last', got {s.select!r}")
        if int(s.steps) < 1:
            raise ValueError(f"embedding-at: steps must be >= 1, got {s.steps}")
        self.epsilon = eps
        self.adv_weight = float(s.adv_weight)
        self.clean_weight = float(s.clean_weight)

    def unsupported_reason(self, model) -> str | None:
        kind = fitting.model_kind(model)
        name = getattr(model, "name", type(model).__name__)
        if kind == "refit":
            if not getattr(getattr(model, "capabilities", None), "differentiable", False):
                return f"{name!r} is not differentiable: it has no trainable embeddings to perturb (count-based model)"
            return (f"{name!r} is differentiable but implements neither recommenders.base.Trainable (loss(batch, "
                    "tables), embedding_tables, train_further) nor a text model's training_objective: the "
                    "defense cannot change its loss")
        if kind == "text" and not callable(getattr(model, "training_objective", None)):
            return f"{name!r} has no training_objective(factory) to train adversarially"
        return None

    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        reason = self.unsupported_reason(model)
        if reason:
            raise ValueError(f"embedding-at does not apply: {reason}")
        if fitting.model_kind(model) == "text":
            return self._train_text(model, train, valid, seed)
        return self._train_apr(model, train, valid, seed)

    # -- APR (torch classic models) ------------------------------------------------------
    def apr_loss(self, model, stats: _NormStats | None = None):
        """loss(batch) = L + adv_weight * L(tables + Delta_adv), for model.train_further."""
        import torch

        norm = self.settings.norm
        wanted: Sequence[str] | None = self.settings.tables

        def loss(batch):
            params = model.embedding_tables()
            keys = list(wanted) if wanted else list(params)
            missing = [k for k in keys if k not in params]
            if missing:
                raise ValueError(f"embedding-at: tables {missing} not in the model's {sorted(params)}")
            clean = model.loss(batch)
            grads = torch.autograd.grad(clean, [params[k] for k in keys], retain_graph=True, allow_unused=True)
            tables = {}
            for k, g in zip(keys, grads):
                if g is None:
                    continue
                ref = params[k].detach()
                delta = apr_perturbation(g.detach(), ref, self.epsilon, norm)
                if stats is not None:
                    stats.add(delta, ref)
                tables[k] = params[k] + delta  # Delta is a constant: gradients flow to the parameters only
            if not tables:
                return clean
            return self.clean_weight * clean + self.adv_weight * model.loss(batch, tables=tables)

        return loss

    def _train_apr(self, model, train, valid, seed) -> dict:
        started = time.perf_counter()
        info: dict = {"defense": self.name, "method": "apr", "epsilon": self.epsilon, "adv_weight": self.adv_weight,
                      "norm": self.settings.norm}
        if self.settings.fit:
            model.fit(train, valid, seed=seed)
            log = getattr(model, "training_log", {}) or {}
            info["pretrain"] = {k: log.get(k) for k in ("epochs_run", "best_epoch", "valid_metric", "best_valid")}
        elif getattr(model, "task", None) != train.task or getattr(model, "net", None) is None:
            raise ValueError(f"embedding-at: fit=false needs a model fitted for the {train.task!r} task")
        info["pretrain_seconds"] = round(time.perf_counter() - started, 3)
        opts = getattr(model, "options", {}) or {}
        epochs = int(self.settings.epochs or opts.get("epochs") or 10)
        patience = int(opts.get("patience") or 0) if self.settings.patience is None else int(self.settings.patience)
        stats = _NormStats()
        log = model.train_further(train, valid, epochs=epochs, seed=seed + 1, loss=self.apr_loss(model, stats),
                                  patience=patience, progress=opts.get("progress"),
                                  select=self.settings.select)
        info["adversarial_seconds"] = log.pop("seconds")
        info["adversarial"] = log
        info["perturbation"] = stats.to_dict()
        return info

    # -- PGD / FreeLB on input token embeddings (text models) ------------------------------------
    def text_loss(self, model, stats: _NormStats | None = None, original=None):
        """(loss(prepared, idx), hook): the adversarial objective built on the model's own
        batch loss `original` (see the module docstring), and the embedding hook it uses."""
        import torch

        steps = int(self.settings.steps)
        alpha = float(self.settings.alpha or (self.epsilon if steps == 1 else 2.5 * self.epsilon / steps))
        method = self.settings.method
        original = original or model.batch_loss
        # The word-embedding table (cross-encoder: the classifier's; two-tower: the shared
        # encoder's), the same tensor embedding_forward exposes to the attacks.
        hook = _TokenPerturbation(model.model.get_input_embeddings(), model.tokenizer.pad_token_id)

        def ascend(deltas, grads):
            out = []
            for d, g, ref, mask in zip(deltas, grads, hook.refs, hook.masks):
                if g is None:
                    out.append(d)
                    continue
                out.append(perturb.project(d + perturb.l2_step(g.detach() * mask, ref, alpha), ref, self.epsilon) * mask)
            return out

        def loss(prepared, idx):
            hook.begin_record()
            clean = original(prepared, idx)
            leaves = hook.deltas
            grads = torch.autograd.grad(clean, leaves, retain_graph=True, allow_unused=True)
            deltas = ascend([torch.zeros_like(d) for d in leaves], grads)
            adv_losses = []
            for step in range(1, steps + 1):
                last = step == steps
                if method == "freelb":
                    leaves = [d.detach().requires_grad_(not last) for d in deltas]
                    hook.begin_apply(leaves)
                    value = original(prepared, idx)
                    adv_losses.append(value)
                    if not last:
                        grads = torch.autograd.grad(value, leaves, retain_graph=True, allow_unused=True)
                        deltas = ascend(deltas, grads)
                elif not last:
                    leaves = [d.detach().requires_grad_(True) for d in deltas]
                    hook.begin_apply(leaves)
                    grads = torch.autograd.grad(original(prepared, idx), leaves, allow_unused=True)
                    deltas = ascend(deltas, grads)
                else:
                    hook.begin_apply([d.detach() for d in deltas])
                    adv_losses.append(original(prepared, idx))
            hook.end()
            if stats is not None:
                for d, ref in zip(deltas, hook.refs):
                    stats.add(d, ref)
            adv = torch.stack(adv_losses).mean()
            return self.clean_weight * clean + self.adv_weight * adv

        return loss, hook

    def _train_text(self, model, train, valid, seed) -> dict:
        started = time.perf_counter()
        stats = _NormStats()
        info = {"defense": self.name, "method": self.settings.method, "epsilon": self.epsilon,
                "steps": int(self.settings.steps), "adv_weight": self.adv_weight,
                "clean_weight": self.clean_weight}
        fit = self.settings.fit
        if fit:
            # The objective is built when training starts, once fit has built the backbone.
            with model.training_objective(self._text_objective(model, stats)):
                model.fit(train, valid, seed=seed)
        else:
            if getattr(model, "task", None) != train.task or getattr(model, "model", None) is None:
                raise ValueError(f"embedding-at: fit=false needs a model fitted for the {train.task!r} task")
            from attacks.defenses import training_data as td

            examples = td.model_training_examples(model, train, seed)
            if train.task == "ranking":
                examples = td.with_negatives(examples, train, int(model.opts.get("negatives", 4)), seed)
            p, c, y = model.training_units(examples, seed)
            epochs = int(self.settings.epochs or model.opts.get("epochs") or 1)
            with model.training_objective(self._text_objective(model, stats)):
                info["fine_tune"] = fitting.fine_tune_text(model, p, c, y, epochs, seed)
            info["fine_tune_seconds"] = info["fine_tune"].pop("seconds", None)
        info["history"] = list(getattr(model, "history", []))
        info["perturbation"] = stats.to_dict()
        info["train_seconds"] = round(time.perf_counter() - started, 3)
        return info

    def _text_objective(self, model, stats):
        """The factory TextRecommender.training_objective calls when a training run starts."""

        def make(model_loss):
            loss, hook = self.text_loss(model, stats, model_loss)
            return loss, hook.remove

        return make


class _TokenPerturbation:
    """A forward hook on the word-embedding module that adds one delta per call made during
    a loss evaluation (a two-tower model embeds profiles and items in separate calls).

    record: every call gets a zero delta leaf (to read the gradient of the clean loss) and
    its clean output and non-padding mask are kept; apply: the given deltas are added."""

    def __init__(self, module, pad_id: int | None):
        self.pad_id = pad_id
        self.mode = None
        self.deltas: list = []
        self.refs: list = []
        self.masks: list = []
        self.call = 0
        self.handle = module.register_forward_hook(self._hook)

    def begin_record(self) -> None:
        self.mode, self.call = "record", 0
        self.deltas, self.refs, self.masks = [], [], []

    def begin_apply(self, deltas: list) -> None:
        self.mode, self.call = "apply", 0
        self.deltas = list(deltas)

    def end(self) -> None:
        self.mode = None

    def remove(self) -> None:
        self.end()
        self.handle.remove()

    def _hook(self, module, inputs, output):
        import torch

        if self.mode is None:
            return None
        k = self.call
        self.call += 1
        if self.mode == "record":
            ids = inputs[0]
            keep = torch.ones_like(ids, dtype=torch.bool) if self.pad_id is None else ids != self.pad_id
            mask = keep.unsqueeze(-1).to(output.dtype)
            delta = torch.zeros_like(output, requires_grad=True)
            self.deltas.append(delta)
            self.refs.append(output.detach())
            self.masks.append(mask)
            return output + delta
        if k >= len(self.deltas) or self.deltas[k].shape != output.shape:
            raise RuntimeError("embedding-at: the model embedded different inputs between the clean and the adversarial pass")
        return output + self.deltas[k] * self.masks[k]
