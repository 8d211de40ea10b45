# kehoach — developer and CI entry points.
# Everything installs from package registries only (PyPI, Debian apt); no
# browser/toolchain downloads at run time (never `playwright install`).

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SOFFICE := /usr/bin/soffice
LINT_PATHS := cli engine workflows notifications portal tests
ARGS ?=

export PREFECT_SERVER_ANALYTICS_ENABLED := false

.PHONY: setup venv chromium libreoffice test test-long demo lint bench

setup: $(STAMP) chromium libreoffice

$(VPY):
	$(PYTHON) -m venv $(VENV)

# Reinstall only when pyproject.toml is newer than the stamp.
$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -e '.[dev]'
	touch $(STAMP)

chromium:
	@if [ -x $(CHROMIUM) ]; then \
		echo "chromium: $(CHROMIUM) present"; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "chromium: installing Debian package 'chromium' with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; \
	else \
		echo "chromium: $(CHROMIUM) is missing and this is not root;" \
		     "run 'sudo apt-get update && sudo apt-get install -y chromium'." \
		     "Browser tests will be skipped (they fail when CI=true)."; \
	fi

# LibreOffice renders the consolidated report to PDF; poppler-utils' pdftoppm makes the
# PNGs of its pages the tests keep (tests/test_report_document.py).
PDFTOPPM := /usr/bin/pdftoppm
libreoffice:
	@if [ -x $(SOFFICE) ] && [ -x $(PDFTOPPM) ]; then \
		echo "libreoffice: $(SOFFICE) and $(PDFTOPPM) present"; \
	elif [ "$$(id -u)" = "0" ]; then \
		echo "libreoffice: installing Debian packages 'libreoffice-writer-nogui' and 'poppler-utils' with apt-get"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
			libreoffice-writer-nogui fonts-dejavu-core fonts-liberation2 poppler-utils; \
	else \
		echo "libreoffice: $(SOFFICE) or $(PDFTOPPM) is missing and this is not root;" \
		     "run 'sudo apt-get install -y libreoffice-writer-nogui poppler-utils'." \
		     "Document rendering tests will be skipped (they fail when CI=true)."; \
	fi

test: setup
	scripts/run-tests $(ARGS)

# The longer seeded run of the crash and attack harness (README "Reliability and
# security"): 400 kill points chosen by SEED, 1,000 draws per fuzzer (seeded by SEED in
# tests/test_portal_forms_fuzz.py; the others replay their derandomized draws, more of them).
SEED ?= 20261201
test-long: setup
	KEHOACH_CRASH_POINTS=400 KEHOACH_CRASH_SEED=$(SEED) KEHOACH_FUZZ_EXAMPLES=1000 \
	KEHOACH_FUZZ_SEED=$(SEED) scripts/run-tests tests/test_crash_harness.py \
	tests/test_portal_fuzz.py tests/test_portal_forms_fuzz.py tests/test_loader_fuzz.py $(ARGS)

demo: setup
	$(VENV)/bin/kehoach demo $(ARGS)

lint: setup
	$(VENV)/bin/ruff check $(LINT_PATHS) .vulture_whitelist.py
	$(VENV)/bin/ruff format --check $(LINT_PATHS) .vulture_whitelist.py
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture

# Every benchmark on SQLite and PostgreSQL; writes BENCHMARKS.md (ARGS="--only intake,sweep").
bench: setup
	$(VPY) benchmarks/run_all.py $(ARGS)
