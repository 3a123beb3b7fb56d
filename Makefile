# The two commands of the README: `make demo` and `make check`. Everything else is a step they need.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
CODE := bot rag adapters

.PHONY: install demo check lint types test test-servers bench bench-quality clean

$(BIN)/wikibot $(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[test]'
	touch $(VENV)/.installed

install: $(VENV)/.installed

demo: install
	$(BIN)/wikibot demo

# redis-server (Debian) backs the Redis session-store tests; the tests start and stop it themselves. Debian's
# chromium and chromium-driver run the web channel's browser tests (headless, driven by Selenium).
test-servers:
	@command -v redis-server >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
	  || echo "note: redis-server is not installed; the Redis session-store tests will be skipped"; }
	@{ command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; } \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
	  && (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
	  || echo "note: chromium or chromedriver is not installed; the web channel's browser tests will be skipped"; }

lint: install
	$(BIN)/ruff format --check $(CODE) tests bench
	$(BIN)/ruff check $(CODE) tests bench

types: install
	$(BIN)/mypy

test: install test-servers
	$(BIN)/python -m pytest

check: lint types test

bench: install
	$(BIN)/python bench/ingest.py
	$(BIN)/python bench/query.py

# The real evaluation set: Python's and git's manuals (Debian packages, apt-get installs them as root) as
# Confluence spaces, 266 questions; the first run ingests them (minutes), later runs only re-ask.
bench-quality: install
	[ -f bench/.corpus/space.json ] || $(BIN)/python bench/corpus.py
	$(BIN)/python bench/quality.py
	$(BIN)/python bench/quality.py --sample

clean:
	rm -rf $(VENV) demo-data .pytest_cache .mypy_cache .ruff_cache
