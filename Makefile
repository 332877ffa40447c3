# make demo: venv + install + train a GCN teacher and an MLP on Cora (10 seeds each) and print the table.
# make test: venv + install + the test suite.   Data root: $GKD_DATA (default: datasets/).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.gkd-installed

.PHONY: install demo test bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

install: $(STAMP)

demo: $(STAMP)
	mkdir -p runs
	$(BIN)/gkd train --dataset Cora --model gcn --runs 10 --json runs/demo-gcn.json
	$(BIN)/gkd train --dataset Cora --model mlp --runs 10 --json runs/demo-mlp.json

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
