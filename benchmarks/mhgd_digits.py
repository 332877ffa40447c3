"""MHGD on real images (sklearn digits): student alone, KD, MHGD, MHGD+KD; and GCN on the dataset-level graph.

    python benchmarks/mhgd_digits.py [--runs 10] [--jobs 2] [--quick]

Protocol (gkd.vision.digits): per seed a stratified 55/15/30 split; the teacher CNN (32,64,128) learns from every
training label; the tiny student CNN (4,8,8) sees 20% of the training labels, and distillation terms read the teacher
on every training image. Test accuracy at the best-validation epoch, mean ± std over seeds; one teacher and one frozen
MHGD builder per seed, shared by every row. The dataset-level graph is built over all 1,797 images (k = 10,
symmetric) by a second builder with value="others" (class-aligned relations, see gkd.vision.builder); a GCN and an MLP then learn on the teacher's embeddings with the students' labels. A last part
measures the graph builder's peak memory against n (random clustered embeddings, one process per n).
Writes benchmarks/results/mhgd_digits.{json,md}.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time

from common import (invocations, load_results, md_table, parser, ran_as, reply, run_child, run_pool, save_json,
                    save_markdown)

METHODS = ("student", "kd", "mhgd", "mhgd+kd")


def one_seed(task: tuple[int, dict]) -> dict:
    import torch

    from gkd.pipeline import TrainConfig, train_run
    from gkd.train import seed_everything
    from gkd.vision import (CNNDistillConfig, FeatureTaps, MultiHeadGraphBuilder, cnn_student_run, cnn_teacher_stage,
                            edge_homophily, relational_graph, with_split)

    seed, overrides = task
    cfg = CNNDistillConfig(**overrides).validate()
    split = cfg.split(seed)
    teacher = cnn_teacher_stage(split, cfg, seed)
    out = {"seed": seed, "teacher": {"test": teacher.test, "val": teacher.val, "seconds": teacher.seconds}}
    for m in METHODS:
        out[m] = cnn_student_run(split, teacher, cfg, m, seed)
    with torch.no_grad(), FeatureTaps(teacher.model.eval(), ["embed"]) as taps:
        emb = taps(split.x)[1][0]
    # the graph's builder reconstructs from the other samples (value="others"): class-aligned relations
    seed_everything(seed)
    builder = MultiHeadGraphBuilder([f.size(1) for f in teacher.feats], heads=cfg.heads, value="others")
    builder.fit([f[split.train] for f in teacher.feats], epochs=cfg.builder_epochs, seed=seed)
    graph = relational_graph(builder, teacher.feats, k=10, x=emb, y=split.y)
    data = with_split(graph, split.train[split.labelled], split.val, split.test, split.num_classes, "digits-mhgd")
    out["graph"] = {"edges": int(graph.edge_index.size(1)), "homophily": edge_homophily(graph)}
    for model in ("gcn", "mlp"):
        tc = TrainConfig(model=model, hidden_channels=64, dropout=0.5, epochs=300, patience=100, lr=0.01)
        _, fit = train_run(tc, data, seed, progress=False)
        out["graph"][model] = {"test": fit.test, "val": fit.val}
    return out


def memory_child(n: int, k: int) -> dict:
    import torch
    import torch.nn.functional as F

    from gkd.vision import MultiHeadGraphBuilder, relational_graph

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    feats = [F.normalize(torch.randn(10, d, generator=g)[y] + torch.randn(n, d, generator=g), dim=-1)
             for d in (64, 128)]
    builder = MultiHeadGraphBuilder([64, 128], heads=8).freeze()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    graph = relational_graph(builder, feats, k=k)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"n": n, "k": k, "edges": int(graph.edge_index.size(1)), "extra_peak_mb": (peak - before) / 1024,
            "dense_nxn_mb": n * n * 4 / 2 ** 20}


def table(rows: list[dict], key) -> tuple[float, float]:
    from gkd.train import mean_std

    m, s = mean_std([key(r) for r in rows])
    return m, (s or 0.0)


def main(argv=None) -> int:
    p = parser(__doc__, "2 seeds, 25 epochs, small memory sizes", jobs=True)
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--memory-child", nargs=2, type=int, help=argparse.SUPPRESS)
    p.add_argument("--memory-only", action="store_true", help="re-measure the builder's memory, keep the seeds' "
                   "results already in --out")
    args = p.parse_args(argv)
    if args.memory_child:
        return reply(memory_child(*args.memory_child))
    start = time.perf_counter()
    from gkd.train import environment, fmt
    from gkd.vision import CNNDistillConfig

    overrides = {"epochs": 25, "patience": 25, "builder_epochs": 10} if args.quick else {}
    runs = 2 if args.quick else args.runs
    old = None
    if args.memory_only:
        old = load_results(args.out, "mhgd_digits")  # its seeds are kept
        seeds = old["seeds"]
        runs = len(seeds)
    else:
        seeds = run_pool(one_seed, [(s, overrides) for s in range(runs)], args.jobs, "mhgd_digits")
    sizes = (2_000, 8_000) if args.quick else (4_000, 16_000, 32_000)  # attention over n is O(n^2 d) compute
    memory = [run_child(__file__, "--memory-child", n, 10) for n in sizes]
    cfg = CNNDistillConfig(**overrides).validate()
    summary = {m: dict(zip(("test_mean", "test_std"), table(seeds, lambda r, m=m: r[m]["test"]))) for m in METHODS}
    summary["teacher"] = dict(zip(("test_mean", "test_std"), table(seeds, lambda r: r["teacher"]["test"])))
    for model in ("gcn", "mlp"):
        summary[f"graph_{model}"] = dict(zip(("test_mean", "test_std"),
                                             table(seeds, lambda r, m=model: r["graph"][m]["test"])))
    env = environment()
    protocol = cfg.split(0).protocol
    result = {"benchmark": "mhgd_digits", "quick": args.quick, "config": cfg.to_dict(), "protocol": protocol,
              "summary": summary, "seeds": seeds, "memory": memory, "environment": env}
    result["invocations"] = invocations(old, old is not None, ran_as("mhgd_digits.py", argv),
                                        (time.perf_counter() - start) / 60)
    save_json(args.out, "mhgd_digits", result)

    def cell(key: str) -> str:
        return fmt(summary[key]["test_mean"], summary[key]["test_std"])

    base, kd = summary["student"]["test_mean"], summary["kd"]["test_mean"]
    per_epoch = {m: table(seeds, lambda r, m=m: r[m]["seconds_per_epoch"])[0] for m in METHODS}
    lines = [f"### MHGD on digits ({runs} seeds; teacher CNN {tuple(cfg.teacher_channels)}, student CNN "
             f"{tuple(cfg.student_channels)}, {protocol['labelled']} of {protocol['train/val/test'][0]} training "
             f"labels for students)", "",
             *md_table(["student", "test acc", "vs student alone", "s/epoch"],
                       [["teacher CNN (all training labels)", cell("teacher"), "", ""]]
                       + [[m, cell(m), "" if m == "student" else f"{(summary[m]['test_mean'] - base) * 100:+.2f}",
                           f"{per_epoch[m]:.3f}"] for m in METHODS])]
    hom = table(seeds, lambda r: r["graph"]["homophily"])[0]
    lines += ["", f"Dataset-level graph from a frozen builder with `value='others'` (1,797 nodes, k = 10, symmetric, edge homophily "
              f"{hom:.3f}); nodes carry the teacher's embeddings, the students' labels train:", "",
              *md_table(["model on teacher embeddings", "test acc"],
                        [["GCN on the relational graph", cell("graph_gcn")], ["MLP (no graph)", cell("graph_mlp")]]),
              "", "Graph builder memory (random embeddings, 8 heads, k = 10; peak RSS growth while building):", "",
              *md_table(["n", "edges", "extra peak (MB)", "a dense n×n float32 would be (MB)"],
                        [[f"{m['n']:,}", f"{m['edges']:,}", f"{m['extra_peak_mb']:.0f}", f"{m['dense_nxn_mb']:.0f}"]
                         for m in memory])]
    mhgd = summary["mhgd"]["test_mean"]
    lines += ["", f"Targets: MHGD ≥ student alone + 2 points: **{'met' if mhgd - base >= 0.02 else 'not met'}** "
              f"({(mhgd - base) * 100:+.2f}); MHGD above KD: **{'met' if mhgd > kd else 'not met'}** "
              f"({(mhgd - kd) * 100:+.2f}). {env['cpu']}, {env['torch_threads']} thread(s) per seed. "
              "Regenerate: `python benchmarks/mhgd_digits.py`."]
    return save_markdown(args.out, "mhgd_digits", lines)


if __name__ == "__main__":
    sys.exit(main())
