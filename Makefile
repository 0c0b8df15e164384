# Loupe: `make demo` and `make test` do everything on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# Label Studio lives in its own venv, outside the clone, so every clone reuses one install.
export LABEL_STUDIO_HOME ?= $(HOME)/.cache/loupe/labelstudio

.PHONY: install demo test test-fast lint format labelstudio labelstudio-install system-deps \
        compose-check benchmarks clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	@# The CPU build of torch first, so no requirement can pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $@

# Debian packages the suite drives: Chromium for browser tests, docker-compose to validate
# docker-compose.yml. Installed only when missing, and only where apt-get may run.
system-deps:
	@missing=""; \
	 command -v chromium >/dev/null || missing="$$missing chromium"; \
	 command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	 if [ -n "$$missing" ]; then \
	   if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq $$missing; \
	   else echo "Missing Debian packages:$$missing (run: sudo apt-get install$$missing)"; fi; \
	 fi

labelstudio-install:
	bash scripts/labelstudio.sh install

labelstudio: labelstudio-install
	bash scripts/labelstudio.sh start

demo: install
	bash scripts/demo.sh

test: install system-deps labelstudio-install
	$(BIN)/pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/pytest -m "not labelstudio and not browser and not worker" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

compose-check:
	docker-compose -f docker-compose.yml config --quiet

benchmarks: install
	$(BIN)/python benchmarks/import_throughput.py

clean:
	rm -rf var/broker var/test-loupe.sqlite3
