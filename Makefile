# Two commands do all the set-up on a fresh machine:
#   make demo   the example city: real node processes, the three-way comparison, a report
#   make test   lint, types and the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
EXAMPLE := examples/pollution_enforcement

LENDING := examples/lending_club

.PHONY: install demo demo-psi demo-vertical demo-lending demo-cod test lint protos clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# torch is pinned in pyproject.toml (torch==2.13.0: the CPU wheel, never a CUDA build)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test,examples,simulation]'
	touch $@

install: $(INSTALLED)

$(EXAMPLE)/data/.generated: $(INSTALLED) $(EXAMPLE)/generate.py
	$(BIN)/python $(EXAMPLE)/generate.py --out $(EXAMPLE)/data
	touch $@

demo: $(INSTALLED) $(EXAMPLE)/data/.generated
	$(BIN)/federation demo $(EXAMPLE)/experiment.toml

MASS := examples/mass_balance

$(MASS)/data/.generated: $(INSTALLED) $(MASS)/generate.py
	$(BIN)/python $(MASS)/generate.py --out $(MASS)/data
	touch $@

demo-psi: $(INSTALLED) $(MASS)/data/.generated
	$(BIN)/federation psi $(MASS)/psi.toml --start

demo-vertical: $(INSTALLED) $(MASS)/data/.generated
	$(BIN)/federation demo $(MASS)/experiment.toml

$(LENDING)/nodes/data/.prepared: $(INSTALLED) $(LENDING)/prepare.py
	$(BIN)/python $(LENDING)/prepare.py --out $(LENDING)/nodes/data
	touch $@

demo-lending: $(INSTALLED) $(LENDING)/nodes/data/.prepared
	$(BIN)/federation demo $(LENDING)/experiment.toml

demo-cod: $(INSTALLED) $(EXAMPLE)/data/.generated
	$(BIN)/federation demo examples/cod_regression/experiment.toml

lint: $(INSTALLED)
	$(BIN)/ruff check federation tests benchmarks examples
	$(BIN)/mypy

test: lint
	$(BIN)/python -m pytest

protos: $(INSTALLED)
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=. --pyi_out=. --grpc_python_out=. \
		protos/federation/proto/v1/node.proto

clean:
	rm -rf $(VENV) .federation runs $(EXAMPLE)/data $(LENDING)/nodes/data $(MASS)/data
