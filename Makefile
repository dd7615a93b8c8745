# Copydesk: the two commands a new user needs.
#   make demo   set up, start the whole stack on embedded defaults, send a sample manuscript through
#   make test   set up, run the whole test suite (pytest --cov=app)
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo dev test bench bench-deps install install-dev compose-check clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Copydesk needs Python 3.11 or newer")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: requirements.txt pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

$(VENV)/.installed-dev: requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

demo: $(VENV)/.installed
	$(BIN)/copydesk demo

dev: $(VENV)/.installed
	$(BIN)/copydesk dev

test: $(VENV)/.installed-dev
	$(BIN)/python -m pytest --cov=app --cov-report=term:skip-covered $(PYTEST_ARGS)

# What the benchmarks run beside Copydesk: wrk (API load), Dovecot (mailbox), LibreOffice (.doc),
# PHP + MariaDB + WordPress (publishing). Debian packages, installed once (root).
bench-deps: $(VENV)/.installed-dev
	@command -v wrk >/dev/null && command -v dovecot >/dev/null && command -v soffice >/dev/null || \
	  (apt-get update && apt-get install -y --no-install-recommends wrk dovecot-imapd openssl libreoffice-writer-nogui)
	$(BIN)/python -m tests.servers.wordpress deps

bench: bench-deps
	$(BIN)/python -m bench $(BENCH_ARGS)

compose-check:
	docker-compose -f docker-compose.yml config -q

clean:
	rm -rf $(VENV) .coverage .coverage.* htmlcov
