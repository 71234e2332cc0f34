# Cohorta: the two set-up commands are `make run` and `make test` (see README).
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# CI starts from a clean clone against a long-lived Postgres: rebuild the test
# database there; locally keep it between runs (dj-stripe's migrations are slow).
PYTEST_DB := $(if $(CI),--create-db,)

.PHONY: run test install install-dev lint migrate seed worker beat web clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Cohorta needs Python 3.11+"' 
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	@touch $@

$(VENV)/.installed-dev: requirements.txt requirements-dev.txt $(VENV)/.installed
	$(BIN)/pip install --quiet -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

seed: migrate
	@$(BIN)/python manage.py seed_model_pricing
	@$(BIN)/python manage.py stripe_setup --if-configured
	@echo "Demo accounts (log in at http://$(HOST):$(PORT)/accounts/login/):"
	@$(BIN)/python manage.py seed_demo

## The first README command: install, migrate, seed, serve on http://127.0.0.1:8000
run: seed
	@echo "Cohorta is starting at http://$(HOST):$(PORT)/  (Ctrl-C to stop)"
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

## The second README command: install, lint, check migrations, run every test
test: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.test_settings
	$(BIN)/pytest -n auto $(PYTEST_DB) -m "not reliability" $(PYTEST_ARGS)
	@# The reliability suite (kill -9, reconnect storms) runs alone: it measures the product under
	@# faults, not under a second test run competing for two cores. A narrowed run may select none.
	$(BIN)/pytest -n 0 $(PYTEST_DB) -m reliability $(PYTEST_ARGS) || { status=$$?; [ -n "$(PYTEST_ARGS)" ] && [ $$status -eq 5 ]; }

lint: install-dev
	$(BIN)/ruff check . && $(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Service mode processes (set DATABASE_URL and REDIS_URL first). `make web` serves HTTP and websockets on one
# port through daphne, which needs no proxy on a laptop; the Procfile splits them for production (gunicorn for
# HTTP, daphne for /ws/, behind the proxy in deploy/: README, "Service mode").
web: install
	$(BIN)/daphne -b $(HOST) -p $(PORT) config.asgi:application
worker: install
	$(BIN)/celery -A config worker -Q llm,default --pool threads --concurrency 32 --loglevel INFO
beat: install
	$(BIN)/celery -A config beat --loglevel INFO --schedule /tmp/cohorta-celerybeat-schedule

clean:
	rm -rf $(VENV) .test-db .test-media staticfiles
