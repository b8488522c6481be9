# `make run` and `make test` each bootstrap .venv themselves on a fresh clone.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8085

.PHONY: run test clean

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

test: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2

clean:
	rm -rf $(VENV) build *.egg-info twisted/plugins/dropin.cache
