# make demo: venv + install + plain MLP, self-distilled GCN teacher -> MLP student on Cora, inference latency.
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
	$(BIN)/gkd train --dataset Cora --model mlp --runs 10 --quiet --json runs/demo-mlp.json
	$(BIN)/gkd distill --dataset Cora --teacher gcn --student mlp --method gkd --runs 10 --json runs/demo-distill.json
	$(BIN)/python benchmarks/inference_latency.py --quick --out runs

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) runs .pytest_cache
