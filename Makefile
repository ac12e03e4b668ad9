# campaignflow — the two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 5000
STAMP  := $(VENV)/.installed

.PHONY: demo test install lint migration i18n clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

## make demo: set up, migrate the SQLite database, seed the demo union, run web + worker.
demo: $(STAMP)
	@$(BIN)/campaignflow db upgrade
	@$(BIN)/campaignflow demo seed --if-empty
	@$(BIN)/campaignflow serve --port $(PORT)

## make test: the whole suite on the embedded default (SQLite, jobs in-process and a real worker).
test: $(STAMP)
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/mypy

migration: $(STAMP)
	@$(BIN)/campaignflow db regenerate

i18n: $(STAMP)
	@$(BIN)/pybabel extract -F babel.cfg -k _l -o web/translations/messages.pot . >/dev/null
	@$(BIN)/pybabel update -i web/translations/messages.pot -d web/translations -l zh --no-fuzzy-matching
	@$(BIN)/pybabel compile -d web/translations

clean:
	rm -rf $(VENV) instance
