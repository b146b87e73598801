"""The committed reference results (results/standard/) rebuild the committed leaderboard
(leaderboards/standard/) byte for byte: every number on the board comes from a record in the
repository, and a change to the statistics or the rendering shows up here."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmark import records as rec
from benchmark.leaderboard import build_leaderboard

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
BOARD = ROOT / "leaderboards" / "standard"
TEXT_SUFFIXES = (".md", ".csv", ".tex", ".html", ".css", ".js")


def _text_files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix in TEXT_SUFFIXES}


@pytest.mark.slow
def test_committed_standard_records_rebuild_the_committed_board(tmp_path):
    import shutil

    records, problems = rec.load_records(RESULTS / "standard", strict=False)
    assert records and not problems, problems[:3]  # every committed record and its rows verify
    # The same layout as the repository's, so the site's relative links to records match.
    shutil.copytree(RESULTS / "standard" / "records", tmp_path / "results" / "standard" / "records")
    out = tmp_path / "leaderboards" / "standard"
    build_leaderboard(tmp_path / "results", suite="standard", fmt="md", out_dir=out)
    committed, rebuilt = _text_files(BOARD), _text_files(out)
    assert committed.keys() == rebuilt.keys()
    changed = [name for name in committed if committed[name] != rebuilt[name]]
    assert not changed, f"rebuilt leaderboard differs from the committed one in {changed[:5]}"
    pngs = {p.relative_to(BOARD) for p in BOARD.rglob("*.png")}
    assert pngs == {p.relative_to(out) for p in out.rglob("*.png")}  # the same figures drawn
