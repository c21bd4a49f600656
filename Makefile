# codepref: the two commands are `make demo` and `make test` (see README.md).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv lint bench clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

## Set up and run the demo: SQLite, inline tasks, the tiny local model, served on http://127.0.0.1:8000
demo: $(STAMP)
	$(BIN)/python manage.py demo --serve

## Set up and run the whole test suite (PostgreSQL + Redis + Celery + Chromium; CI=true makes them required)
test: $(STAMP)
	VENV=$(VENV) bash scripts/test.sh

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf var staticfiles .pytest_cache test-artifacts
