"""Compare the ``metrics`` blocks of two results folders, cell by cell.

    python bench/compare_metrics.py results_before/quick-reduced results_after/quick-reduced

Cells are matched by their ``kind`` and ``cell`` config (not by cell id: the id hashes
the code version, which a refactor changes). Prints one line per cell that differs or
exists on one side only, then a summary; exits 1 when any metric block differs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def load(run_dir: Path) -> dict[str, dict]:
    records = {}
    for path in sorted((run_dir / "records").glob("*.json")):
        record = json.loads(path.read_text(encoding="utf-8"))
        key = json.dumps({"kind": record["kind"], "cell": record["cell"]}, sort_keys=True)
        records[key] = record
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    args = parser.parse_args(argv)
    before, after = load(args.before), load(args.after)
    if not before or not after:
        print(f"no records under {args.before if not before else args.after}/records", file=sys.stderr)
        return 2
    same = differ = 0
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        cell = json.loads(key)
        label = f"{cell['kind']} {json.dumps(cell['cell'], sort_keys=True)[:160]}"
        if a is None or b is None:
            print(f"ONLY {'after' if a is None else 'before'}: {label}")
            differ += 1
        elif a["status"] != b["status"] or a["metrics"] != b["metrics"]:
            print(f"DIFF {label}\n  status {a['status']} -> {b['status']}\n"
                  f"  before {json.dumps(a['metrics'], sort_keys=True)[:400]}\n"
                  f"  after  {json.dumps(b['metrics'], sort_keys=True)[:400]}")
            differ += 1
        else:
            same += 1
    statuses = sorted({r["status"] for r in after.values()})
    print(f"{same} cells with identical metric blocks, {differ} differing or unmatched "
          f"(before {len(before)} records, after {len(after)}; statuses after: {statuses})")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
