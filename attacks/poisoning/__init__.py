"""Data poisoning: fake-user injection (the fourth threat model).

An attack here is a *generator*: from the training interactions, the catalog and the
target items it returns fake users (ordinary interaction rows) within a budget. The
victim is then retrained from scratch on train + fake users (`protocol.poisoned_splits`),
and the target's exposure is measured over real users who never touched it
(`protocol.target_metrics`). Detectors (`detectors`) score users as suspicious; the
`detect-and-drop` defense removes the flagged ones before training.

Modules: `base` (the attack interface, budgets, fake-row assembly), `heuristics`
(random, average, bandwagon, segment), `pga` (projected gradient ascent on a WRMF
surrogate the attack trains itself), `detectors` (RDMA, DegSim, PCA), `protocol`
(targets, poisoned splits, metrics), `cell` (one poisoning cell end to end).
"""

FAKE_PREFIX = "__fake__"  # fake user ids start with this; real ids never do (checked)


def is_fake(user_id) -> bool:
    return str(user_id).startswith(FAKE_PREFIX)
