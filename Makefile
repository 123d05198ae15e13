# A thin veneer over the commands .ci/run and developers use. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test lint format check layout references clean
.DEFAULT_GOAL := build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

build: $(STAMP)
	$(BIN)/pubkit build

check: $(STAMP)
	$(BIN)/pubkit check

# Proofread the laid-out pages: overflowing lines, stranded headings, split boxes.
layout: $(STAMP)
	$(BIN)/pubkit check --layout

# Rewrite the visual-regression references; look at the new PNGs before committing them.
references: $(STAMP)
	$(BIN)/python tests/regenerate_references.py

lint: $(STAMP)
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format src tests
	$(BIN)/ruff check --fix src tests

test: lint
	$(BIN)/pytest

clean:
	rm -rf build/pdf build/handout build/epub build/manifest.json build/.pubkit-state.json
