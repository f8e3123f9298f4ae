# Two commands for a newcomer: `make run` and `make test`. Both set themselves up.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
LOCK_HASH := $(shell cat pyproject.toml constraints.txt 2>/dev/null | sha1sum | cut -c1-12)
RUN_STAMP := $(VENV)/.run-$(LOCK_HASH)
TEST_STAMP := $(VENV)/.test-$(LOCK_HASH)
PIP := $(BIN)/python -m pip --disable-pip-version-check -q

.PHONY: run test bench install install-test lock messages check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): $(BIN)/python pyproject.toml constraints.txt
	$(PIP) install -c constraints.txt .
	touch $@

$(TEST_STAMP): $(RUN_STAMP)
	$(PIP) install -c constraints.txt '.[test]'
	touch $@

install: $(RUN_STAMP)
install-test: $(TEST_STAMP)

## make run: the whole panel on http://127.0.0.1:8000 (PORT=... to change); Ctrl-C stops it.
run: install
	$(BIN)/python manage.py runpanel

## make test: the whole suite against real PostgreSQL, Redis, sshd, Docker and Chromium.
test: install-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## make bench: measure and print the figures each issue asks for.
bench: install-test
	$(BIN)/python benchmarks/run_all.py $(BENCH_ARGS)

## make lock: re-pin every transitive dependency after changing pyproject.toml.
lock: $(BIN)/python
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv
	.lock-venv/bin/python -m pip --disable-pip-version-check -q install '.[test]'
	.lock-venv/bin/python -m pip freeze --exclude-editable | grep -v '^filrouge' > constraints.txt
	rm -rf .lock-venv

## make messages: refresh the French catalogue after changing UI strings.
messages: install
	$(BIN)/python manage.py makemessages -l fr --ignore='.venv/*' --ignore='tests/*'
	$(BIN)/python manage.py makemessages -d djangojs -l fr --ignore='.venv/*' --ignore='static/vendor/*'
	$(BIN)/python manage.py compilemessages --ignore='.venv/*'

check: install-test
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var test-artifacts .pytest_cache
