# Two commands do all the set-up (see README.md):
#   make demo   creates .venv, installs ponita, trains/tests/simulates on the bundled ethanol data
#   make test   creates .venv, installs ponita with the test extras, runs the test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test venv clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install -e .

demo: venv
	$(BIN)/ponita demo

test: $(BIN)/python
	$(BIN)/pip install -e ".[test]"
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python -m pytest -m "not slow" --doctest-modules ponita datasets models train tests

clean:
	rm -rf $(VENV) build *.egg-info
