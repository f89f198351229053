# The two commands: `make dev` (run the whole local stack) and `make test` (run every test).
# Both install what is missing first and reinstall nothing that is already in place.
SHELL := /bin/bash
PY_BOOT ?= python3
VENV := .venv
PY := $(VENV)/bin/python
INFRA_VENV := .venv-infra

.PHONY: dev test lint bench demo setup clean chromium infra-venv

setup: $(VENV)/.installed node_modules/.installed web/vendor/signalr.min.js

$(VENV)/.installed: requirements.txt requirements-dev.txt constraints.txt
	test -x $(PY) || $(PY_BOOT) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The SignalR browser client is copied from npm into web/ (served by the app, never from
# node_modules or a CDN). It is a build artifact: git ignores it, azure.yaml's prepackage
# hook makes it before deploying.
web/vendor/signalr.min.js: node_modules/.installed
	mkdir -p web/vendor
	cp node_modules/@microsoft/signalr/dist/browser/signalr.min.js web/vendor/signalr.min.js

# Debian's Chromium for browser tests (Playwright drives it; no browser download).
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# checkov pins packages that conflict with the app's (openai<1), so infra checks get their
# own venv; pycep-parser 0.7.1 goes first on its path because checkov's pin cannot parse
# the `extension` keyword (tests/infra builds this through `make infra-venv`).
infra-venv: $(INFRA_VENV)/.installed
$(INFRA_VENV)/.installed: requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PY_BOOT) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(INFRA_VENV)/pycep pycep-parser==0.7.1
	touch $@

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

test: setup lint chromium infra-venv
	node --test tests/web/
	$(PY) -m pytest

dev: setup
	$(PY) -m local.dev

bench: setup
	$(PY) -m bench $(ARGS)

# A terminal client against a running stack (`make dev` in another terminal):
#   make demo ARGS='--user alice --prompt "Explain tides"'
demo: setup
	$(PY) -m local.demo $(ARGS)

clean:
	rm -rf $(VENV) $(INFRA_VENV) node_modules .pytest_cache .mypy_cache .ruff_cache
