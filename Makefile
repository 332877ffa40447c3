# make demo: about 1 minute on 2 CPU cores once installed (the first run adds the install, 1.5-2 min): a plain MLP,
#   a self-distilled GCN teacher -> graph-free MLP student on Cora, then the latency of answering unseen nodes.
#   A demo cut for time (2 seeds, 1 teacher of 1 generation, a 100k-node latency graph), not the benchmark: the
#   measured results are in docs/results.md. One torch thread per process, as in the benchmarks (on a busy 2-core
#   machine, two threads made Cora's small operations several times slower).
# make test: venv + install + the test suite.   Data root: $GKD_DATA (default: datasets/).
# make bench: every benchmark, small (--quick), into runs/bench-quick; BENCH="gnn2mlp" (no --quick) for full runs
#   into benchmarks/results, which then refreshes the results pages (benchmarks/run.py; never the installed gkd).
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

demo: export OMP_NUM_THREADS ?= 1
demo: $(STAMP)
	@echo "make demo: about 1 minute on 2 CPU cores. A demo cut for time (2 seeds, 1 teacher of 1 generation),"
	@echo "  so its numbers are not the benchmark's: those are in docs/results.md."
	@mkdir -p runs
	@echo "== 1/3 plain MLP on Cora: no graph, no teacher (the baseline)"
	$(BIN)/gkd train --dataset Cora --model mlp --runs 2 --quiet --json runs/demo-mlp.json
	@echo "== 2/3 self-distilled GCN teacher -> graph-free MLP student (gkd distill)"
	$(BIN)/gkd distill --dataset Cora --teacher gcn --student mlp --method gkd --runs 2 --teachers 1 \
	    --teacher-generations 1 --quiet --json runs/demo-distill.json
	@echo "== 3/3 latency for B unseen nodes: GraphSAGE + 2-hop fetch vs the MLP student (100k-node graph, 1 thread)"
	$(BIN)/python benchmarks/inference_latency.py --quick --threads 1 --out runs
	@echo "make demo: done; JSON, tables and the plot are in runs/"

test: $(STAMP)
	$(BIN)/python -m pytest -q

BENCH ?= all --quick
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH)

clean:
	rm -rf $(VENV) runs .pytest_cache
