"""What a knowledge book saves: online KD (teacher forward every student epoch) vs book KD, same student, same run.

    python benchmarks/book_cost.py [--nodes 1000000] [--epochs 10] [--quick]

For Cora and a synthetic-csbm graph (average degree 20): a GCN teacher is trained once and written to a book; then the
same MLP student (256 hidden, seed 0) is trained for a fixed number of epochs (no early stop) with either an
OnlineKD term (the frozen teacher runs each epoch) or a GLNN term reading the book. Each (graph, mode) runs in its own
process so its peak RSS is its own. Writes benchmarks/results/book_cost.{json,md}.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from common import (csbm_name, invocations, md_table, parser, peak_rss_gb, ran_as, reply, run_child, save_json,
                    save_markdown)


def graph(name: str, nodes: int):
    from gkd.datasets import DatasetMeta, csbm, load
    from gkd.nn import to_adj_t

    if name == "Cora":
        data = load("Cora")
    else:
        data = csbm(num_nodes=nodes, avg_degree=20, num_features=128, num_classes=5, seed=0)
        data.meta = DatasetMeta(name=name, num_classes=5, split="csbm seed 0")
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes)
    return data


def prepare(name: str, nodes: int, workdir: Path, teacher_epochs: int) -> dict:
    import torch

    from gkd.distill import teacher_knowledge
    from gkd.nn import build_model
    from gkd.pipeline import write_book
    from gkd.train import Trainer

    data = graph(name, nodes)
    torch.manual_seed(0)
    teacher = build_model("gcn", data.num_features, data.meta.num_classes)
    t = time.perf_counter()
    res = Trainer(teacher, data, epochs=teacher_epochs, patience=teacher_epochs).fit()
    train_s = time.perf_counter() - t
    torch.save(teacher.state_dict(), workdir / "teacher.pt")
    t = time.perf_counter()
    know = teacher_knowledge(teacher, data.x, data.adj_t, noise=0.0)
    write_book(workdir / "book", data, [know.logits], know.mask)
    return {"teacher_test": res.test, "teacher_train_seconds": train_s, "book_seconds": time.perf_counter() - t}


def student(name: str, nodes: int, workdir: Path, mode: str, epochs: int) -> dict:
    import torch

    from gkd.distill import GLNN, OnlineKD
    from gkd.nn import build_model
    from gkd.pipeline import open_book
    from gkd.train import Trainer

    data = graph(name, nodes)
    all_nodes = torch.ones(data.num_nodes, dtype=torch.bool)
    t = time.perf_counter()
    if mode == "online":
        teacher = build_model("gcn", data.num_features, data.meta.num_classes)
        teacher.load_state_dict(torch.load(workdir / "teacher.pt", weights_only=True))
        term = OnlineKD(teacher, data.x, data.adj_t, all_nodes)
    else:
        term = GLNN(open_book(workdir / "book", data).knowledge().logits, all_nodes)
    setup_s = time.perf_counter() - t
    torch.manual_seed(0)
    mlp = build_model("mlp", data.num_features, data.meta.num_classes, hidden_channels=256)
    res = Trainer(mlp, data, epochs=epochs, patience=epochs, terms=[term], ce_weight=0.0).fit()
    return {"mode": mode, "setup_seconds": setup_s, "seconds": res.seconds, "epoch_seconds": res.seconds / epochs,
            "test": res.test, "val": res.val, "peak_rss_gb": peak_rss_gb()}


def main(argv=None) -> int:
    p = parser(__doc__, "100k nodes, 3 epochs; Cora 50 epochs")
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--epochs", type=int, default=10, help="student epochs on the big graph (Cora: 200)")
    p.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        name, nodes, workdir, mode = args.child
        return reply(student(name, int(nodes), Path(workdir), mode, args.epochs))
    start = time.perf_counter()
    nodes = 100_000 if args.quick else args.nodes
    big = csbm_name(nodes)
    plan = [("Cora", 2708, 50 if args.quick else 200, 200), (big, nodes, 3 if args.quick else args.epochs, 20)]
    rows = []
    for name, n, epochs, teacher_epochs in plan:
        with tempfile.TemporaryDirectory() as tmp:
            prep = prepare(name, n, Path(tmp), teacher_epochs)
            modes = {}
            for mode in ("online", "book"):
                modes[mode] = run_child(__file__, "--child", name, n, tmp, mode, "--epochs", epochs)
            on, bk = modes["online"], modes["book"]
            rows.append({"graph": name, "nodes": n, "epochs": epochs, **prep, "online": on, "book": bk,
                         "epoch_speedup": on["epoch_seconds"] / bk["epoch_seconds"]})
            print(f"{name}: online {on['epoch_seconds'] * 1e3:.0f} ms/epoch, book {bk['epoch_seconds'] * 1e3:.0f} "
                  f"ms/epoch ({rows[-1]['epoch_speedup']:.2f}x)", file=sys.stderr)
    from gkd.train import environment

    env = environment()
    result = {"benchmark": "book_cost", "quick": args.quick, "rows": rows, "environment": env}
    result["invocations"] = invocations(None, False, ran_as("book_cost.py", argv), (time.perf_counter() - start) / 60)
    save_json(args.out, "book_cost", result)
    table = []
    for r in rows:
        on, bk = r["online"], r["book"]
        table.append([r["graph"], r["epochs"], f"{on['epoch_seconds'] * 1e3:.0f}", f"{bk['epoch_seconds'] * 1e3:.0f}",
                      f"{r['epoch_speedup']:.2f}x", f"{on['seconds']:.1f} / {bk['seconds']:.1f}",
                      f"{on['peak_rss_gb']:.2f} / {bk['peak_rss_gb']:.2f}",
                      f"{on['test'] * 100:.2f} / {bk['test'] * 100:.2f}"])
    lines = [f"### Book KD vs online KD (GCN teacher → MLP student; {env['cpu']}, {env['torch_threads']} threads)",
             "", *md_table(["graph", "epochs", "online: ms/epoch", "book: ms/epoch", "book speed-up",
                            "online / book total (s)", "online / book peak RSS (GB)", "online / book test acc"], table),
             "", "Same student, seed, epochs and evaluation in both modes; an epoch includes the full-graph validation "
             "pass. Book writing time is reported in the JSON. Regenerate: `python benchmarks/book_cost.py`."]
    return save_markdown(args.out, "book_cost", lines)


if __name__ == "__main__":
    sys.exit(main())
