# Quick start:  make run   (the workbook on the practice sandbox MailRoot)
#               make test  (the whole test suite)
# Both create their own virtual environment in .venv on first use.

PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.xmailnb-installed

.PHONY: run test setup clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

# Until the dashboard lands this runs the diagnosis of the sandbox MailRoot.
# Exit 1 only means "findings with errors" (a fresh sandbox has no
# certificate yet); 2 and 3 are real failures.
run: $(STAMP)
	@$(BIN)/xmailnb diagnose; status=$$?; [ $$status -le 1 ]

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
