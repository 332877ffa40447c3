"""Scale: mini-batch teacher training throughput and knowledge-book writing, 10^4 to 2*10^6 nodes.

    python benchmarks/scale.py [--sizes 10000,100000,1000000,2000000] [--degree 20] [--quick]

For each size, in a fresh process (so peak RSS is that size's): a synthetic-csbm graph (128 features, 5 classes),
then (1) GraphSAGE teacher training throughput: ``Trainer(loader=...)`` over gkd's neighbour sampler ([10, 10] fan-out,
1,024 seeds per batch, ``--batches`` batches), (2) writing a book: full-graph inference over the CSR adjacency + arrays
+ manifest + sha256.
Peak RSS is reported after generating the graph and after writing the book. The growth exponent is the slope of
log(book seconds) on log(edges), fitted from 10^5 nodes up (10^4 is all fixed overhead).
Writes benchmarks/results/scale.{json,md,png}.
"""
from __future__ import annotations

import argparse
import itertools
import math
import sys
import tempfile
import time
from pathlib import Path

from common import (invocations, md_table, parser, peak_rss_gb, pyplot, ran_as, reply, run_child, save_json,
                    save_markdown, save_png)


class FirstBatches:
    """The first ``n`` batches of ``loader``, as the one epoch of a ``Trainer(loader=...)``, timed: ``seconds`` from
    sampling the first batch to the optimiser step of the last, ``seeds`` the seed nodes trained on."""

    def __init__(self, loader, n: int) -> None:
        self.loader, self.n, self.seeds, self.seconds = loader, n, 0, 0.0

    def __len__(self) -> int:
        return min(self.n, len(self.loader))

    def __iter__(self):
        start = time.perf_counter()
        for batch in itertools.islice(self.loader, self.n):
            yield batch
            self.seeds += batch.batch_size
        self.seconds = time.perf_counter() - start


def one(n: int, degree: float, batches: int) -> dict:
    import torch

    from gkd.datasets import csbm
    from gkd.distill import teacher_knowledge
    from gkd.nn import build_model, to_adj_t
    from gkd.pipeline import write_book
    from gkd.scale import neighbor_loader
    from gkd.train import Trainer

    t = time.perf_counter()
    data = csbm(num_nodes=n, avg_degree=degree, num_features=128, num_classes=5, seed=0,
                num_val=min(500, n // 10), num_test=min(1000, n // 5))
    data.adj_t = to_adj_t(data.edge_index, n)
    gen_s, gen_rss = time.perf_counter() - t, peak_rss_gb()
    torch.manual_seed(0)
    model = build_model("sage", 128, 5, hidden_channels=64)
    loader = neighbor_loader(data, [10, 10], batch_size=1024, seed=0)  # seeds: every node, as before the Trainer
    train = FirstBatches(loader, batches)
    # one "epoch" of `batches` batches, then the Trainer's full-graph validation pass (not timed)
    Trainer(model, data, lr=0.01, weight_decay=0.0, epochs=1, patience=1, loader=train).fit()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        know = teacher_knowledge(model, data.x, data.adj_t, noise=0.0)
        infer_s = time.perf_counter() - t
        write_book(Path(tmp) / "book", data, [know.logits], know.mask, hidden=know.hidden)
        book_s = time.perf_counter() - t
        size = sum(p.stat().st_size for p in (Path(tmp) / "book").iterdir())
    return {"nodes": n, "edges": int(data.edge_index.size(1)), "generate_seconds": gen_s,
            "generate_peak_rss_gb": gen_rss, "train_seeds_per_second": train.seeds / train.seconds,
            "train_batches": batches, "inference_seconds": infer_s, "book_seconds": book_s, "book_mb": size / 1e6,
            "peak_rss_gb": peak_rss_gb(), "sampler": type(loader).__name__}


def slope(xs: list[float], ys: list[float]) -> float:
    lx, ly = [math.log(x) for x in xs], [math.log(y) for y in ys]
    mx, my = sum(lx) / len(lx), sum(ly) / len(ly)
    return sum((a - mx) * (b - my) for a, b in zip(lx, ly)) / sum((a - mx) ** 2 for a in lx)


def main(argv=None) -> int:
    p = parser(__doc__, "10^4 and 10^5 nodes, 5 batches")
    p.add_argument("--sizes", default="10000,100000,1000000,2000000")
    p.add_argument("--degree", type=float, default=20.0)
    p.add_argument("--batches", type=int, default=20)
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.one:
        return reply(one(args.one, args.degree, args.batches))
    start = time.perf_counter()
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    batches = 5 if args.quick else args.batches
    rows = []
    for n in sizes:
        rows.append(run_child(__file__, "--one", n, "--degree", args.degree, "--batches", batches))
        r = rows[-1]
        print(f"{n:>9,d} nodes  train {r['train_seeds_per_second']:,.0f} seeds/s  book {r['book_seconds']:.1f}s  "
              f"peak {r['peak_rss_gb']:.2f} GB", file=sys.stderr)
    fit = [r for r in rows if r["nodes"] >= 100_000] or rows
    exponent = slope([r["edges"] for r in fit], [r["book_seconds"] for r in fit]) if len(fit) > 1 else None
    from gkd.train import environment

    env = environment()
    out = Path(args.out)
    result = {"benchmark": "scale", "quick": args.quick, "degree": args.degree, "rows": rows,
              "book_growth_exponent": exponent, "environment": env}
    result["invocations"] = invocations(None, False, ran_as("scale.py", argv), (time.perf_counter() - start) / 60)
    save_json(out, "scale", result)
    fig, ax = pyplot().subplots(1, 2, figsize=(9, 3.4))
    e = [r["edges"] for r in rows]
    ax[0].loglog(e, [r["book_seconds"] for r in rows], "o-", label="book (inference + files)")
    ax[0].loglog(e, [r["inference_seconds"] for r in rows], "s--", label="full-graph inference")
    ax[0].set_xlabel("edges")
    ax[0].set_ylabel("seconds")
    ax[0].legend(fontsize=8)
    ax[1].semilogx(e, [r["peak_rss_gb"] for r in rows], "o-", label="peak RSS (GB)")
    ax[1].set_xlabel("edges")
    ax[1].set_ylabel("GB")
    fig.suptitle(f"Knowledge book of a 2-layer GraphSAGE, synthetic-csbm degree {args.degree:g}")
    fig.tight_layout()
    save_png(fig, out / "scale.png", dpi=110)
    lines = [f"### Scale: teacher training and book writing ({env['cpu']}, {env['torch_threads']} torch threads)", "",
             *md_table(["nodes", "edges", "train (seeds/s)", "inference (s)", "book total (s)", "book size (MB)",
                        "peak RSS: graph / after book (GB)"],
                       [[f"{r['nodes']:,}", f"{r['edges']:,}", f"{r['train_seeds_per_second']:,.0f}",
                         f"{r['inference_seconds']:.1f}", f"{r['book_seconds']:.1f}", f"{r['book_mb']:.0f}",
                         f"{r['generate_peak_rss_gb']:.2f} / {r['peak_rss_gb']:.2f}"] for r in rows])]
    lines += ["", f"Growth exponent of book time in edges (fit from 10^5 nodes): "
              f"{'—' if exponent is None else f'{exponent:.2f}'}. Sampler: {rows[0]['sampler']} ([10, 10], 1,024 seeds"
              f"/batch, {batches} batches). Regenerate: `python benchmarks/scale.py`.", "",
              "![scale](benchmarks/results/scale.png)"]
    return save_markdown(out, "scale", lines)


if __name__ == "__main__":
    sys.exit(main())
