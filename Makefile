# A thin veneer over the commands .ci/run and developers use. Everything installs into .venv.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: build test lint format check layout references clean a11y a11y-tools bench fonts
.DEFAULT_GOAL := build

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Noto Sans CJK for Chinese, Japanese and Korean lessons: too large for the repository
# (about 50 MB), so installed from npm (pinned in tools/fonts) into the package's theme,
# where the theme looks for them (git-ignored). A pubkit without them reports CJK text as
# characters without a glyph.
CJK_DIR := src/pubkit/theme/fonts/cjk
CJK := $(CJK_DIR)/.installed
CJK_FONTS := fonts-sc/fonts/NotoSansHans fonts-tc/fonts/NotoSansHant fonts-jp/fonts/NotoSansJP fonts-kr/fonts/NotoSansKR

$(CJK): tools/fonts/package.json tools/fonts/package-lock.json
	cd tools/fonts && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(CJK_DIR)
	for font in $(CJK_FONTS); do \
	  cp tools/fonts/node_modules/@embedpdf/$$font-Regular.otf tools/fonts/node_modules/@embedpdf/$$font-Bold.otf $(CJK_DIR)/; \
	done
	cp tools/fonts/node_modules/@embedpdf/fonts-sc/LICENSE $(CJK_DIR)/OFL.txt
	touch $@

fonts: $(CJK)

build: $(STAMP) $(CJK)
	$(BIN)/pubkit build

check: $(STAMP) $(CJK)
	$(BIN)/pubkit check

# Proofread the laid-out pages: overflowing lines, stranded headings, split boxes.
layout: $(STAMP) $(CJK)
	$(BIN)/pubkit check --layout

# Rewrite the visual-regression references; look at the new PNGs before committing them.
references: $(STAMP) $(CJK)
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
bench: $(STAMP) $(CJK)
	$(BIN)/python tools/bench.py --json build/bench.json

lint: $(STAMP)
	$(BIN)/ruff check src tests tools
	$(BIN)/ruff format --check src tests tools
	$(BIN)/mypy
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff format src tests tools
	$(BIN)/ruff check --fix src tests tools

test: lint $(CJK)
	$(BIN)/pytest

clean: $(STAMP)
	$(BIN)/pubkit clean
