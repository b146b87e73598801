"""Processed examples cached as Arrow under RECROBUST_HOME, so a second run maps them from disk.

Two levels, both under `<RECROBUST_HOME>/examples/`:
- `sources/<key>.json`: what a source was when it was last read -> its dataset fingerprint
  (`benchmark.data.load.dataset_fingerprint`, the content hash). A local path's key is its
  files' names, sizes and modification times (what `datasets` uses for local data files);
  a named dataset's key is its fetch manifest's checksum. A changed file is a new key.
- `<key>/`: one task split, `data.arrow` (an Arrow stream `datasets` memory-maps) and
  `meta.json`. Keyed by the dataset fingerprint, the rendering template, the task options
  (task, split, seed, history length, negatives, subset size) and the cache schema.

A hit reads neither the dataset nor the examples into memory; a miss loads the dataset
once for every split asked for, streams each split's rendered examples into Arrow in
batches, and renames the finished folder into place (a killed run leaves no half entry).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import datasets

from benchmark.data.hf import example_features, write_arrow_file
from benchmark.rendering import DEFAULT_TEMPLATE, Renderer, get_template
from benchmark.tasks import DEFAULT_HISTORY, DEFAULT_NEGATIVES, TASKS, iter_examples, subset_indices

CACHE_SCHEMA = 1  # bump when the rows change for the same inputs (schema, rendering, sampling)
MIN_HISTORY = 3  # leave_last_out's default, the split every task uses


def examples_home() -> Path:
    from benchmark.data.sources import cache_home

    return cache_home() / "examples"


def _digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def source_key(name_or_path: str | Path, format: str | None = None, meta: str | Path | None = None) -> str:
    """A cheap identity of what `load_dataset(name_or_path, format, meta)` would read."""
    from benchmark import __version__
    from benchmark.data import sources

    path = Path(str(name_or_path)).expanduser()
    if path.exists():
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        if meta is not None:
            files.append(Path(meta).expanduser())
        stamp = [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]
        what = {"path": str(path.resolve()), "files": stamp}
    elif sources.source(str(name_or_path)).format == "amazon2023" and sources.read_manifest(
            sources.dataset_dir(str(name_or_path))) is None:
        from benchmark.data import hub

        category = sources.source(str(name_or_path)).name.partition(":")[2]
        found = hub.local_files(hub.check_category(category))
        files = [p for p in (found or ()) if p is not None]
        # Hub data is identified by repository and config (datasets' own cache tracks its revisions).
        what = {"hub": hub.HUB_REPO, "configs": [hub.review_config(category), hub.meta_config(category)],
                "local": [[str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns] for p in files]}
    else:
        folder, detected = sources.resolve(str(name_or_path))
        manifest = sources.read_manifest(folder) or {}
        what = {"name": sources.source(str(name_or_path)).name, "checksum": manifest.get("checksum"), "format": detected}
    return _digest({**what, "format": format, "reader": __version__})


def examples_key(fingerprint: str, task: str, split: str, template: str, seed: int, history_len: int,
                 num_negatives: int, max_examples: int | None) -> str:
    options = dict(task=task, split=split, template=template, seed=seed, history_len=history_len,
                   num_negatives=num_negatives if task == "ranking" else None, max_examples=max_examples,
                   min_history=MIN_HISTORY, schema=CACHE_SCHEMA)
    return _digest({"fingerprint": fingerprint, **options})


def _open(folder: Path, task: str) -> datasets.Dataset:
    return datasets.Dataset.from_file(str(folder / "data.arrow"),
                                      info=datasets.DatasetInfo(features=example_features(task)))


def _write_json_atomic(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def cached_task_examples(
    name_or_path: str | Path,
    task: str,
    splits: tuple[str, ...] = ("train", "valid", "test"),
    *,
    template: str = DEFAULT_TEMPLATE,
    seed: int = 0,
    history_len: int = DEFAULT_HISTORY,
    num_negatives: int = DEFAULT_NEGATIVES,
    max_examples: int | dict[str, int | None] | None = None,
    format: str | None = None,
    meta: str | Path | None = None,
    refresh: bool = False,
    timings: dict | None = None,
) -> dict[str, datasets.Dataset]:
    """Examples of `task` for each split as memory-mapped `datasets.Dataset`s, from the cache when
    the same source, template and options were processed before. Rows are those of
    `benchmark.data.hf.to_hf_dataset` for `build_task(...)` with the same arguments.

    max_examples: a seeded subset size for every split, or a dict split -> size.
    refresh: recompute even when cached.
    timings: a dict to fill with the seconds each stage took ("load", "fingerprint", "split",
        "examples:<split>"), "interactions" read, and "hit" (all from the cache), for benchmarks.
    """
    clock = time.perf_counter
    timings = {} if timings is None else timings
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    get_template(template)  # an unknown template fails before any work
    limits = max_examples if isinstance(max_examples, dict) else dict.fromkeys(splits, max_examples)
    home = examples_home()
    skey = source_key(name_or_path, format, meta)
    index = home / "sources" / f"{skey}.json"
    fingerprint = None
    if not refresh and index.is_file():
        try:
            fingerprint = json.loads(index.read_text(encoding="utf-8"))["fingerprint"]
        except (OSError, ValueError, KeyError, TypeError):
            fingerprint = None

    def folder_of(fp: str, split: str) -> Path:
        key = examples_key(fp, task, split, template, seed, history_len, num_negatives, limits.get(split))
        return home / key[:40]

    out: dict[str, datasets.Dataset] = {}
    if fingerprint is not None:
        for split in splits:
            folder = folder_of(fingerprint, split)
            if (folder / "meta.json").is_file():
                out[split] = _open(folder, task)
        if len(out) == len(splits):
            timings["hit"] = True
            return out

    from benchmark.data.load import dataset_fingerprint, load_dataset
    from benchmark.profiles import split_dataset

    started = clock()
    dataset = load_dataset(name_or_path, format=format, meta=meta, text=False)  # no template renders review text
    timings["load"] = clock() - started
    timings["interactions"] = dataset.n_interactions
    started = clock()
    fingerprint = dataset_fingerprint(dataset)
    timings["fingerprint"] = clock() - started
    _write_json_atomic(index, {"fingerprint": fingerprint, "source": str(name_or_path), "dataset": dataset.name,
                               "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    timeline = None
    renderer = None
    for split in splits:
        folder = folder_of(fingerprint, split)
        if not refresh and (folder / "meta.json").is_file():
            out[split] = _open(folder, task)
            continue
        if timeline is None:
            started = clock()
            timeline = split_dataset(dataset, min_history=MIN_HISTORY)
            timings["split"] = clock() - started
            # The timeline holds every interaction; the loaded copy is not needed any more.
            dataset = dataclasses.replace(dataset, interactions=dataset.interactions.iloc[:0])
            if task == "preference" and timeline["rating"].isna().all():
                raise ValueError(f"dataset {dataset.name!r} has no ratings (implicit feedback): "
                                 "the preference task needs them")
            renderer = Renderer(dataset.items, template=template)
        started = clock()
        keep = subset_indices(timeline, task, split, seed, limits.get(split))
        examples = iter_examples(timeline, task, split, seed=seed, history_len=history_len,
                                 num_negatives=num_negatives, keep=keep)
        home.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.", dir=home))
        try:
            n = write_arrow_file(examples, renderer, work / "data.arrow", task)
            _write_json_atomic(work / "meta.json", {
                "dataset": dataset.name, "source": str(name_or_path), "fingerprint": fingerprint, "task": task,
                "split": split, "template": template, "seed": seed, "history_len": history_len,
                "num_negatives": num_negatives, "max_examples": limits.get(split), "rows": n,
                "schema": CACHE_SCHEMA})
            if folder.exists():
                shutil.rmtree(folder)
            try:
                os.rename(work, folder)
            except OSError:
                if not (folder / "meta.json").is_file():  # a concurrent run that won the race is kept
                    raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        out[split] = _open(folder, task)
        timings[f"examples:{split}"] = clock() - started
    timings["hit"] = False
    return out


def cached_examples(name_or_path: str | Path, task: str, split: str, **kwargs) -> datasets.Dataset:
    """One split of `cached_task_examples`."""
    return cached_task_examples(name_or_path, task, (split,), **kwargs)[split]
