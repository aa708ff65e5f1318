# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   the main job on the embedded default (SQLite, in-process index, no token)
#   make test   the whole test suite
# Both create .venv, install the project and compile the catalogues first.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint catalogues extract bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP) catalogues

catalogues: $(STAMP)
	$(BIN)/pybabel compile -d locales -D messages --statistics

demo: install
	$(BIN)/yizhan demo

test: install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -n 3 --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy bot domain storage handlers localapi

extract: $(STAMP)
	$(BIN)/pybabel extract -F babel.cfg -k __ -k gettext -k lazy_gettext -k N_ --no-location --sort-output --width 100 \
		--project yizhan -o locales/messages.pot .
	$(BIN)/pybabel update -i locales/messages.pot -d locales -D messages --no-fuzzy-matching --width 100

bench: install
	$(BIN)/python -m bench.search
	$(BIN)/python -m bench.coldstart
	$(BIN)/python -m bench.importing
	$(BIN)/python -m bench.bot

clean:
	rm -rf $(VENV) yizhan.db yizhan.db-wal yizhan.db-shm
