# driftwatch: `make demo` provisions what is missing and scans a real image; `make test` runs every test.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export DRIFTWATCH_DB ?= $(CURDIR)/.driftwatch/demo.db

.PHONY: demo test engine images install lint clean image

$(BIN)/driftwatch: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

install: $(BIN)/driftwatch

engine:
	scripts/engine.sh up

images: engine
	scripts/base-images.sh

demo: install images image
	mkdir -p "$(dir $(DRIFTWATCH_DB))"
	$(BIN)/driftwatch lint Dockerfile
	$(BIN)/driftwatch scan driftwatch/debian:12 driftwatch/ubuntu:24.04 driftwatch:latest; \
	  rc=$$?; echo; $(BIN)/driftwatch report; echo "(scan exit code $$rc; database $$DRIFTWATCH_DB)"

test: install images
	scripts/run-tests.sh $(BIN)/python

# driftwatch's own image; BASE defaults to the local debootstrapped Debian 12 (no registry here).
IMAGE_BASE ?= driftwatch/debian:12
image: install images
	rm -rf build/wheels
	$(BIN)/pip wheel -q --wheel-dir build/wheels .
	docker build -q --build-arg BASE=$(IMAGE_BASE) -t driftwatch:latest .

lint: install
	$(BIN)/pip install -q ruff mypy types-requests
	$(BIN)/ruff check driftwatch tests
	$(BIN)/mypy driftwatch

clean:
	rm -rf $(VENV) .driftwatch .pytest_cache build
