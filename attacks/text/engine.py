"""Many TextAttack searches at once, with their model queries merged into full batches.

TextAttack's searches are plain sequential code that asks the model for small batches
(a handful of candidate texts per word in a greedy search). The forward passes are the
cost (DESIGN, "Performance facts"), and small batches waste them. So the engine runs up
to `window` examples concurrently, one thread per example, but strictly one at a time:
a thread runs until it needs model scores that are not cached, hands its request to the
scheduler and waits. When every example in flight is waiting, the scheduler scores the
union of their requests in one call (deduplicated; the model sorts it by length and
batches it with dynamic padding) and resumes them in a fixed order.

Because only one thread ever runs, the examples do not race; and because each example's
random state (Python's `random`, NumPy's global generator, torch's CPU generator) is
swapped in when it resumes and saved when it yields, each example sees exactly the random
stream it would see if it ran alone after `set_seed(seed)`. Results are therefore
identical to attacking the examples one by one (stock `textattack.Attacker` with that
seed), whatever the window size or the order in which examples interleave.
"""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

_local = threading.local()


def current_scheduler() -> "Scheduler | None":
    """The scheduler the calling thread runs under (None outside the engine)."""
    return getattr(_local, "scheduler", None)


def set_seed(seed: int) -> None:
    """What textattack.shared.utils.set_seed does (without CUDA: it has its own streams)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _rng_state():
    return random.getstate(), np.random.get_state(), torch.get_rng_state()


def _set_rng_state(state) -> None:
    py, nps, ts = state
    random.setstate(py)
    np.random.set_state(nps)
    torch.set_rng_state(ts)


@dataclass
class _Worker:
    index: int
    job: Callable[[], Any]
    seed: int
    go: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    thread: threading.Thread | None = None
    rng: Any = None
    request: tuple | None = None  # (scorer, pairs) while waiting for scores
    reply: Any = None
    done: bool = False
    result: Any = None
    error: BaseException | None = None
    seconds: float = 0.0  # its own running time plus its share of the merged forward passes


class Scheduler:
    """Runs jobs (callables) cooperatively; see the module docstring."""

    def __init__(self, window: int = 16):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._back = threading.Semaphore(0)
        self._current: _Worker | None = None
        self.flushes = 0
        self.requests = 0
        self._workers: list[_Worker] = []

    # -- called from worker threads ------------------------------------------------
    def request(self, scorer, pairs: Sequence) -> np.ndarray:
        """Block this example until the scheduler has scored `pairs` with `scorer.forward`."""
        worker = self._current
        if worker is None or threading.current_thread() is not worker.thread:
            raise RuntimeError("Scheduler.request called outside a running engine job")
        worker.request = (scorer, list(pairs))
        self._back.release()
        worker.go.acquire()
        reply, worker.reply = worker.reply, None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def _thread_main(self, worker: _Worker) -> None:
        worker.go.acquire()
        _local.scheduler = self
        try:
            worker.result = worker.job()
        except BaseException as err:  # recorded for the caller; the other examples go on
            worker.error = err
        finally:
            worker.done = True
            _local.scheduler = None
            self._back.release()

    # -- the scheduler loop (caller's thread) ------------------------------------------
    def _resume(self, worker: _Worker) -> None:
        outer = _rng_state()
        _set_rng_state(worker.rng)
        self._current = worker
        started = time.perf_counter()
        worker.go.release()
        self._back.acquire()
        worker.seconds += time.perf_counter() - started
        self._current = None
        worker.rng = _rng_state()
        _set_rng_state(outer)

    def _start(self, worker: _Worker) -> None:
        outer = _rng_state()
        set_seed(worker.seed)
        worker.rng = _rng_state()
        _set_rng_state(outer)
        worker.thread = threading.Thread(target=self._thread_main, args=(worker,), daemon=True,
                                         name=f"attack-example-{worker.index}")
        worker.thread.start()

    def _flush(self, waiting: list[_Worker]) -> None:
        """Score the union of the waiting examples' requests, one call per scorer."""
        by_scorer: dict[int, tuple[Any, dict]] = {}
        for w in waiting:
            scorer, pairs = w.request
            union = by_scorer.setdefault(id(scorer), (scorer, {}))[1]
            for p in pairs:
                union.setdefault(p, None)
        for scorer, union in by_scorer.values():
            keys = list(union)
            started = time.perf_counter()
            try:
                values = scorer.forward(keys)
                for k, v in zip(keys, values):
                    union[k] = v
            except Exception as err:  # every example that asked gets the error
                for w in waiting:
                    if w.request[0] is scorer:
                        w.reply = err
            # Each waiting example is charged for the pairs it asked for.
            elapsed = time.perf_counter() - started
            asked = [(w, len(w.request[1])) for w in waiting if w.request[0] is scorer]
            total = sum(n for _, n in asked) or 1
            for w, n in asked:
                w.seconds += elapsed * n / total
        for w in waiting:
            scorer, pairs = w.request
            if w.reply is None:
                union = by_scorer[id(scorer)][1]
                w.reply = np.array([union[p] for p in pairs], dtype=np.float64)
            w.request = None
        self.flushes += 1
        self.requests += len(waiting)

    def seconds_of(self, index: int) -> float:
        """Seconds attributed to job `index` of the last run."""
        return self._workers[index].seconds

    def run(self, jobs: Sequence[Callable[[], Any]], seeds: Sequence[int],
            on_done: Callable[[int, Any, BaseException | None], None] | None = None) -> list:
        """Run every job; returns their results in order (an exception object where a job raised).
        `on_done(index, result, error)` is called as each job finishes (progress bars)."""
        if len(jobs) != len(seeds):
            raise ValueError("one seed per job")
        pending = [_Worker(i, job, int(seed)) for i, (job, seed) in enumerate(zip(jobs, seeds))]
        self._workers = list(pending)
        pending.reverse()
        active: list[_Worker] = []
        results: list[Any] = [None] * len(jobs)
        while pending or active:
            while pending and len(active) < self.window:
                worker = pending.pop()
                self._start(worker)
                active.append(worker)
            for worker in active:
                if worker.request is None and not worker.done:
                    self._resume(worker)
            still = []
            for worker in active:
                if worker.done:
                    worker.thread.join()
                    results[worker.index] = worker.error if worker.error is not None else worker.result
                    if on_done is not None:
                        on_done(worker.index, worker.result, worker.error)
                else:
                    still.append(worker)
            active = still
            waiting = [w for w in active if w.request is not None]
            if waiting and not (pending and len(active) < self.window):
                self._flush(waiting)
        return results
