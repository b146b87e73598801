"""The leaderboard site (benchmark.website): pages, marks, escaping, no external references,
same bytes from the same records, and one check of the rendered pages in headless Chromium."""

from __future__ import annotations

import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from benchmark import suite as suite_mod
from benchmark.leaderboard import build_leaderboard, build_tables, collect
from benchmark.runner import run_suite
from benchmark.submissions import evaluate_submission, submit_bundle
from benchmark.website import REFERENCE_CARDS, safe_url
from tests.fake_pipeline import NoEffectPipeline, toy_suite

SPEC = "tests.fake_pipeline:SubmittedModel"
# Author-controlled card text that would run script if it reached the page as markup.
HOSTILE_NAME = "<script>window.__pwned = 1</script>Evil Rec"
HOSTILE_DESCRIPTION = '<img src=x onerror="window.__pwned = 2"> <svg onload="window.__pwned = 3"></svg>'
HOSTILE_AUTHOR = '"><script>window.__pwned = 4</script>'
HOSTILE_URL = "https://example.org/p?a=1&b='x'onmouseover='window.__pwned=5'"
CHROMEDRIVER = "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    """Our runs of a toy suite (rating-flip has no effect: a degenerate column) plus a filed
    submission with a hostile card; the leaderboard written with plots and site."""
    tmp = tmp_path_factory.mktemp("site")
    suites = tmp / "suites"
    suites.mkdir()
    (suites / "toy.yaml").write_text(yaml.safe_dump(toy_suite(defenses=["none", "profile-augment"])))
    card = tmp / "card.yaml"
    card.write_text(yaml.safe_dump({
        "name": HOSTILE_NAME, "authors": [HOSTILE_AUTHOR, "B. Author"], "paper_url": HOSTILE_URL,
        "code_url": "https://example.org/code", "license": "MIT <b>bold</b>", "description": HOSTILE_DESCRIPTION,
        "model_options": {"factors": 4},
        "reported": [{"dataset": "toy-a", "task": "preference", "robust": 0.99, "clean": 0.9}]}, allow_unicode=True))
    results = tmp / "results"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(suite_mod, "SUITES_DIR", suites)  # submissions accept built-in protocols only
        assert run_suite("toy", results, pipeline=NoEffectPipeline(), progress=False, code_version="t").ok
        bundle = evaluate_submission(SPEC, card, suite="toy", results_dir=results, progress=False,
                                     pipeline=NoEffectPipeline(), code_version="t")
        submit_bundle(bundle, results, pipeline=NoEffectPipeline(), rerun=False)
        out = tmp / "lb"
        build_leaderboard(results, suite="toy", fmt="md", out_dir=out, n_boot=50)
        tables = build_tables(collect(results, "toy"), n_boot=50)
    return {"results": results, "out": out, "site": out / "site", "tables": tables, "suites": suites}


def _pages(site: Path) -> dict[str, str]:
    return {p.relative_to(site).as_posix(): p.read_text(encoding="utf-8") for p in sorted(site.rglob("*.html"))}


class _Refs(HTMLParser):
    """Every tag with its attributes, and the text of script elements."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.scripts: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"
        if self._in_script:
            self.scripts.append("")

    def handle_endtag(self, tag):
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data


def test_site_has_index_a_page_per_table_and_model_cards(board):
    pages = _pages(board["site"])
    assert {"index.html", "toy-v1-toy-a-preference.html", "toy-v1-toy-a-ranking.html", "models/bpr-mf.html",
            "models/popularity.html"} <= set(pages)
    subs = [p for p in pages if p.startswith("submissions/")]
    assert len(subs) == 1
    index = pages["index.html"]
    for fact in ("Suite toy v1", "toy-a", "Seeds", "profile-swap", "budget 3", "95% percentile bootstrap",
                 "Holm-corrected", "leaderboard.md", "leaderboard.csv"):
        assert fact in index, fact
    pref = pages["toy-v1-toy-a-preference.html"]
    # Sections per threat model; the degenerate column and its cells are marked.
    assert 'id="profile"' in pref and 'id="embedding"' in pref
    assert 'class="degenerate" title="degenerate column: not ranked">rating-flip ‡' in pref
    refs = _Refs()
    refs.feed(pref)
    hatched = [a for tag, a in refs.tags if tag == "td" and "degenerate" in a.get("class", "").split()]
    assert len(hatched) == len(board["tables"][0].rows)  # rating-flip's cell in every row
    assert any(tag == "tr" and a.get("class") == "degenerate" for tag, a in refs.tags)  # its per-attack lines
    # The submitted row is marked, with its reported figure flagged.
    assert sum(tag == "tr" and "submitted" in a.get("class", "").split() for tag, a in refs.tags) == 2
    assert "badge submitted" in pref and "mean robust 0.990" in pref and "⚠" in pref
    card = pages[subs[0]]
    assert "Reported vs verified" in card and "0.990" in card and "no examples re-run" in card
    assert "Records behind the numbers" in card and card.count("<tr>") > 10  # every record of the submission
    ref = pages["models/bpr-mf.html"]
    assert "https://arxiv.org/abs/1205.2618" in ref and "recommenders/classic/bpr_mf.py" in ref


def test_card_text_is_escaped_and_nothing_external_is_loaded(board):
    for name, text in _pages(board["site"]).items():
        for raw in ("<script>window", "<img src=x", "<svg", "<b>bold", "'onmouseover='"):
            assert raw not in text, (name, raw)
        refs = _Refs()
        refs.feed(text)
        scripts = [a for t, a in refs.tags if t == "script"]
        assert len(scripts) == 1 and not scripts[0], name  # one inline script, ours, no src
        for tag, attrs in refs.tags:
            assert not any(k.startswith("on") for k in attrs), (name, tag, attrs)  # no event handler attributes
            for key in ("src", "srcset", "data", "poster", "background") + (("href",) if tag != "a" else ()):
                value = attrs.get(key)
                assert value is None or not re.match(r"([a-z][a-z0-9+.-]*:|//)", value, re.I), (name, tag, value)
            if tag == "a" and re.match(r"[a-z]+:", attrs.get("href", ""), re.I):
                assert safe_url(attrs["href"]), (name, attrs)  # only http(s) links leave the site
        assert [a for t, a in refs.tags if t == "img"] == [a for t, a in refs.tags if t == "img" and "alt" in a]
        csp = next(a["content"] for t, a in refs.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy")
        assert "default-src 'none'" in csp and "script-src 'sha256-" in csp and "unsafe-inline" not in csp
    card = next(t for n, t in _pages(board["site"]).items() if n.startswith("submissions/"))
    assert "&lt;img src=x onerror=&#34;window.__pwned = 2&#34;&gt;" in card


def test_same_records_give_the_same_site(board, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(suite_mod, "SUITES_DIR", board["suites"])
        for name in ("a", "b"):
            build_leaderboard(board["results"], suite="toy", fmt="md", out_dir=board["results"].parent / name,
                              n_boot=50, plots=False)
    a, b = (_pages(board["results"].parent / n / "site") for n in ("a", "b"))
    assert a == b and len(a) >= 6
    assert "<img" not in a["toy-v1-toy-a-preference.html"]  # no plots written: none linked


def test_reference_cards_name_real_implementations():
    cards = yaml.safe_load(REFERENCE_CARDS.read_text())
    root = Path(__file__).resolve().parents[1]
    for name, card in cards.items():
        assert (root / card["implementation"]).is_file(), name
        assert card.get("paper_url") is None or safe_url(card["paper_url"]), name
    assert safe_url("javascript:alert(1)") is None and safe_url("https://x.org/a b") is None


def _browser():
    """Headless Chromium through selenium and Debian's chromedriver, or a skip saying what is missing."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[dev]')")
    from selenium.webdriver.chrome.service import Service

    if not Path(CHROMEDRIVER).is_file() or not (shutil.which("chromium") or shutil.which("chromium-browser")):
        pytest.skip(f"needs Chromium and {CHROMEDRIVER} (Debian: apt-get install chromium chromium-driver; "
                    "`make setup` does it where apt is available)")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit Service: Selenium Manager never tries to download a driver.
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


def test_rendered_site_in_headless_chromium(board):
    from selenium.webdriver.common.by import By

    site = board["site"]
    pref_table = board["tables"][0]
    driver = _browser()
    try:
        def column(table_id: str, index: int) -> list[str]:
            return [r.find_elements(By.TAG_NAME, "td")[index].text.split("\n")[0]
                    for r in driver.find_elements(By.CSS_SELECTOR, f"#{table_id} tbody tr")]

        driver.get((site / "index.html").as_uri())
        assert len(driver.find_elements(By.CSS_SELECTOR, "#pages tbody tr")) == 2
        assert len(driver.find_elements(By.CSS_SELECTOR, "#cards tbody tr")) == 3  # 2 reference models, 1 submission

        driver.get((site / "toy-v1-toy-a-preference.html").as_uri())
        rows = driver.find_elements(By.CSS_SELECTOR, "#board tbody tr")
        assert len(rows) == len(pref_table.rows) == 6  # (2 models + the submission) x 2 defenses
        assert len(driver.find_elements(By.CSS_SELECTOR, "#board tbody tr.submitted")) == 2
        headers = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#board thead th")]
        rank = headers.index("Rank")
        before = column("board", 0)
        driver.find_elements(By.CSS_SELECTOR, "#board thead th")[rank].click()
        ranks = column("board", rank)
        assert [float(r) for r in ranks] == sorted(float(r) for r in ranks) and column("board", 0) != before
        driver.find_elements(By.CSS_SELECTOR, "#board thead th")[rank].click()  # again: descending
        assert [float(r) for r in column("board", rank)] == sorted((float(r) for r in ranks), reverse=True)
        hatch = "return getComputedStyle(document.querySelector(arguments[0])).backgroundImage"
        assert "repeating-linear-gradient" in driver.execute_script(hatch, "#board th.degenerate")
        assert "repeating-linear-gradient" in driver.execute_script(hatch, "#board td.degenerate")
        assert driver.execute_script(hatch, "#board td:not(.degenerate)") == "none"
        driver.find_elements(By.CSS_SELECTOR, "#board thead th")[0].click()  # by model name
        names = [n.lower() for n in column("board", 0)]
        assert names == sorted(names)
        # The plots load: every image decoded, none broken.
        images = driver.execute_script(
            "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
        assert len(images) >= 3 and all(ok for _, ok in images), images

        card = next(site.glob("submissions/*.html"))
        for page in (site / "index.html", site / "toy-v1-toy-a-preference.html", card):
            driver.get(page.as_uri())
            assert driver.execute_script("return typeof window.__pwned") == "undefined", page.name
        assert "<script>window.__pwned = 1</script>Evil Rec" in driver.find_element(By.TAG_NAME, "h1").text
        assert driver.execute_script("return document.querySelectorAll('.description img, .description svg').length") == 0
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()
