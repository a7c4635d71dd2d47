# One-command set-up and checks for the course.
#   make lab     install what is missing, then open JupyterLab
#   make test    install what is missing, unit tests, every notebook under nbval
#   make test-full-smoke   the full profile's code on the tiny hub (random weights), then with dummy API keys
#   make test-colab        replays the Colab set-up cell beside an older torch
#   make student           writes student/: the notebooks without their solutions (a release artefact)
#   make test-latest       the drift check: newest releases of every dependency, report in build/latest/report.md
#   make site              builds build/site/: the executed notebooks as a static website (Sphinx + MyST-NB)
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
APT_PACKAGES := $(shell cat binder/apt.txt)  # one list, shared with repo2docker (binder/)
CELL_TIMEOUT := 600
NOTEBOOKS ?= $(sort $(wildcard notebooks/[0-9][0-9]_*.ipynb))
TEST_RESULTS := build/results
TINY_HUB := build/tiny-hub
SMOKE_RESULTS := build/results-full-smoke
# chapters that call an LLM: replayed with API keys set, against the local endpoint standing in for the real APIs
KEYED_NOTEBOOKS ?= $(filter notebooks/03_% notebooks/05_% notebooks/06_% notebooks/08_% notebooks/09_% notebooks/10_%,$(NOTEBOOKS))
export GENAI_PROFILE ?= small

.PHONY: install system-packages lab test unit-test notebook-test execute report bench-llm checkpoints clean \
	tiny-hub test-full-smoke test-colab repository-url student site test-latest

install: $(STAMP)

$(STAMP): requirements.txt requirements-course.txt requirements-no-deps.txt pyproject.toml
	@$(MAKE) --no-print-directory system-packages
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps -r requirements-no-deps.txt  # why: in the file
	touch $(STAMP)

# chromium: the browser test drives JupyterLab in it (tests/test_browser.py; skipped without it)
system-packages:
	@if command -v espeak-ng >/dev/null && command -v ffmpeg >/dev/null && command -v sox >/dev/null \
			&& command -v chromium >/dev/null; then \
		echo "system packages present: $(APT_PACKAGES) chromium"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) chromium >/dev/null; \
	else \
		echo "NOTE: the speech chapter needs $(APT_PACKAGES), the browser test chromium. Install them with:"; \
		echo "  sudo apt-get install -y $(APT_PACKAGES) chromium    (macOS: brew install espeak-ng ffmpeg sox)"; \
	fi

lab: install
	$(VENV)/bin/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root)

test: unit-test notebook-test

# Two at a time (pytest-xdist): each kernel and test uses one torch thread, so two keep both cores busy.
PARALLEL := -n 2 --dist loadfile

unit-test: install site
	$(PY) -m pytest tests -q $(PARALLEL) -m "not after_notebooks and not tiny_hub and not colab_replay"

# Runs every notebook in the small profile, two at a time (--dist loadfile keeps each notebook's cells in one
# kernel); their results go to build/results, and the time and memory bars of each chapter are then checked on them.
notebook-test: install
	rm -rf $(TEST_RESULTS)
	GENAI_RESULTS_DIR=$(CURDIR)/$(TEST_RESULTS) $(PY) -m pytest --nbval-lax \
		--nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider -q $(PARALLEL) $(NOTEBOOKS)
	GENAI_RESULTS_DIR=$(CURDIR)/$(TEST_RESULTS) $(PY) -m pytest tests -q -m after_notebooks

# Random-weight, tiny-config checkpoints at the real model ids (scripts/build_tiny_hub.py); not committed.
tiny-hub: $(TINY_HUB)/COMPLETE

$(TINY_HUB)/COMPLETE: $(STAMP) helpers/models.py scripts/build_tiny_hub.py $(wildcard scripts/tiny_hub/*.py)
	$(PY) scripts/build_tiny_hub.py

# The full profile's unchanged code on the tiny hub, on this machine's CPU (or GPU): every cell runs, and only
# the asserts that need trained weights are skipped (each says so).
# Two notebooks at a time, as notebook-test.
test-full-smoke: tiny-hub
	rm -rf $(SMOKE_RESULTS)
	GENAI_PROFILE=full GENAI_HUB=tiny GENAI_RESULTS_DIR=$(CURDIR)/$(SMOKE_RESULTS) $(PY) -m pytest --nbval-lax \
		--nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider -q $(PARALLEL) $(NOTEBOOKS)
	$(PY) -m pytest tests -q -m tiny_hub
	@# The keyed path: dummy keys, and the SDK clients of the real APIs sent to a local stand-in (helpers.api_stand_in)
	GENAI_PROFILE=full GENAI_HUB=tiny GENAI_API_STAND_IN=1 GENAI_RESULTS_DIR=$(CURDIR)/$(SMOKE_RESULTS)/keyed \
		ANTHROPIC_API_KEY=dummy-key-for-the-stand-in OPENAI_API_KEY=dummy-key-for-the-stand-in \
		$(PY) -m pytest --nbval-lax --nbval-cell-timeout=$(CELL_TIMEOUT) -p no:cacheprovider -q $(PARALLEL) \
		$(KEYED_NOTEBOOKS)

# Replays the Colab set-up cell in a fresh venv that holds the oldest torch of the tested range (about 3 GB of
# downloads, several minutes; not part of make test): torch is kept, and chapter 00 runs.
test-colab: $(STAMP)
	$(PY) -m pytest tests -q -m colab_replay

# Re-executes notebooks in place (small profile) so committed outputs are fresh.
execute: install
	for notebook in $(NOTEBOOKS); do \
		$(VENV)/bin/jupyter nbconvert --to notebook --execute --inplace \
			--ExecutePreprocessor.timeout=$(CELL_TIMEOUT) "$$notebook" || exit 1; \
	done
	$(MAKE) --no-print-directory report

report: install
	$(PY) -m helpers.report

# The website, in a venv of its own (its Sphinx stack stays out of the course's); tests/test_browser.py checks it.
SITE_VENV := build/site-venv
site: $(SITE_VENV)/.installed
	$(SITE_VENV)/bin/python scripts/build_site.py

$(SITE_VENV)/.installed: requirements-site.txt
	$(PYTHON) -m venv $(SITE_VENV)
	$(SITE_VENV)/bin/pip install --quiet -r requirements-site.txt
	touch $@

# The drift check (weekly in .github/workflows/latest.yml): its own venv, the newest release of every package.
test-latest: install
	$(PY) scripts/test_latest.py

# The student edition: solution cells (tagged "solution") replaced by a note; tests/test_student_edition.py checks it.
student: install
	$(PY) scripts/student_edition.py --out student

# The local LLM endpoint's batching and prefix cache, measured (results/llm_server_bench.json; about a minute).
bench-llm: install
	$(PY) scripts/bench_llm_server.py

# Publishing the course under another URL: make repository-url URL=https://github.com/ORG/NAME
repository-url:
	$(PYTHON) scripts/set_repository_url.py $(URL)

checkpoints: install
	for script in scripts/train_*.py; do $(PY) "$$script" || exit 1; done

clean:
	rm -rf $(VENV) build .pytest_cache
	find . -name __pycache__ -o -name .ipynb_checkpoints | xargs rm -rf
