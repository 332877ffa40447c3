"""OGB scale: the default pipeline on synthetic graphs the size of ogbn-arxiv and ogbn-products, stage by stage.

    python benchmarks/ogb_scale.py [--presets arxiv,products] [--quick]

Each preset is a synthetic-csbm graph with the OGB dataset's node, edge, feature and class counts, split sizes and
edge homophily (OGB's data cannot be downloaded here), run in a fresh process (so its peak RSS is its own) with the
torch threads of the machine, through the library calls ``gkd train|book|distill`` make:

1. generate: the graph and its CSR adjacency;
2. teacher: a self-distilled GraphSAGE (``method="self-distill"``; full-batch for arxiv, sampled mini-batches for
   products). The run is plain training until its validation plateau, where the terms start and the guard holds the
   plain model (tested equal, batch for batch, to a plain run): the plain teacher's scores are that baseline's, its
   time the run's time until then;
3. book: the teacher's knowledge over every node (full-graph CSR inference) written as a knowledge book;
4. student: gkd's default MLP distiller (GLNN + position + neighbour) learning from the book (node mini-batches for
   products);
5. latency: B = 10 random nodes, the student (fused MLP, fetching its rows) vs the teacher fetching its 2-hop
   neighbourhood (``gkd.nn.serving``), medians over 50 batches.

Per stage: wall seconds, peak RSS so far (GB), accuracy. The scaling exponent of a stage is the slope of
log(seconds) on log(edges) between the presets run. ``--quick`` runs both presets at 1/10 of their nodes (same
degree) with fewer epochs. ``--homophily H`` replaces the presets' homophily (the issue's check at 0.3).
Writes benchmarks/results/ogb_scale.{json,md,png}.
"""
from __future__ import annotations

import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import (invocations, load_results, md_table, parser, peak_rss_gb, pyplot, ran_as, reply, run_child,
                    save_json, save_markdown, save_png)

# Node/edge/feature/class counts and split sizes of the OGB datasets (ogb.stanford.edu; edges: undirected pairs);
# homophily: their edge homophily (0.65 arxiv, 0.81 products; Lim et al., NeurIPS 2021). feature_noise 0.6: at 1/10
# of arxiv's size an MLP reaches 25% and GraphSAGE 99% (h=0.65) / 67% (h=0.3); at these degrees a csbm graph is
# easy for a GNN, which is why the h=0.3 rows exist.
PRESETS = {
    "arxiv": {"nodes": 169_343, "edges": 1_166_243, "features": 128, "classes": 40, "train": 90_941, "val": 29_799,
              "test": 48_603, "homophily": 0.65, "feature_noise": 0.6,
              # 2-layer GraphSAGE(256), full-batch: an epoch with its evaluation is ~3.6 s here. Plain training
              # plateaus near epoch 165; 250 epochs leave the terms ~85 (at 300 the run took 20.9 min, over the
              # 20-minute target)
              "teacher": {"hidden_channels": 256, "epochs": 250, "patience": 20},
              "student": {"hidden_channels": 256, "epochs": 300, "patience": 20},
              "target_minutes": 20, "target_rss_gb": None},
    "products": {"nodes": 2_449_029, "edges": 61_859_140, "features": 100, "classes": 47, "train": 196_615,
                 "val": 39_323, "test": 2_213_091, "homophily": 0.81, "feature_noise": 0.6,
                 # sampled mini-batches: ~200 batches of 1,024 seeds an epoch, plus a full-graph evaluation
                 "teacher": {"hidden_channels": 128, "epochs": 20, "patience": 2, "batch_size": 1024,
                             "fanout": "10,5", "term_nodes": 200_000},
                 "student": {"hidden_channels": 256, "epochs": 60, "patience": 5, "batch_size": 4096,
                             "num_samples": 400_000},
                 "target_minutes": 60, "target_rss_gb": 16},
}
STAGES = ("generate", "teacher", "book", "student", "latency")


def scaled(name: str, quick: bool) -> dict:
    """A preset, or its 1/10-node version (same degree, splits scaled, epochs capped) for ``--quick``."""
    p = {**PRESETS[name], "teacher": dict(PRESETS[name]["teacher"]), "student": dict(PRESETS[name]["student"])}
    if quick:
        for k in ("nodes", "edges", "train", "val", "test"):
            p[k] = p[k] // 10
        for stage in ("teacher", "student"):
            p[stage]["epochs"] = min(p[stage]["epochs"], 150)
            p[stage]["patience"] = min(p[stage]["patience"], 10)
        if "term_nodes" in p["teacher"]:
            p["teacher"]["term_nodes"] //= 10
        if "num_samples" in p["student"]:
            p["student"]["num_samples"] //= 10
    return p


def reset_stage_peak() -> None:
    """Linux: reset the process's peak resident set (VmHWM) to its current size, so that the next stage's peak is
    its own (ru_maxrss only ever grows)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def stage_peak_gib() -> float | None:
    """VmHWM (GiB): the peak resident set since the last :func:`reset_stage_peak`; None off Linux."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024 ** 2, 2)
    except OSError:
        pass
    return None


def median_ms(fn, batches: list) -> float:
    """Median milliseconds of ``fn(batch)`` over ``batches``, after 3 warm-up calls, without autograd."""
    import torch

    with torch.inference_mode():
        for b in batches[:3]:
            fn(b)
        times = []
        for b in batches:
            s0 = time.perf_counter()
            fn(b)
            times.append(time.perf_counter() - s0)
    return statistics.median(times) * 1e3


def one(name: str, quick: bool, homophily: float | None, seed: int = 0) -> dict:
    import torch

    from gkd.datasets import DatasetMeta, csbm
    from gkd.distill import teacher_knowledge
    from gkd.nn import FastMLP, sage_predict, to_adj_t
    from gkd.pipeline import DistillOptions, TrainConfig, build_method, distill_mlp, open_book, train_run, write_book

    p = scaled(name, quick)
    h = p["homophily"] if homophily is None else homophily
    stages: dict[str, dict] = {}

    def done(stage: str, start: float, **extra) -> None:
        stages[stage] = {"seconds": time.perf_counter() - start, "stage_peak_gib": stage_peak_gib(), **extra}
        print(f"{name}: {stage} {stages[stage]['seconds']:.0f}s, stage peak {stages[stage]['stage_peak_gib']} GiB "
              f"{extra if extra else ''}", file=sys.stderr, flush=True)
        reset_stage_peak()

    reset_stage_peak()
    t = time.perf_counter()
    c = p["classes"]
    data = csbm(num_nodes=p["nodes"], num_classes=c, avg_degree=2 * p["edges"] / p["nodes"], homophily=h,
                num_features=p["features"], feature_noise=p["feature_noise"], seed=seed, train_per_class=p["train"] // c, num_val=p["val"],
                num_test=p["test"])
    data.meta = DatasetMeta(name=f"csbm-{name}{'-quick' if quick else ''}", num_classes=c,
                            split="per-class train / val / test sampled with the graph")
    data.adj_t = to_adj_t(data.edge_index, data.num_nodes)
    done("generate", t, nodes=data.num_nodes, edges=int(data.edge_index.size(1)),
         train=int(data.train_mask.sum()), homophily=h)

    t = time.perf_counter()
    cfg = TrainConfig(dataset="synthetic-csbm", model="sage", method="self-distill", weight_decay=0.0,
                      dropout=0.5, runs=1, seed=seed, **p["teacher"]).validate()
    factory, _ = build_method(cfg)
    teacher, res = train_run(cfg, data, seed, terms_factory=factory)
    guard = res.stats.get("guard", {})
    done("teacher", t, val=res.val, test=res.test, epochs_run=res.epochs_run, best_epoch=res.best_epoch,
         plain_val=guard.get("baseline_val", res.val), plain_test=guard.get("baseline_test", res.test),
         plain_seconds=guard.get("seconds_before_terms", res.seconds), kept=guard.get("kept", "no terms started"),
         mode="mini-batch" if cfg.batch_size else "full-batch", config=p["teacher"])

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        know = teacher_knowledge(teacher, data.x, data.adj_t, noise=0.0)
        write_book(Path(tmp) / "book", data, [know.logits], know.mask, hidden=know.hidden, float16=True,
                   teachers=[{"model": "sage", "method": "self-distill", "seed": seed}])
        del know
        size = sum(f.stat().st_size for f in (Path(tmp) / "book").iterdir())
        done("book", t, megabytes=size / 1e6)

        t = time.perf_counter()
        g = torch.Generator().manual_seed(seed)
        picks = [torch.randint(data.num_nodes, (10,), generator=g) for _ in range(50)]
        teacher.eval()
        crow, col = data.adj_t.crow_indices(), data.adj_t.col_indices()
        sage_ms = median_ms(lambda ids: sage_predict(list(teacher.layers), data.x, crow, col, ids), picks)
        # the student stage is its own command (gkd distill --book): the teacher's CSR adjacency is not part of it
        del crow, col, data.adj_t
        teacher_latency_s = time.perf_counter() - t

        t = time.perf_counter()
        book = open_book(Path(tmp) / "book", data)
        s = dict(p["student"])
        student, sres = distill_mlp(data, book.knowledge(hidden=False), DistillOptions(method="gkd"), seed=seed,
                                    hidden_channels=s.pop("hidden_channels"), weight_decay=0.0, **s)
        done("student", t, val=sres.val, test=sres.test, epochs_run=sres.epochs_run,
             mode="node mini-batches" if s.get("batch_size") else "full-batch", config=p["student"])

    t = time.perf_counter()
    fast = FastMLP(student.eval())
    mlp_ms = median_ms(lambda ids: fast(data.x, ids), picks)
    done("latency", t - teacher_latency_s, student_ms=mlp_ms, teacher_ms=sage_ms, speedup=sage_ms / mlp_ms)
    total = sum(v["seconds"] for v in stages.values())
    # clear_refs resets the kernel's high-water mark that ru_maxrss reads too: the process peak is the stages' max
    peak = max((v["stage_peak_gib"] for v in stages.values() if v["stage_peak_gib"] is not None), default=None)
    return {"preset": name, "quick": quick, **{k: p[k] for k in ("nodes", "edges", "features", "classes")},
            "homophily": h, "stages": stages, "total_seconds": total,
            "peak_rss_gb": peak if peak is not None else peak_rss_gb(),
            "target_minutes": p["target_minutes"], "target_rss_gb": p["target_rss_gb"],
            "threads": torch.get_num_threads()}


LIKE_FOR_LIKE = ("generate", "book")  # the same work at both sizes; training runs differ (see exponents)


def exponents(rows: list[dict]) -> dict[str, float]:
    """Slope of log(seconds) on log(directed edges) between the smallest and largest preset, for the stages that do
    the same work at both sizes. The teacher and student stages are not comparable across presets (full-batch vs
    sampled mini-batches, different epochs and early stopping), nor is the fixed-size latency stage."""
    if len(rows) < 2:
        return {}
    a, b = min(rows, key=lambda r: r["stages"]["generate"]["edges"]), \
        max(rows, key=lambda r: r["stages"]["generate"]["edges"])
    ea, eb = a["stages"]["generate"]["edges"], b["stages"]["generate"]["edges"]
    if ea == eb:
        return {}
    return {s: math.log(b["stages"][s]["seconds"] / a["stages"][s]["seconds"]) / math.log(eb / ea)
            for s in LIKE_FOR_LIKE}


def main(argv=None) -> int:
    p = parser(__doc__, "both presets at 1/10 of their nodes, fewer epochs")
    p.add_argument("--presets", default="arxiv,products", help="comma list of presets (arxiv, products)")
    p.add_argument("--homophily", type=float, help="replace the presets' edge homophily (e.g. 0.3)")
    p.add_argument("--report-only", action="store_true", help="rewrite the Markdown and plot from the JSON")
    p.add_argument("--one", help=argparse_suppress())
    args = p.parse_args(argv)
    if args.one:
        return reply(one(args.one, args.quick, args.homophily))
    out = Path(args.out)
    names = [n.strip() for n in args.presets.split(",") if n.strip()]
    unknown = [n for n in names if n not in PRESETS]
    if unknown or not names:
        p.error(f"unknown preset(s) {unknown or names}; expected some of {', '.join(PRESETS)}")
    if args.report_only:
        result = load_results(out, "ogb_scale")
        result["exponents"] = exponents([r for r in result["rows"] if not r["quick"]]) or \
            exponents([r for r in result["rows"] if r["quick"]])
    else:
        from gkd.train import environment

        key = "rows" if args.homophily is None else "rows_h"
        # rows of other presets, sizes or homophily are kept; a first run into an empty --out starts a new file
        stored = load_results(out, "ogb_scale") if (out / "ogb_scale.json").is_file() else None
        result = stored or {"benchmark": "ogb_scale", "rows": [], "rows_h": []}
        before = {k: v for k, v in (stored or {}).items() if k in ("invocations", "environment")}
        extra = ["--quick"] if args.quick else []
        if args.homophily is not None:
            extra += ["--homophily", args.homophily]
        start = time.perf_counter()
        fresh: list[dict] = []
        for name in names:
            row = run_child(__file__, "--one", name, *extra)
            fresh.append(row)
            same = ("preset", "homophily", "quick")
            result[key] = [r for r in result[key] if any(r[k] != row[k] for k in same)] + [row]
            result[key].sort(key=lambda r: (r["quick"], r["nodes"], -r["homophily"]))
            result["exponents"] = exponents([r for r in result["rows"] if not r["quick"]]) or \
                exponents([r for r in result["rows"] if r["quick"]])
            kept = any(all(r is not x for x in fresh) for r in result["rows"] + result.get("rows_h", []))
            result["invocations"] = invocations(before, kept, ran_as("ogb_scale.py", argv),
                                                (time.perf_counter() - start) / 60, rows=len(fresh))
            result["environment"] = environment()
            save_json(out, "ogb_scale", result)  # after each preset: a later one that fails loses nothing
    plot(result, out)
    return save_markdown(out, "ogb_scale", report(result))


def argparse_suppress():
    import argparse

    return argparse.SUPPRESS


def plot(result: dict, out: Path) -> None:
    rows = [r for r in result["rows"] if not r["quick"]] or result["rows"]
    if not rows:
        return
    fig, ax = pyplot().subplots(1, 2, figsize=(9, 3.4))
    e = [r["stages"]["generate"]["edges"] for r in rows]
    for s, mark in zip(STAGES, "os^dv"):
        ax[0].loglog(e, [r["stages"][s]["seconds"] for r in rows], f"{mark}-", label=s)
    ax[0].set_xlabel("directed edges")
    ax[0].set_ylabel("seconds")
    ax[0].legend(fontsize=8)
    ax[1].semilogx(e, [r["peak_rss_gb"] for r in rows], "o-")
    ax[1].set_xlabel("directed edges")
    ax[1].set_ylabel("peak RSS (GiB)")
    fig.suptitle("OGB-sized pipeline on synthetic-csbm: seconds per stage and peak memory")
    fig.tight_layout()
    save_png(fig, out / "ogb_scale.png", dpi=110)


def _target(r: dict) -> str:
    minutes = r["total_seconds"] / 60
    ok = minutes <= r["target_minutes"] and (r["target_rss_gb"] is None or r["peak_rss_gb"] <= r["target_rss_gb"])
    want = f"≤ {r['target_minutes']} min" + (f", ≤ {r['target_rss_gb']} GiB" if r["target_rss_gb"] else "")
    if r["quick"]:
        return f"{want} (full size; not judged at 1/10)"
    return f"{want}: **{'met' if ok else 'not met'}**"


def report(result: dict) -> list[str]:
    env = result.get("environment", {})
    lines = [f"### OGB-sized pipeline on synthetic-csbm ({env.get('cpu', 'unknown CPU')}, "
             f"{env.get('torch_threads', '?')} torch threads, 1 seed)", ""]
    table = []
    for r in result["rows"] + result.get("rows_h", []):
        s = r["stages"]
        tch, st, lat = s["teacher"], s["student"], s["latency"]
        started = tch["kept"] in ("terms", "baseline")
        table.append([f"{r['preset']}{' 1/10' if r['quick'] else ''} (h={r['homophily']:g})", f"{r['nodes']:,}",
                      f"{s['generate']['edges']:,}", f"{s['generate']['seconds']:.0f}",
                      f"{tch['seconds']:.0f} ({tch['plain_seconds']:.0f} to the plateau)" if started else
                      f"{tch['seconds']:.0f}", f"{s['book']['seconds']:.0f}", f"{st['seconds']:.0f}",
                      f"{r['total_seconds'] / 60:.1f}", f"{r['peak_rss_gb']:.1f}",
                      f"{100 * tch['plain_test']:.2f} → {100 * tch['test']:.2f} (kept: {tch['kept']})" if started
                      else f"{100 * tch['test']:.2f} (the terms never started)",
                      f"{100 * st['test']:.2f}", f"{lat['teacher_ms']:.2f} / {lat['student_ms']:.3f}", _target(r)])
    lines += md_table(["preset", "nodes", "directed edges", "generate (s)", "teacher (s)", "book (s)",
                       "student (s)", "total (min)", "peak RSS (GiB)", "teacher test %: plain → self-distilled",
                       "MLP student test %", "B=10 latency (ms): teacher / student", "target"], table)
    ex = result.get("exponents") or {}
    if ex:
        lines += ["", "Scaling exponent of the stages that do the same work at both sizes (slope of log seconds on "
                  "log edges, between the presets): " + ", ".join(f"{k} {v:.2f}" for k, v in ex.items())
                  + ". The teacher and student stages are not comparable across presets (full-batch vs sampled "
                  "mini-batches, different epochs and early stopping)."]
    lines += ["", "Teacher: 2-layer GraphSAGE, self-distilled; the plain figure is the same run's guard baseline at "
              "the validation plateau, i.e. plain training (tested equal), and its time the run's time until then. "
              "Student: gkd's default MLP distiller from the book. Peak RSS: the process's, in GiB (per-stage peaks "
              "in the JSON). Regenerate: `python benchmarks/ogb_scale.py` (`--homophily 0.3` adds the "
              "low-homophily rows, `--quick` the 1/10 ones).", "",
              "![ogb_scale](benchmarks/results/ogb_scale.png)"]
    return lines


if __name__ == "__main__":
    sys.exit(main())
