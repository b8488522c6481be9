# `make run` and `make test` each bootstrap .venv themselves on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8085

.PHONY: run demo test test-quick lint docs clean redis-server redis-sentinel coturn luacheck node chromium js-test e2e bench bench-quick bench-go bench-faults

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# An editable install in "compat" mode puts the checkout itself on sys.path,
# so twistd finds twisted/plugins/aleatoria_plugin.py straight from the tree
# (the newer modes hide it behind an import hook Twisted's plugin search does
# not see; setuptools warns that compat is transitional).
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e . --config-settings editable_mode=compat
	touch $@

# What the tests need on top: pytest and its plugins, ruff, import-linter.
$(VENV)/.tested: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

run: $(VENV)/.installed
	$(BIN)/twistd --nodaemon --pidfile= aleatoria --port $(PORT)

# The same, with the demo app at http://localhost:$(PORT)/
demo: $(VENV)/.installed
	$(BIN)/twistd --nodaemon --pidfile= aleatoria --port $(PORT) --demo

# The tests start their own redis-server processes on free ports; they only
# need the binary. They never touch a Redis already running on this machine.
redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "Installing redis-server (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

# A coturn the tests start on free loopback ports (tests/support/turn_server.py);
# the package's own service is left alone.
coturn:
	@command -v turnserver >/dev/null || { \
	  echo "Installing coturn (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq coturn; }

# The Lua scripts are checked with luacheck (tests/integration/test_lua.py).
luacheck:
	@command -v luacheck >/dev/null || { \
	  echo "Installing luacheck (Debian package lua-check)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq lua-check; }

# The load generator and the reference relay run on Node's ws (the suite
# runs them once, small); Debian's nodejs and npm when there is no npm.
node:
	@command -v npm >/dev/null || { \
	  echo "Installing Node.js and npm (Debian packages)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm; }

# The browser tests drive Debian's Chromium.
chromium:
	@command -v chromium >/dev/null || { \
	  echo "Installing Chromium (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; }

tests/e2e/node_modules/.installed: tests/e2e/package.json tests/e2e/package-lock.json | node
	cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error
	touch $@

benchmarks/node_modules/.installed: benchmarks/package.json benchmarks/package-lock.json | node
	cd benchmarks && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# ruff, with the rules in pyproject.toml, the layers' import contracts in
# .importlinter, and mypy (with mypy-zope for the interfaces) on what is
# annotated; make test runs them first.
lint: $(VENV)/.tested
	$(BIN)/ruff check aleatoria tests benchmarks twisted docs
	$(BIN)/lint-imports
	$(BIN)/mypy

$(VENV)/.docs: $(VENV)/.installed
	$(BIN)/pip install --quiet -e '.[docs]' --config-settings editable_mode=compat
	touch $@

# The documentation site in docs/_build/html, warnings as errors: Sphinx for
# the guides and references, pydoctor for the API (api/) from the docstrings.
docs: $(VENV)/.docs
	$(BIN)/sphinx-build -E -W --keep-going -q -b html docs docs/_build/html
	$(BIN)/pydoctor --quiet -W --project-name=Aleatoria --docformat=epytext \
	  --project-base-dir=. --html-output=docs/_build/html/api aleatoria

# Redis Sentinel in the tests is redis-server --sentinel (every build has the
# mode); Debian's redis-sentinel package is installed only if this one lacks it.
redis-sentinel: redis-server
	@redis-server --sentinel 2>&1 | grep -q "Sentinel needs config file" || \
	  command -v redis-sentinel >/dev/null || { \
	  echo "Installing redis-sentinel (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-sentinel; }

test: lint docs $(VENV)/.tested redis-server redis-sentinel coturn luacheck benchmarks/node_modules/.installed
	$(BIN)/python -m pytest -n 2
	$(MAKE) --no-print-directory js-test e2e

# The unit tier alone (tests/unit: no socket, no process), in seconds; the
# integration and system tiers (tests/integration, tests/system) run in make test.
test-quick: $(VENV)/.tested
	$(BIN)/python -m pytest tests/unit -q

clients/js/node_modules/.installed: clients/js/package.json clients/js/package-lock.json | node
	cd clients/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The JavaScript client against real daemons and redis-servers, with Node's
# own WebSocket (Node 20 needs the flag for it; later Nodes have it without)
# and with the ws package (its dev dependency), and in Chromium; the test
# files side by side.
js-test: $(VENV)/.tested redis-server chromium clients/js/node_modules/.installed | node
	cd clients/js && node $$(node -e 'process.exit(typeof WebSocket == "function" ? 0 : 1)' \
	  || echo --experimental-websocket) --test --test-concurrency=3 --test-timeout=120000 \
	  test/*.test.mjs

# The demo app in Chromium, in a private network namespace (needs root, as CI has)
e2e: $(VENV)/.tested redis-server coturn chromium tests/e2e/node_modules/.installed
	tests/e2e/netns.sh node tests/e2e/e2e.mjs

$(VENV)/.bench: $(VENV)/.tested
	$(BIN)/pip install --quiet matplotlib
	touch $@

# Full run (a few minutes): benchmarks/results/<date>.json and .png
bench: $(VENV)/.bench redis-server benchmarks/node_modules/.installed
	$(BIN)/python benchmarks/run.py

# Under 2 minutes, smaller sizes: benchmarks/results/<date>-quick.json
bench-quick: $(VENV)/.bench redis-server benchmarks/node_modules/.installed
	$(BIN)/python benchmarks/run.py --quick

# Side by side with the Go original (docs/explanation/performance.rst says how
# to build it): GO_ORIG_BIN=path/to/binary, STORE=memory or redis; two runs,
# about 10 minutes: benchmarks/results/<date>-versus-go-<store>.json
STORE ?= memory
bench-go: $(VENV)/.bench redis-server benchmarks/node_modules/.installed
	$(BIN)/python benchmarks/versus_go.py $(GO_ORIG_BIN) --store $(STORE) --repeat 2 \
	  --json benchmarks/results/$$(date +%F)-versus-go-$(STORE).json

# Three daemons on one Redis through five faults, every message counted (about 3 minutes):
# a table, and benchmarks/results/<date>-faults.json
bench-faults: $(VENV)/.tested redis-server redis-sentinel
	$(BIN)/python benchmarks/faults.py

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache benchmarks/node_modules docs/_build \
	  tests/e2e/node_modules clients/js/node_modules
