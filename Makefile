# Two commands do all the set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
TORCH_SPEC ?= torch==2.13.0

.PHONY: setup system-data run test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH_SPEC)" || $(PIP) install -q "torch>=2.2"
	# dev: pytest and implicit (the BPR benchmark); lora and ray: the optional extras, so
	# that the tests exercise LoRA and a local Ray instance too.
	$(PIP) install -q -e ".[dev,lora,ray]"
	touch $@

# WordNet for pwws (and the POS fallback of textfooler, a2t and hotflip) with no internet:
# Debian's database files, which the project turns into NLTK's layout. Best effort: without
# them those attacks report themselves unavailable.
WORDNET_DIR := /usr/share/wordnet
WORDNET_PKGS := wordnet-base wordnet-sense-index
# Headless Chromium + its WebDriver for the leaderboard site's browser test
# (tests/test_website.py, through selenium); best effort the same way: skipped without them.
BROWSER_PKGS := chromium chromium-driver

system-data:
	@if [ ! -d $(WORDNET_DIR) ] && command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q $(WORDNET_PKGS) >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q $(WORDNET_PKGS) >/dev/null; } \
	  || echo "WordNet not installed ($(WORDNET_PKGS)): pwws will report itself unavailable"; \
	fi
	@if ! command -v chromedriver >/dev/null 2>&1 && command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get install -y -q $(BROWSER_PKGS) >/dev/null 2>&1 \
	  || { $$SUDO apt-get update -q >/dev/null 2>&1 && $$SUDO apt-get install -y -q $(BROWSER_PKGS) >/dev/null; } \
	  || echo "Chromium not installed ($(BROWSER_PKGS)): the site's browser test will be skipped"; \
	fi

setup: $(VENV)/.installed system-data

# The main job: the quick suite (ML-100K), then its leaderboard printed and written to
# leaderboards/quick/. A failed cell is recorded and the run goes on; the leaderboard is
# still built, and make exits with the run's status.
run: setup
	$(VENV)/bin/recrobust run --suite quick --results results; status=$$?; \
	$(VENV)/bin/recrobust leaderboard --results results --suite quick --out leaderboards/quick || status=1; \
	exit $$status

test: setup
	$(PY) -m pytest -q

bench: setup
	$(PY) bench/bench_bpr.py
	$(PY) bench/bench_text_attack.py

clean:
	rm -rf $(VENV) .pytest_cache
