# A thin veneer over the commands .ci/run and developers use. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test lint format check layout references clean a11y a11y-tools bench
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

# Ace by DAISY, the EPUB accessibility checker: npm package (no install scripts, so no
# bundled browser) driving Debian's chromium. Installed on first use; tests use it when here.
ACE_DIR := tools/ace
ACE := $(ACE_DIR)/node_modules/.bin/ace-puppeteer
CHROMIUM := /usr/bin/chromium

$(CHROMIUM):
	apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium

$(ACE): $(ACE_DIR)/package.json $(ACE_DIR)/package-lock.json
	cd $(ACE_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

a11y-tools: $(CHROMIUM) $(ACE)

a11y: build a11y-tools
	$(BIN)/python tools/ace_check.py build

# pubkit on a synthetic 60-lesson course against a bare pandoc + WeasyPrint floor.
bench: $(STAMP)
	$(BIN)/python tools/bench.py --json build/bench.json

lint: $(STAMP)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests tools
	$(BIN)/ruff check --fix src tests tools

test: lint
	$(BIN)/pytest

clean: $(STAMP)
	$(BIN)/pubkit clean
