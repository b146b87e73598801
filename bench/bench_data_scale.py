"""Scale benchmark of the data path: load -> chronological split -> examples (rendered, in Arrow).

Datasets, smallest first, each run in its own process (so each peak RSS is its own):
- ML-100K (u.data / u.item, or the RecBole atomic files the offline fallback provides);
- the partial ML-1M in ../shared/data/ml-1m (487,650 ratings of users 1-2999);
- a synthetic dataset in the ML-25M layout (ratings.csv userId,movieId,rating,timestamp +
  movies.csv movieId,title,genres), written by this script under /tmp (--synthetic-rows,
  default 10,000,000 interactions; never committed).

Each dataset goes through `benchmark.data.cache.cached_task_examples` twice in a fresh
RECROBUST_HOME: cold (read the files, fingerprint, split, build and render examples,
stream them into Arrow), then warm (the cache hit, memory-mapped). Examples: the
preference task, the whole valid and test splits (one example per user each) and a
seeded --train-examples subset of the train split (what suites train on; rendering every
train interaction of a 10M set as text is not what any run does). Printed per dataset:
interactions, examples, stage times, cold wall, peak RSS (the child's ru_maxrss,
interpreter and imports included; the RSS after imports is printed too), the cold run's CPU
time (user + system: on a shared machine wall time stretches with others' load), warm wall and
the cold/warm ratio; then the growth exponent of cold wall time between consecutive sizes,
log(t2/t1) / log(n2/n1) (1 = linear). Goals (issue 17): the 10M set cold under 2 minutes
and 4 GiB peak RSS, growth no worse than linear, warm >= 10x faster than cold.

    python bench/bench_data_scale.py [--synthetic-rows 10000000] [--train-examples 30000]
                                     [--synthetic-dir /tmp/recrobust-synthetic-ml25m] [--only NAME]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's packages, not an installed copy
SHARED = Path(os.environ.get("RECROBUST_SHARED_DATA", REPO.parent / "shared" / "data"))
GENRES = ("Action", "Adventure", "Animation", "Children", "Comedy", "Crime", "Documentary", "Drama", "Fantasy",
          "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller", "War", "Western")


def write_synthetic(folder: Path, rows: int, seed: int = 0) -> Path:
    """ratings.csv + movies.csv in the ML-25M layout: ~154 ratings per user (ML-25M's mean), at
    least 20 each, Zipf-like item popularity over 60,000 movies, half-star ratings, increasing
    timestamps per user, rows sorted by userId then movieId as in the release."""
    import numpy as np
    import pandas as pd

    ratings_path = folder / "ratings.csv"
    if ratings_path.is_file() and (folder / ".rows").is_file() and (folder / ".rows").read_text() == str(rows):
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n_items = 60_000
    popularity = 1.0 / np.arange(1, n_items + 1) ** 0.9
    popularity /= popularity.sum()
    item_ids = rng.permutation(np.arange(1, n_items + 1) * 3)  # sparse ids, as in MovieLens
    stars = np.arange(1, 11) / 2.0
    star_p = np.array([1, 3, 2, 7, 5, 20, 13, 27, 8, 14], dtype=float)
    star_p /= star_p.sum()
    cdf = np.cumsum(popularity)
    written = 0
    user = 0
    with open(ratings_path, "w", encoding="utf-8", newline="\n") as fh:
        fh.write("userId,movieId,rating,timestamp\n")
        while written < rows:
            # A block of users at once: draw items by popularity, drop repeats within a user.
            counts = np.clip(rng.lognormal(mean=4.4, sigma=1.0, size=2000).astype(np.int64), 20, 3000)
            users = np.repeat(np.arange(user + 1, user + 1 + len(counts)), counts)
            items = item_ids[np.minimum(np.searchsorted(cdf, rng.random(len(users))), n_items - 1)]
            block = pd.DataFrame({"userId": users, "movieId": items}).drop_duplicates()
            block = block.iloc[: rows - written]
            n = len(block)
            start = rng.integers(946_684_800, 1_574_000_000, size=len(counts))[block["userId"].to_numpy() - user - 1]
            block["rating"] = rng.choice(stars, size=n, p=star_p)
            block["timestamp"] = start + rng.integers(1, 86_400 * 2000, size=n)
            block.sort_values(["userId", "movieId"]).to_csv(fh, header=False, index=False, float_format="%.1f")
            written += n
            user += len(counts)
    movies = pd.DataFrame({
        "movieId": np.sort(item_ids),
        "title": [f"Synthetic Movie {i} ({1950 + i % 70})" for i in range(n_items)],
        "genres": ["|".join(rng.choice(GENRES, size=1 + i % 3, replace=False)) for i in range(n_items)],
    })
    movies.to_csv(folder / "movies.csv", index=False)
    (folder / ".rows").write_text(str(rows))
    return folder


def child(source: str, train_examples: int) -> None:
    """One dataset, cold then warm, in a fresh cache; prints one JSON line."""
    started = time.perf_counter()
    from benchmark.data.cache import cached_task_examples

    import_seconds = time.perf_counter() - started
    rss_after_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    limits = {"train": train_examples, "valid": None, "test": None}
    runs = []
    for _ in range(2):
        timings: dict = {}
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        out = cached_task_examples(source, "preference", ("train", "valid", "test"), max_examples=limits,
                                   timings=timings)
        rows = {s: len(ds) for s, ds in out.items()}
        first = out["test"][0]["text"]  # touch the mapped data
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        runs.append({"wall": time.perf_counter() - t0, "cpu": cpu, "timings": timings, "rows": rows,
                     "sample": first[:60]})
        del out
    print(json.dumps({
        "source": source, "interactions": runs[0]["timings"].pop("interactions"), "import_seconds": import_seconds,
        "rss_after_imports_mib": rss_after_imports, "cold": runs[0], "warm": runs[1],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def run_child(name: str, source: Path, train_examples: int, timeout: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="recrobust-bench-home.") as home:
        env = {**os.environ, "RECROBUST_HOME": home, "OMP_NUM_THREADS": "1", "HF_DATASETS_DISABLE_PROGRESS_BARS": "1"}
        cmd = [sys.executable, __file__, "--child", str(source), "--train-examples", str(train_examples)]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"{name}: child failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["name"] = name
    return result


def ml100k_source() -> Path:
    from benchmark.data import sources

    folder, _ = sources.resolve("movielens-100k")
    return folder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--synthetic-rows", type=int, default=10_000_000)
    ap.add_argument("--synthetic-dir", default="/tmp/recrobust-synthetic-ml25m")
    ap.add_argument("--train-examples", type=int, default=30_000, help="seeded train subset (the quick suite trains on 30,000)")
    ap.add_argument("--only", choices=["ml-100k", "ml-1m-partial", "synthetic"])
    ap.add_argument("--timeout", type=int, default=900, help="seconds per dataset")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args.child, args.train_examples)
        return
    from tabulate import tabulate

    plan = [("ml-100k", ml100k_source), ("ml-1m-partial", lambda: SHARED / "ml-1m" / "ratings_subset_users_1-2999.dat.gz")]
    plan.append(("synthetic", lambda: write_synthetic(Path(args.synthetic_dir), args.synthetic_rows)))
    results = []
    for name, where in plan:
        if args.only and name != args.only:
            continue
        t = time.perf_counter()
        source = where()
        if name == "synthetic":
            print(f"synthetic data ready in {time.perf_counter() - t:.1f} s: {source}", flush=True)
        results.append(run_child(name, source, args.train_examples, args.timeout))
        r = results[-1]
        print(f"{name}: cold {r['cold']['wall']:.2f} s, warm {r['warm']['wall']:.3f} s, "
              f"peak RSS {r['peak_rss_mib']:.0f} MiB", flush=True)

    rows = []
    for r in results:
        c, w = r["cold"], r["warm"]
        stages = ", ".join(f"{k} {v:.1f}" for k, v in c["timings"].items() if k != "hit")
        rows.append([r["name"], f"{r['interactions']:,}", f"{sum(c['rows'].values()):,}", stages, f"{c['wall']:.2f}",
                     f"{c['cpu']:.2f}",
                     f"{r['peak_rss_mib']:.0f}", f"{r['rss_after_imports_mib']:.0f}", f"{w['wall']:.3f}",
                     f"{c['wall'] / w['wall']:.0f}x", w["timings"].get("hit")])
    print()
    print(tabulate(rows, headers=["dataset", "interactions", "examples", "cold stages (s)", "cold wall (s)", "cold CPU (s)",
                                  "peak RSS (MiB)", "RSS after imports (MiB)", "warm wall (s)", "cold/warm", "warm hit"]))
    for a, b in zip(results, results[1:]):
        exponent = math.log(b["cold"]["wall"] / a["cold"]["wall"]) / math.log(b["interactions"] / a["interactions"])
        cpu_exponent = math.log(b["cold"]["cpu"] / a["cold"]["cpu"]) / math.log(b["interactions"] / a["interactions"])
        print(f"growth exponent of cold wall time, {a['name']} -> {b['name']} "
              f"({a['interactions']:,} -> {b['interactions']:,} interactions): {exponent:.2f} (CPU time: {cpu_exponent:.2f})")
    print(f"train examples: seeded subset of {args.train_examples:,}; valid and test: whole splits; task: preference")
    print(f"load average at the end (1, 5, 15 min): {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} CPUs (wall times stretch with other processes' load; CPU time much less)")


if __name__ == "__main__":
    main()
