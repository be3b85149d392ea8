# oceanid: `make demo` and `make test` create .venv, install, and run.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test test-all bench lint app clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[train,test,weights,scale]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/oceanid demo

test: $(STAMP) lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m bench.run_all

# ruff (config in pyproject.toml): lint and format check of the whole tree
LINTED ?= .
lint: $(STAMP)
	$(BIN)/ruff check $(LINTED)
	$(BIN)/ruff format --check $(LINTED)

app: $(STAMP)
	$(BIN)/oceanid app

clean:
	rm -rf $(VENV) build *.egg-info
