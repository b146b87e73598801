"""Data TextAttack needs, found or put in place without internet where possible.

- NLTK stopwords: `import textattack` needs them. Found in NLTK's data dirs, else downloaded
  when NLTK's server is reachable, else the copy shipped in this package (nltk_data/, the
  179-word English list from the official nltk_data repository; see its PROVENANCE.md).
- TextAttack's first import runs nltk.download() for six packages; offline that prints six
  urlopen errors. `import_textattack()` routes those calls through `local_first_download`,
  which answers from local data, downloads quietly when online, and otherwise declines.
- WordNet (pwws, and our part-of-speech substitute): NLTK data if present; else a copy of
  Debian's `wordnet-base` + `wordnet-sense-index` (/usr/share/wordnet) made into
  RECROBUST_HOME/nltk_data/corpora/wordnet with the `lexnames` file NLTK needs (copied, not
  linked: NLTK refuses paths outside its data dirs); else a download when online.
  English WordNet does not need omw-1.4 (the multilingual add-on TextAttack asks for).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import shutil
import socket
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

PACKAGED_NLTK_DATA = Path(__file__).resolve().parent / "nltk_data"
DEBIAN_WORDNET = Path("/usr/share/wordnet")
NLTK_HOST = "raw.githubusercontent.com"  # where nltk.download fetches its index and packages
TEXTATTACK_S3_HOST = "textattack.s3.amazonaws.com"
TFHUB_HOST = "tfhub.dev"

WORDNET_HINT = (
    "WordNet data not found: apt-get install wordnet-base wordnet-sense-index "
    "(Debian/Ubuntu), or python -m nltk.downloader wordnet (needs internet)"
)

# The 45 WordNet 3.0 lexicographer files: (name, syntactic category: 1 noun, 2 verb,
# 3 adjective, 4 adverb), in file-number order, from the lexnames(5WN) manual page.
# Debian's wordnet-base lacks the `lexnames` file that NLTK's reader opens first.
LEXNAMES: tuple[tuple[str, int], ...] = (
    ("adj.all", 3), ("adj.pert", 3), ("adv.all", 4), ("noun.Tops", 1), ("noun.act", 1),
    ("noun.animal", 1), ("noun.artifact", 1), ("noun.attribute", 1), ("noun.body", 1),
    ("noun.cognition", 1), ("noun.communication", 1), ("noun.event", 1), ("noun.feeling", 1),
    ("noun.food", 1), ("noun.group", 1), ("noun.location", 1), ("noun.motive", 1),
    ("noun.object", 1), ("noun.person", 1), ("noun.phenomenon", 1), ("noun.plant", 1),
    ("noun.possession", 1), ("noun.process", 1), ("noun.quantity", 1), ("noun.relation", 1),
    ("noun.shape", 1), ("noun.state", 1), ("noun.substance", 1), ("noun.time", 1),
    ("verb.body", 2), ("verb.change", 2), ("verb.cognition", 2), ("verb.communication", 2),
    ("verb.competition", 2), ("verb.consumption", 2), ("verb.contact", 2), ("verb.creation", 2),
    ("verb.emotion", 2), ("verb.motion", 2), ("verb.perception", 2), ("verb.possession", 2),
    ("verb.social", 2), ("verb.stative", 2), ("verb.weather", 2), ("adj.ppl", 3),
)
WORDNET_FILES = tuple(f"{kind}.{pos}" for kind in ("index", "data") for pos in ("noun", "verb", "adj", "adv")) + tuple(
    f"{pos}.exc" for pos in ("noun", "verb", "adj", "adv")
)

# nltk.download ids -> the resource path nltk.data.find looks for.
NLTK_RESOURCES = {
    "stopwords": "corpora/stopwords",
    "wordnet": "corpora/wordnet",
    "omw": "corpora/omw",
    "omw-1.4": "corpora/omw-1.4",
    "punkt": "tokenizers/punkt",
    "punkt_tab": "tokenizers/punkt_tab",
    "averaged_perceptron_tagger": "taggers/averaged_perceptron_tagger",
    "averaged_perceptron_tagger_eng": "taggers/averaged_perceptron_tagger_eng",
    "universal_tagset": "taggers/universal_tagset",
}


class ResourceMissing(RuntimeError):
    """Data or a model an attack needs is not here and cannot be fetched."""


# -- where things are -----------------------------------------------------------


def recrobust_home() -> Path:
    from benchmark.data.sources import cache_home

    return cache_home()


def offline_forced() -> bool:
    """RECROBUST_OFFLINE=1 (or HF_HUB_OFFLINE=1) skips every download attempt."""
    return any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in ("RECROBUST_OFFLINE", "HF_HUB_OFFLINE"))


@functools.lru_cache(maxsize=None)
def host_reachable(host: str, port: int = 443, timeout: float = 3.0) -> bool:
    """A quick connect test, so that an offline machine decides at once instead of
    waiting through a library's retries. Cached for the process."""
    if offline_forced():
        return False
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable() -> bool:
    from urllib.parse import urlparse

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return False
    return host_reachable(urlparse(constants.ENDPOINT).hostname or "huggingface.co")


def nltk_has(resource: str) -> bool:
    import nltk

    for candidate in (resource, resource + ".zip"):
        try:
            nltk.data.find(candidate)
            return True
        except LookupError:
            continue
    return False


def _add_nltk_path(path: Path) -> None:
    import nltk

    if str(path) not in nltk.data.path:
        nltk.data.path.append(str(path))


# -- nltk.download, local first ---------------------------------------------------------


def local_first_download(info_or_id=None, *args, **kwargs) -> bool:
    """Stand-in for nltk.download: True if the resource is already here; a quiet real
    download when NLTK's server is reachable; otherwise False without network noise."""
    import nltk

    resource = NLTK_RESOURCES.get(info_or_id) if isinstance(info_or_id, str) else None
    if resource and nltk_has(resource):
        return True
    if info_or_id is None or not host_reachable(NLTK_HOST):
        log.debug("nltk.download(%r) skipped: offline", info_or_id)
        return False
    kwargs["quiet"] = True
    return _REAL_NLTK_DOWNLOAD(info_or_id, *args, **kwargs)


_REAL_NLTK_DOWNLOAD = None


@contextlib.contextmanager
def local_first_nltk_downloads():
    """Route nltk.download through local_first_download while TextAttack code runs
    (its import and some constructors, e.g. WordSwapWordNet, call it unconditionally)."""
    global _REAL_NLTK_DOWNLOAD
    import nltk

    if nltk.download is local_first_download:
        yield
        return
    _REAL_NLTK_DOWNLOAD = nltk.download
    nltk.download = local_first_download
    try:
        yield
    finally:
        nltk.download = _REAL_NLTK_DOWNLOAD


# -- stopwords and the TextAttack import -----------------------------------------------


def ensure_stopwords() -> str:
    """Make nltk find the English stopwords; returns where they come from."""
    if nltk_has("corpora/stopwords"):
        return "NLTK data"
    if host_reachable(NLTK_HOST):
        import nltk

        if nltk.download("stopwords", quiet=True) and nltk_has("corpora/stopwords"):
            return "downloaded"
    _add_nltk_path(PACKAGED_NLTK_DATA)
    if not nltk_has("corpora/stopwords"):
        raise ResourceMissing(f"NLTK stopwords not found, and the packaged copy is missing from {PACKAGED_NLTK_DATA}")
    return "packaged copy"


def import_textattack():
    """`import textattack`, after its NLTK stopwords are in place and with its
    first-import downloads answered locally."""
    import sys

    if "textattack" in sys.modules:
        return sys.modules["textattack"]
    ensure_stopwords()
    with local_first_nltk_downloads():
        import textattack
    return textattack


@contextlib.contextmanager
def quiet_textattack():
    """Silence TextAttack's logger (its goal functions log a line, or a warning, about the
    model class each time one is built)."""
    ta_logger = logging.getLogger("textattack.shared.utils.install")
    level = ta_logger.level
    ta_logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        ta_logger.setLevel(level)


# -- WordNet -------------------------------------------------------------------------


def _wordnet_source_dir() -> Path | None:
    env = os.environ.get("WNSEARCHDIR")
    for path in ([Path(env)] if env else []) + [DEBIAN_WORDNET]:
        if all((path / name).is_file() for name in WORDNET_FILES):
            return path
    return None


def _copy_wordnet(source: Path, target: Path) -> None:
    """Copy WordNet's database files (not its programs) and write `lexnames`; atomic."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for entry in source.iterdir():
            if entry.is_file():
                shutil.copyfile(entry, tmp / entry.name)
        if not (tmp / "lexnames").exists():
            lines = [f"{i:02d}\t{name}\t{cat}\n" for i, (name, cat) in enumerate(LEXNAMES)]
            (tmp / "lexnames").write_text("".join(lines), encoding="ascii")
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def wordnet_status() -> str | None:
    """Where WordNet would come from without changing anything, or None if nowhere."""
    if nltk_has("corpora/wordnet"):
        return "NLTK data"
    if (recrobust_home() / "nltk_data" / "corpora" / "wordnet" / "lexnames").is_file():
        return "copy of the Debian WordNet"
    if _wordnet_source_dir() is not None:
        return "Debian WordNet (to be copied)"
    if host_reachable(NLTK_HOST):
        return "NLTK download"
    return None


def ensure_wordnet() -> str:
    """Make `nltk.corpus.wordnet` work; returns where the data came from.
    Raises ResourceMissing (saying what to install) when there is none."""
    if nltk_has("corpora/wordnet"):
        return "NLTK data"
    data_dir = recrobust_home() / "nltk_data"
    target = data_dir / "corpora" / "wordnet"
    source = _wordnet_source_dir()
    if not (target / "lexnames").is_file() and source is not None:
        if target.exists():  # an interrupted or foreign copy: replace it
            shutil.rmtree(target)
        _copy_wordnet(source, target)
    if (target / "lexnames").is_file():
        _add_nltk_path(data_dir)
        return f"Debian WordNet ({source or 'copied earlier'}) copied to {target}"
    if host_reachable(NLTK_HOST):
        import nltk

        downloader = _REAL_NLTK_DOWNLOAD or nltk.download
        if downloader("wordnet", quiet=True) and nltk_has("corpora/wordnet"):
            return "downloaded"
    raise ResourceMissing(WORDNET_HINT)


# -- NLTK part-of-speech tagger ----------------------------------------------------------


def pos_tagger_available() -> bool:
    """NLTK's perceptron tagger with the universal tagset (what TextAttack's PartOfSpeech
    uses); downloaded when online. NLTK 3.9+ stores it as JSON (no pickle)."""
    needed = ("averaged_perceptron_tagger_eng", "universal_tagset")
    if all(nltk_has(NLTK_RESOURCES[n]) for n in needed):
        return True
    if not host_reachable(NLTK_HOST):
        return False
    import nltk

    downloader = _REAL_NLTK_DOWNLOAD or nltk.download
    for name in needed:
        downloader(name, quiet=True)
    return all(nltk_has(NLTK_RESOURCES[n]) for n in needed)
