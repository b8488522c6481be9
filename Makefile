# `make run` and `make test` each bootstrap .venv themselves on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8085

.PHONY: run test clean redis-server

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# An editable install in "compat" mode puts the checkout itself on sys.path,
# so twistd finds twisted/plugins/aleatoria_plugin.py straight from the tree.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/pip install --quiet -e '.[test]' --config-settings editable_mode=compat
	touch $@

run: $(VENV)/.installed
	$(BIN)/twistd --nodaemon --pidfile= aleatoria --port $(PORT)

# The tests start their own redis-server processes on free ports; they only
# need the binary. They never touch a Redis already running on this machine.
redis-server:
	@command -v redis-server >/dev/null || { \
	  echo "Installing redis-server (Debian package)"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }

test: $(VENV)/.installed redis-server
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache
