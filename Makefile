# Quick start:  make run   (the dashboard on the practice sandbox MailRoot)
#               make test  (the whole test suite; make test-quick: the quick loop)
# Both create their own virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.xmailnb-installed

.PHONY: run test test-quick test-future approvals bench setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml setup.py $(wildcard xmailnb/locale/*/LC_MESSAGES/*.po)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# The dashboard in the browser on the practice sandbox MailRoot (MAIL_ROOT is
# cleared so that `make run` never opens a live MailRoot by accident).
# Another port: make run PORT=8870.  Ctrl-C stops it.
PORT ?= 8866
run: $(STAMP)
	MAIL_ROOT= $(BIN)/xmailnb serve --port $(PORT)

# The whole suite: everything but the browser tests on every core
# (pytest-xdist), then the browser tests one at a time (they share the
# browser and time-bound pages).
test: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not browser"
	$(BIN)/python -m pytest -q -m browser

# The quick loop while working (under a minute, on every core with
# pytest-xdist): everything but the tests
# marked slow or browser (pyproject.toml names the markers).
test-quick: $(STAMP)
	$(BIN)/python -m pytest -q -n auto -m "not slow and not browser"

# The suite (browser tests aside) with the system clock a year ahead
# (Debian's faketime): a test that depends on today's date fails here.
# libfaketime hangs waits with a deadline (Lock.acquire(timeout=…)), so
# the product polls with time.sleep where a thread must wake up.  On every
# core (pytest-xdist), as `make test` runs it: one core took 15 of CI's 30 minutes.
test-future: $(STAMP)
	faketime -f +365d $(BIN)/python -m pytest -q -p no:cacheprovider -n auto -m "not browser"

# Regenerate the approved texts (tests/approvals/__snapshots__) after a
# deliberate wording change; read `git diff` before committing them.
approvals: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/approvals --snapshot-update

# Benchmarks with same-run baselines (see docs/performance.md); needs Debian's
# chromium for the dashboard figures.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
