"""detect-and-drop: run a fake-user detector on the training interactions, remove the
flagged users' training rows, then train as usual.

The detector is unsupervised (`attacks.poisoning.detectors`: rdma, degsim, pca) and flags
the top `flag_fraction` of users (default 5%: a platform does not know the attack's
budget). On clean data it drops real users, which is the defense's cost, visible in the
clean metric. The flagged users stay in valid/test: they are still scored as users; only
their training rows go. Training info reports how many users were dropped and, where
injected users are present (ids starting with FAKE_PREFIX), how many of them.
"""

from __future__ import annotations

from dataclasses import dataclass

from attacks.defenses.base import Defense
from attacks.poisoning import is_fake
from attacks.poisoning.detectors import create_detector
from benchmark.options import Options, option
from benchmark.tasks import TaskData


@dataclass
class DetectAndDropOptions(Options):
    detector: str = option("pca", "the fake-user detector (attacks.poisoning.detectors: rdma, degsim, pca)")
    flag_fraction: float = option(0.05, "share of the users flagged and dropped, in (0, 1)")


class DetectAndDrop(Defense):
    name = "detect-and-drop"
    description = "drop the users a fake-user detector flags, then plain training"

    OPTIONS = DetectAndDropOptions

    def __init__(self, **options):
        super().__init__(**options)
        self.options = self.settings.to_dict()  # both options, given or not
        flag_fraction = self.settings.flag_fraction
        if isinstance(flag_fraction, bool) or not isinstance(flag_fraction, (int, float)) or not 0 < flag_fraction < 1:
            raise ValueError(f"defense detect-and-drop: option flag_fraction must be in (0, 1), got {flag_fraction!r}")
        self.detector = create_detector(self.settings.detector)
        self.flag_fraction = float(flag_fraction)

    def train(self, model, train, valid=None, seed: int = 0) -> dict:
        flagged = self.detector.flag(train.train_interactions, self.flag_fraction)
        tl = train.timeline
        drop = tl["user_id"].astype(str).isin(flagged) & (tl["split"] == "train")
        kept = TaskData(train.dataset, train.task, train.split,
                        [e for e in train.examples if e.profile.user_id not in flagged],
                        tl[~drop].reset_index(drop=True), seed=train.seed, history_len=train.history_len)
        model.fit(kept, valid, seed=seed)
        return {"dropped_users": len(flagged), "dropped_fake_users": sum(map(is_fake, flagged)),
                "dropped_rows": int(drop.sum()), "detector": self.detector.name}
