# The two quick-start commands: `make train` and `make test`. Each sets up .venv itself.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup train test test-fast clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

# The main job: MNIST with 100 labels, the default recipe (the paper's TS+ME plus FixMatch on one
# strong view, ts-me-fixmatch); data provisioned on first use.
train: setup
	$(BIN)/stochreg train --dataset mnist --labels 100 --method ts-me-fixmatch --seed 0

test: setup
	$(BIN)/python -m pytest

# The unit tests alone (no test that trains a model, see tests/conftest.py): about a minute.
test-fast: setup
	$(BIN)/python -m pytest -m "not end_to_end"

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
