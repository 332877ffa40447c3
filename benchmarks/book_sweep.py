"""What a knowledge book saves a user: 8 student configurations from one book vs each retraining its teachers.

    python benchmarks/book_sweep.py [--quick]

On the arxiv-sized synthetic-csbm graph of benchmarks/ogb_scale.py (169,343 nodes, 2.33M directed edges, 128
features, 40 classes), one seed: gkd's default teachers (``gkd distill``'s: 3 self-distilled GCNs of 2 born-again
generations each) are trained once and written as a book; then a sweep of 8 student configurations (width 64 / 256 x
method glnn / gkd x ``kd_lambda`` 0 / 0.5) learns from it, each opening the book afresh. Without a book each
configuration trains its teachers again: the teachers are seeded, so each retraining repeats the measured teacher
stage exactly, and its cost is counted as that measured time (not run 8 times). Totals: book = teachers + writing +
every student (book read included); retrain = 8 x teachers + every student. ``--quick``: 1/10 of the nodes.
Writes benchmarks/results/book_sweep.{json,md}.
"""
from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from common import invocations, md_table, parser, peak_rss_gb, ran_as, save_json, save_markdown
from ogb_scale import scaled

SWEEP = [{"hidden_channels": w, "method": m, "kd_lambda": lam} for w in (64, 256) for m in ("glnn", "gkd")
         for lam in (0.0, 0.5)]


def main(argv=None) -> int:
    p = parser(__doc__, "1/10 of the nodes")
    args = p.parse_args(argv)
    start = time.perf_counter()
    import torch

    from gkd.datasets import DatasetMeta, csbm
    from gkd.nn import to_adj_t
    from gkd.pipeline import DistillConfig, GNNToMLP, open_book, teacher_stage, write_book
    from gkd.train import environment

    pre = scaled("arxiv", args.quick)
    c = pre["classes"]
    data = csbm(num_nodes=pre["nodes"], num_classes=c, avg_degree=2 * pre["edges"] / pre["nodes"],
                homophily=pre["homophily"], num_features=pre["features"], feature_noise=pre["feature_noise"], seed=0,
                train_per_class=pre["train"] // c, num_val=pre["val"], num_test=pre["test"])
    data.meta = DatasetMeta(name="csbm-arxiv" + ("-quick" if args.quick else ""), num_classes=c,
                            split="per-class train / val / test sampled with the graph")
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes)
    cfg = DistillConfig(dataset="synthetic-csbm", runs=1).validate()  # gkd distill's default teachers
    t = time.perf_counter()
    stage = teacher_stage(cfg, data, 0, reliability=False)
    teacher_s = time.perf_counter() - t
    print(f"teachers: {teacher_s:.0f}s ({cfg.teachers} x {cfg.teacher_generations} generations)", file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        write_book(Path(tmp) / "book", data, stage.teacher_logits, stage.observed, hidden=stage.knowledge.hidden,
                   teachers=stage.teachers, teacher_scores=stage.scores)
        book_s = time.perf_counter() - t
        for s in SWEEP:
            t = time.perf_counter()
            book = open_book(Path(tmp) / "book", data)
            est = GNNToMLP(**s, dataset="synthetic-csbm", runs=1).fit(data, teacher=book)
            rows.append({**s, "seconds": time.perf_counter() - t, "val": est.result_["val"],
                         "test": est.result_["test"], "epochs_run": est.result_["epochs_run"]})
            print(f"student {s}: {rows[-1]['seconds']:.0f}s test {rows[-1]['test']:.4f}", file=sys.stderr)
    students = sum(r["seconds"] for r in rows)
    book_total = teacher_s + book_s + students
    retrain_total = len(SWEEP) * teacher_s + students
    result = {"benchmark": "book_sweep", "quick": args.quick, "graph": data.meta.name, "nodes": data.num_nodes,
              "edges": int(data.edge_index.size(1)), "teachers": cfg.teachers,
              "teacher_generations": cfg.teacher_generations, "teacher_method": cfg.teacher_method,
              "teacher_seconds": teacher_s, "teacher_val": stage.scores.get("val"),
              "teacher_test": stage.scores.get("test"), "book_write_seconds": book_s, "students": rows,
              "book_total_seconds": book_total, "retrain_total_seconds": retrain_total,
              "ratio": retrain_total / book_total, "peak_rss_gb": peak_rss_gb(), "environment": environment(),
              "threads": torch.get_num_threads()}
    result["invocations"] = invocations(None, False, ran_as("book_sweep.py", argv), (time.perf_counter() - start) / 60)
    out = Path(args.out)
    save_json(out, "book_sweep", result)
    return save_markdown(out, "book_sweep", report(result))


def report(r: dict) -> list[str]:
    env = r["environment"]
    lines = [f"### A sweep of {len(r['students'])} students from one book vs retraining the teachers ({r['graph']}, "
             f"{r['nodes']:,} nodes; {env.get('cpu', 'unknown CPU')}, {r['threads']} torch threads)", "",
             *md_table(["width", "method", "kd_lambda", "student seconds (book read included)", "test %"],
                       [[s["hidden_channels"], s["method"], s["kd_lambda"], f"{s['seconds']:.0f}",
                         f"{100 * s['test']:.2f}"] for s in r["students"]]), "",
             f"Teachers ({r['teachers']} self-distilled GCNs × {r['teacher_generations']} generations, trained once): "
             f"{r['teacher_seconds']:.0f} s; writing the book {r['book_write_seconds']:.1f} s. Total with the book "
             f"{r['book_total_seconds'] / 60:.1f} min; retraining the teachers for each configuration "
             f"{r['retrain_total_seconds'] / 60:.1f} min ({len(r['students'])} × the measured teacher time + the "
             "same students; the teachers are seeded, so retraining repeats that time exactly; not run 8 times): "
             f"**{r['ratio']:.1f}×** (target ≥ 5×: {'met' if r['ratio'] >= 5 else 'not met'}). "
             "Regenerate: `python benchmarks/book_sweep.py`."]
    return lines


if __name__ == "__main__":
    sys.exit(main())
