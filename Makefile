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

# Noto Sans and Serif CJK for Chinese, Japanese and Korean lessons: too large for the
# repository (about 100 MB), so installed into the package's theme, where the theme looks
# for them (git-ignored): the Sans fonts from npm (pinned in tools/fonts), the Serif ones
# from Debian's fonts-noto-cjk (pinned here by version and checksum), cut to the Sans
# fonts' characters per region (tools/fonts/serif_cjk.py). A pubkit without them reports
# CJK text as characters without a glyph.
CJK_DIR := src/pubkit/theme/fonts/cjk
CJK := $(CJK_DIR)/.installed
CJK_FONTS := fonts-sc/fonts/NotoSansHans fonts-tc/fonts/NotoSansHant fonts-jp/fonts/NotoSansJP fonts-kr/fonts/NotoSansKR
SERIF_CJK_DEB := http://deb.debian.org/debian/pool/main/f/fonts-noto-cjk/fonts-noto-cjk_20220127+repack1-1_all.deb
SERIF_CJK_SHA256 := 4a2515eb6db3978b897fef9709ed0d2b1f4c6c4df4d83d6c4ef65f71f1b1f502
SERIF_CJK_TMP := tools/fonts/serif-cjk

$(CJK): tools/fonts/package.json tools/fonts/package-lock.json tools/fonts/serif_cjk.py $(STAMP)
	cd tools/fonts && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p $(CJK_DIR)
	for font in $(CJK_FONTS); do \
	  cp tools/fonts/node_modules/@embedpdf/$$font-Regular.otf tools/fonts/node_modules/@embedpdf/$$font-Bold.otf $(CJK_DIR)/; \
	done
	cp tools/fonts/node_modules/@embedpdf/fonts-sc/LICENSE $(CJK_DIR)/OFL.txt
	rm -rf $(SERIF_CJK_TMP) && mkdir -p $(SERIF_CJK_TMP)
	curl -sSfL --retry 2 -o $(SERIF_CJK_TMP)/fonts.deb $(SERIF_CJK_DEB)
	echo "$(SERIF_CJK_SHA256)  $(SERIF_CJK_TMP)/fonts.deb" | sha256sum -c --quiet
	dpkg-deb --fsys-tarfile $(SERIF_CJK_TMP)/fonts.deb | tar -x -C $(SERIF_CJK_TMP) --strip-components=6 \
	  ./usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc ./usr/share/fonts/opentype/noto/NotoSerifCJK-Bold.ttc
	dpkg-deb --fsys-tarfile $(SERIF_CJK_TMP)/fonts.deb | tar -xO ./usr/share/doc/fonts-noto-cjk/copyright \
	  > $(CJK_DIR)/COPYRIGHT-serif.txt
	$(BIN)/python tools/fonts/serif_cjk.py $(SERIF_CJK_TMP) $(CJK_DIR)
	rm -rf $(SERIF_CJK_TMP)
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
