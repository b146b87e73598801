"""Examples as Hugging Face datasets: one Arrow schema, written in batches.

A row is exactly `benchmark.tasks.example_record` (the JSON-lines record): ids, history,
candidates, label, template, rendered text and span map, plus profile_text and
candidate_texts for the ranking task. So the same examples give the same rows whether
they are written as JSON lines, Parquet or a `save_to_disk` folder.

    ds = to_hf_dataset(task_data)                    # datasets.Dataset, in memory
    write_examples(task_data.examples, renderer, "out.parquet", task="preference", format="parquet")

Large splits are written record batch by record batch (`write_arrow_file`), so memory
does not grow with the number of examples; `datasets.Dataset.from_file` then maps the
file instead of reading it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Iterator

import datasets
import pyarrow as pa

from benchmark.rendering import DEFAULT_TEMPLATE, Renderer
from benchmark.tasks import (
    DEFAULT_HISTORY,
    DEFAULT_NEGATIVES,
    TASKS,
    Example,
    TaskData,
    example_record,
    write_examples_jsonl,
)

FORMATS = ("jsonl", "parquet", "hf")
BATCH_ROWS = 2048

_SPAN = {"start": datasets.Value("int64"), "end": datasets.Value("int64")}


def example_features(task: str) -> datasets.Features:
    """The Arrow schema of a task's example rows (see `benchmark.tasks.example_record`)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    features = {
        "example_id": datasets.Value("string"),
        "task": datasets.Value("string"),
        "split": datasets.Value("string"),
        "user_id": datasets.Value("string"),
        "history": datasets.List({"item_id": datasets.Value("string"), "rating": datasets.Value("float64"),
                                  "timestamp": datasets.Value("int64")}),
        "candidates": datasets.List(datasets.Value("string")),
        "label": datasets.Value("int64"),
        "template": datasets.Value("string"),
        "text": datasets.Value("string"),
        "span_map": {
            "history": datasets.List({**_SPAN, "index": datasets.Value("int64"), "item_id": datasets.Value("string")}),
            "candidate": {**_SPAN, "item_id": datasets.Value("string")},
            "profile_chars": datasets.List(datasets.Value("int64")),
        },
    }
    if task == "ranking":
        features["profile_text"] = datasets.Value("string")
        features["candidate_texts"] = datasets.List(datasets.Value("string"))
    return datasets.Features(features)


def record_batches(examples: Iterable[Example], renderer: Renderer, task: str,
                   batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatch]:
    """Rendered example records as Arrow record batches of the task's schema."""
    schema = example_features(task).arrow_schema
    batch: list[dict] = []
    for example in examples:
        if example.task != task:
            raise ValueError(f"example {example.example_id} is a {example.task} example, not {task}")
        batch.append(example_record(example, renderer))
        if len(batch) == batch_rows:
            yield pa.RecordBatch.from_pylist(batch, schema=schema)
            batch = []
    if batch:
        yield pa.RecordBatch.from_pylist(batch, schema=schema)


def write_arrow_file(examples: Iterable[Example], renderer: Renderer, path: str | Path, task: str) -> int:
    """Stream examples into an Arrow IPC stream file (the format `datasets` maps); returns the row count.
    Written next to `path` and renamed into place, so a killed run leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    schema = example_features(task).arrow_schema
    n = 0
    try:
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
            for batch in record_batches(examples, renderer, task):
                writer.write_batch(batch)
                n += batch.num_rows
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return n


def _renderer_for(data: TaskData, renderer: Renderer | None, template: str) -> Renderer:
    return renderer if renderer is not None else Renderer(data.dataset.items, template=template)


def to_hf_dataset(data: TaskData, renderer: Renderer | None = None, template: str = DEFAULT_TEMPLATE) -> datasets.Dataset:
    """The examples of one task split as an in-memory `datasets.Dataset`.

    Columns: example_id, task, split, user_id, history (item_id, rating, timestamp),
    candidates, label (preference: 1 = liked; ranking: index of the positive), template,
    text (profile + candidate), span_map (character spans of each history entry and of the
    candidate, and the profile's extent), and for ranking profile_text and candidate_texts.
    For splits too large for memory use `benchmark.data.cache.cached_examples` (Arrow on disk).
    """
    renderer = _renderer_for(data, renderer, template)
    table = pa.Table.from_batches(list(record_batches(data.examples, renderer, data.task)),
                                  schema=example_features(data.task).arrow_schema)
    return datasets.Dataset(datasets.table.InMemoryTable(table), info=datasets.DatasetInfo(
        features=example_features(data.task), description=f"RecRobust {data.task} examples, {data.split} split"))


def write_examples(examples: Iterable[Example], renderer: Renderer, out: str | Path, task: str,
                   format: str = "jsonl") -> int:
    """Write examples as JSON lines, Parquet, or a `datasets` folder (save_to_disk); returns the count."""
    if format not in FORMATS:
        raise ValueError(f"unknown examples format {format!r}; known: {', '.join(FORMATS)}")
    out = Path(out)
    if format == "jsonl":
        return write_examples_jsonl(examples, renderer, out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.with_name(f".{out.name}.{os.getpid()}.arrow")
    try:
        n = write_arrow_file(examples, renderer, staging, task)
        ds = datasets.Dataset.from_file(str(staging), info=datasets.DatasetInfo(features=example_features(task)))
        if format == "parquet":
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            ds.to_parquet(str(tmp))
            os.replace(tmp, out)
        else:
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmpdir")
            shutil.rmtree(tmp, ignore_errors=True)
            ds.save_to_disk(str(tmp))
            if out.exists():
                shutil.rmtree(out) if out.is_dir() else out.unlink()
            os.replace(tmp, out)
        del ds
    finally:
        staging.unlink(missing_ok=True)
    return n


def read_examples(path: str | Path, format: str | None = None) -> list[dict]:
    """Rows of a written examples file or folder as plain dicts (for comparing formats)."""
    path = Path(path)
    format = format or ("hf" if path.is_dir() else "parquet" if path.suffix == ".parquet" else "jsonl")
    if format == "jsonl":
        with open(path, encoding="utf-8") as fh:
            return [json.loads(line) for line in fh if line.strip()]
    if format == "parquet":
        import pyarrow.parquet as pq

        return pq.read_table(str(path)).to_pylist()
    return datasets.load_from_disk(str(path)).to_list()


def export_examples(dataset, task: str, split: str, out: str | Path, format: str = "jsonl", *, seed: int = 0,
                    history_len: int = DEFAULT_HISTORY, num_negatives: int = DEFAULT_NEGATIVES,
                    template: str = DEFAULT_TEMPLATE, max_examples: int | None = None) -> int:
    """Split a Dataset, build one split's examples and write them, streaming (nothing held per example).
    The rows are those of `build_task` with the same arguments."""
    from benchmark.profiles import SPLITS, split_dataset
    from benchmark.tasks import iter_examples, subset_indices

    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; known: {', '.join(SPLITS)}")
    if format not in FORMATS:
        raise ValueError(f"unknown examples format {format!r}; known: {', '.join(FORMATS)}")
    renderer = Renderer(dataset.items, template=template)
    timeline = split_dataset(dataset)
    if task == "preference" and timeline["rating"].isna().all():
        raise ValueError(f"dataset {dataset.name!r} has no ratings (implicit feedback): the preference task needs them")
    keep = subset_indices(timeline, task, split, seed, max_examples)
    examples = iter_examples(timeline, task, split, seed=seed, history_len=history_len,
                             num_negatives=num_negatives, keep=keep)
    return write_examples(examples, renderer, out, task, format=format)
