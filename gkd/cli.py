"""``gkd`` command line. Bad input exits with code 2 and one ``gkd: error: ...`` line on stderr, no traceback."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from .errors import ConfigError, GKDError, check, check_int
from .io import check_new_path, check_output_file, check_output_folder
from .limits import MAX_EPOCHS, MAX_HEADS, MAX_RUNS, MAX_SEED, MAX_WIDTH


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``gkd: error: ...`` line (as for every other bad input), not a usage
    block; raised as :class:`ConfigError` so that :func:`main` returns 2 in-process too."""

    def error(self, message: str):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _key_value(text: str) -> tuple[str, object]:
    from .config import parse_yaml

    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    try:
        return key.strip(), parse_yaml(value, f"value of {key.strip()!r}")
    except ConfigError as e:  # argparse reports only ArgumentTypeError's own message
        raise argparse.ArgumentTypeError(str(e)) from None


# Every flag default is None: an unset flag never overrides the YAML file (defaults < YAML < flags).

def _add_data_flags(p: argparse.ArgumentParser, split: bool = True) -> None:
    p.add_argument("--dataset", help="dataset name (see `gkd datasets`) or a graph file (.npz: x, edge_index, y, "
                   "optional masks); default Cora")
    p.add_argument("--dataset-arg", dest="dataset_args", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="loader argument, e.g. homophily=0.2 for synthetic-csbm (repeatable)")
    p.add_argument("--root", help="data root (default: $GKD_DATA, else datasets/)")
    if split:
        p.add_argument("--split", help="random:TRAIN/VAL/TEST replaces the split, seeded by the run: fractions "
                       "(random:0.6/0.2/0.2) or counts (random:20/500/1000 = per class / val / test); graph files "
                       "without masks get random:0.6/0.2/0.2")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto: cuda when present)")


def _add_model_and_run_flags(p: argparse.ArgumentParser, width_help: str | None = None) -> None:
    p.add_argument("--hidden-channels", type=int, help=width_help or f"hidden width, at most {MAX_WIDTH}")
    p.add_argument("--num-layers", type=int, help="layers, the output layer included (default 2)")
    p.add_argument("--dropout", type=float, help="dropout rate in [0, 1) (default 0.5; GAT 0.6)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 0.01; GAT 0.005)")
    p.add_argument("--weight-decay", type=float, help="Adam weight decay (default 5e-4)")
    p.add_argument("--epochs", type=int, help=f"maximum epochs, at most {MAX_EPOCHS} (default 500)")
    p.add_argument("--patience", type=int, help="early-stopping patience on validation (default 100)")
    p.add_argument("--runs", type=int, help=f"number of seeds, at most {MAX_RUNS} (default 10)")
    p.add_argument("--seed", type=int, help=f"first seed in [0, {MAX_SEED}]; run r uses seed + r (default 0)")


def _add_teacher_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--teacher", help="teacher GNN: gcn | gat | sage (default gcn)")
    p.add_argument("--teacher-method", help="how the teacher is trained: plain | self-distill | ... "
                   "(default self-distill)")
    p.add_argument("--teacher-arg", dest="teacher_args", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="any `gkd train` option for the teacher, e.g. hidden_channels=128 (repeatable)")
    p.add_argument("--teachers", type=int, help="teachers per run (seeds seed + 1000 j); their mean probability "
                   "is the knowledge (default 3)")
    p.add_argument("--teacher-generations", type=int, help="born-again generations of each teacher; the last one "
                   "teaches (default 2)")
    p.add_argument("--setting", help="transductive | inductive (default transductive)")
    p.add_argument("--inductive-fraction", type=float, help="share of test nodes held out (default 0.2)")


def _add_output_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML file of the same keys (flags win over it)")
    p.add_argument("--json", help="write the results JSON here (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--checkpoint-dir", help="save each finished seed here, so a killed run can --resume")
    p.add_argument("--resume", action="store_true", help="continue the runs saved in --checkpoint-dir")
    p.add_argument("--save", help="write the best-validation seed's model here as an artefact (load with gkd.load, "
                   "answer with gkd predict); refuses a path that is not an earlier artefact")


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    _add_data_flags(p)
    p.add_argument("--model", help="gcn | gat | sage | mlp (default gcn)")
    p.add_argument("--heads", type=int, help=f"GAT attention heads, at most {MAX_HEADS}")
    _add_model_and_run_flags(p)
    p.add_argument("--method", help="plain | self-distill | label-smoothing | tf-kd-reg (default plain)")
    p.add_argument("--self-distill", dest="self_distill", action="store_true",
                   help="shorthand for --method self-distill")
    p.add_argument("--sd-terms", help="comma list of depth,time,neighbour,normalised (default neighbour,time)")
    p.add_argument("--sd-weight", dest="sd_weights", action="append", type=_key_value, metavar="TERM=W",
                   help="weight of one self-distillation term (repeatable; default 1)")
    p.add_argument("--sd-warmup", type=int, help="epochs of validation plateau before the neighbour term starts (default 20)")
    p.add_argument("--sd-restart", action=argparse.BooleanOptionalAction,
                   help="reload the best-validation weights when the neighbour term starts (default on)")
    p.add_argument("--sd-temperature", type=float, help="depth term's KD temperature (default 4)")
    p.add_argument("--generations", type=int, help="born-again generations: each later one also learns the "
                   "previous one's predictions (default 1)")
    p.add_argument("--ls-epsilon", type=float, help="label-smoothing epsilon (default 0.1)")
    p.add_argument("--tfkd-weight", type=float, help="tf-kd-reg: weight of the KL to the virtual teacher (0.1)")
    p.add_argument("--tfkd-temperature", type=float, help="tf-kd-reg: its temperature (default 20)")
    _add_output_flags(p)


def _add_distill_flags(p: argparse.ArgumentParser) -> None:
    _add_data_flags(p)
    _add_teacher_flags(p)
    p.add_argument("--student", help="student model (default mlp)")
    _add_model_and_run_flags(p, width_help=f"student width, at most {MAX_WIDTH} (default 64)")
    p.add_argument("--method", help="plain | glnn | gkd | bookkd, optionally +TERM, e.g. gkd+amkd (default gkd)")
    p.add_argument("--terms", help="structure-aware terms added to glnn: position,neighbour,reliability,rsd,self")
    p.add_argument("--kd-lambda", type=float, help="weight of the label cross-entropy; KD gets 1 - lambda (default 0)")
    p.add_argument("--temperature", type=float, help="distillation temperature (default 1)")
    p.add_argument("--term-weight", dest="term_weights", action="append", type=_key_value, metavar="TERM=W",
                   help="weight of a switched-on student term, e.g. neighbour=0.5 (repeatable; default 1)")
    p.add_argument("--position-dim", type=int, help=f"position features, at most {MAX_WIDTH} (default 64)")
    p.add_argument("--neighbour-steps", type=int, help="neighbour term: propagation steps of the teacher's "
                   "predictions (default 10)")
    p.add_argument("--neighbour-alpha", type=float, help="neighbour term: restart weight in [0, 1) (default 0.1)")
    p.add_argument("--reliability-noise", type=float, help="KRD feature-noise scale for the reliability scores "
                   "(default 1)")
    p.add_argument("--rsd-batch", type=int, help="rsd term: nodes per similarity batch (default 512)")
    p.add_argument("--label-smoothing", type=float, help="bookkd's label smoothing on the hard-label term (0.1)")
    p.add_argument("--book", help="learn from this knowledge book (gkd book) instead of training a teacher")
    _add_attack_flags(p)
    _add_output_flags(p)


def _add_attack_flags(p: argparse.ArgumentParser) -> None:
    """BSS/AMKD knobs, shared by `gkd cnn` and `gkd distill` (their defaults differ by modality: see the configs)."""
    p.add_argument("--eta", type=float, help="BSS/AMKD attack step size")
    p.add_argument("--attack-steps", type=int, help="BSS/AMKD attack iterations at most (default 10)")
    p.add_argument("--attack-samples", type=int, help="base samples attacked per step at most")
    p.add_argument("--refresh", type=int, help="epochs before an adversarial sample is made again")
    p.add_argument("--margin", type=float, help="AMKD triplet margin")
    p.add_argument("--triplet-weight", type=float, help="AMKD triplet weight (default 1)")


def _add_book_flags(p: argparse.ArgumentParser) -> None:
    _add_data_flags(p)
    _add_teacher_flags(p)
    p.add_argument("--temperature", type=float, help="temperature of the stored soft labels (default 1)")
    p.add_argument("--seed", type=int, help="seed of the first teacher; teacher j uses seed + 1000 j (default 0)")
    p.add_argument("--out", required=True, help="book directory to create")
    p.add_argument("--float16", action="store_true", help="store logits, soft labels and hidden as float16")
    p.add_argument("--overwrite", action="store_true", help="replace an existing book (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--checkpoint-dir", help="save each trained teacher here, so a killed run can --resume")
    p.add_argument("--resume", action="store_true", help="reuse the teachers saved in --checkpoint-dir")


def _widths(text: str) -> list[int]:
    try:
        widths = [int(c) for c in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of integers, e.g. 4,8,8") from None
    return widths


def _add_cnn_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="image dataset (digits)")
    p.add_argument("--teacher-channels", type=_widths, help="teacher CNN block widths (default 32,64,128)")
    p.add_argument("--heads", type=int, help="attention heads of the MHGD graph builder (default 8)")
    p.add_argument("--builder-epochs", type=int, help="self-supervised epochs of the graph builder (default 100)")
    p.add_argument("--epochs", type=int, help="maximum epochs (default 150)")
    p.add_argument("--patience", type=int, help="early-stopping patience on validation (default 50)")
    p.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    p.add_argument("--weight-decay", type=float, help="weight decay (default 5e-4)")
    p.add_argument("--batch-size", type=int, help="images per step (default 64)")
    p.add_argument("--seed", type=int, help="first seed; run r uses seed + r and the split of that seed (default 0)")
    p.add_argument("--config", help="YAML file of the same keys (flags win over it)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="gkd", description="Knowledge distillation on graphs.")
    parser.add_argument("--version", action="version", version=f"gkd {__import__('gkd').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a backbone on a dataset over several seeds")
    _add_train_flags(train)
    distill = sub.add_parser("distill", help="distil a GNN teacher into a graph-free MLP student over several seeds")
    _add_distill_flags(distill)
    book = sub.add_parser("book", help="train teachers once and write their knowledge book")
    _add_book_flags(book)
    cnn = sub.add_parser("cnn", help="distil a CNN teacher into a small CNN student on images (kd, mhgd, ...)")
    _add_cnn_flags(cnn)
    cnn.add_argument("--method", help=f"{' | '.join(CNN_METHOD_NAMES)} (default kd)")
    cnn.add_argument("--student-channels", type=_widths, help="student CNN block widths (default 4,8,8)")
    cnn.add_argument("--labelled-fraction", type=float, help="share of training labels the student sees (0.2)")
    cnn.add_argument("--temperature", type=float, help="KD temperature (default 4)")
    cnn.add_argument("--term-weight", dest="weights", action="append", type=_key_value, metavar="TERM=W",
                     help="weight of a distillation term, e.g. mhgd=0.5 (repeatable; default 1)")
    cnn.add_argument("--grad-cap", type=float, help="MHGD gradient norm at most this times the CE's (default 1)")
    _add_attack_flags(cnn)
    cnn.add_argument("--runs", type=int, help="number of seeds (default 10)")
    cnn.add_argument("--json", help="write the results JSON here (atomically)")
    graph = sub.add_parser("graph", help="build a dataset-level relational graph from CNN embeddings (MHGD builder)")
    _add_cnn_flags(graph)
    graph.add_argument("--embeddings", help="an .npz of taps tap0, tap1, ... ([n, D] each, optional y) to build "
                       "from, instead of training a teacher CNN")
    graph.add_argument("--k", type=int, default=10, help="attention neighbours kept per sample (default 10)")
    graph.add_argument("--builder-value", default="others", help="others (default: class-aligned relations) | "
                       "learned (MHGD's distillation builder)")
    graph.add_argument("--directed", action="store_true", help="keep edges one-way (neighbour -> sample)")
    graph.add_argument("--out", required=True, help="graph file to write (.npz)")
    bench = sub.add_parser("bench", help="run benchmark scripts (benchmarks/NAME.py) and refresh the README tables")
    bench.add_argument("names", nargs="*", default=["all"], help=f"benchmarks to run, or all ({', '.join(BENCHMARKS)})")
    bench.add_argument("--quick", action="store_true", help="fewer seeds/epochs, small graphs; writes to --out, "
                       "never over the README's results")
    bench.add_argument("--out", help="results folder (default benchmarks/results; runs/bench-quick with --quick)")
    predict = sub.add_parser("predict", help="answer nodes with a saved model (gkd train/distill --save)")
    predict.add_argument("--model", required=True, help="model artefact directory")
    _add_data_flags(predict, split=False)
    predict.add_argument("--mask", choices=["train", "val", "test", "all"], help="answer these nodes (default test)")
    predict.add_argument("--nodes", help="answer these node ids instead: .npy (1-D integers) or text")
    predict.add_argument("--new-nodes", action="store_true", help="answer the nodes as unseen by the model (zero "
                         "position features): needed on a graph other than the one it was trained on")
    predict.add_argument("--out", required=True, help="predictions: .npy (class per node) or .csv "
                         "(node,prediction,confidence)")
    datasets = sub.add_parser("datasets", help="list the datasets gkd loads and whether each is under the data root")
    datasets.add_argument("--root", help="data root (default: $GKD_DATA, else datasets/)")
    return parser


BENCHMARKS = ("baselines", "self_distill", "gnn2mlp", "inference_latency", "book_cost", "scale", "mhgd_digits",
              "amkd")
CNN_METHOD_NAMES = ("student", "kd", "mhgd", "mhgd+kd", "bss", "amkd")


def cmd_bench(args: argparse.Namespace) -> int:
    import subprocess
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    folder = root / "benchmarks"
    if not (folder / "report.py").is_file():
        raise ConfigError(f"gkd bench runs the scripts in the repository's benchmarks/ folder, not found at "
                          f"{str(folder)!r}; install gkd from a clone (pip install -e .)")
    names = list(BENCHMARKS) if args.names == ["all"] else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        raise ConfigError(f"unknown benchmark(s) {unknown}; expected some of {', '.join(BENCHMARKS)} or all")
    # resolved here: the scripts run with the repository as their working directory
    out = Path(args.out).resolve() if args.out else (root / "runs" / "bench-quick" if args.quick else
                                                     folder / "results")
    check_output_folder(out, "--out", create=True)
    for name in names:
        cmd = [sys.executable, str(folder / f"{name}.py"), "--out", str(out)] + (["--quick"] if args.quick else [])
        print(f"gkd bench: {name} ({' '.join(cmd[1:])})", file=sys.stderr)
        start = time.perf_counter()
        code = subprocess.call(cmd, cwd=root, stdout=sys.stderr)
        if code != 0:
            raise GKDError(f"benchmark {name!r} failed with exit code {code}")
        print(f"gkd bench: {name} done in {time.perf_counter() - start:.0f}s -> {out}", file=sys.stderr)
    if out.resolve() == (folder / "results").resolve():
        subprocess.check_call([sys.executable, str(folder / "report.py")], cwd=root)
        print("gkd bench: README.md results sections refreshed", file=sys.stderr)
    return 0


def _flags(args: argparse.Namespace, names: Sequence[str]) -> dict:
    flags = {n: getattr(args, n) for n in names if hasattr(args, n)}
    for key in ("dataset_args", "sd_weights", "teacher_args", "term_weights", "weights"):
        if flags.get(key) is not None:
            flags[key] = dict(flags[key])
    if getattr(args, "self_distill", False):
        if flags.get("method") not in (None, "self-distill"):
            raise ConfigError(f"--self-distill conflicts with --method {flags['method']}")
        flags["method"] = "self-distill"
    return flags


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import TrainConfig, make_config
    from .io import write_json
    from .pipeline.train import run_training
    from .train import fmt

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(TrainConfig)]))
    if args.json is not None:
        check_output_file(args.json)
    result = run_training(cfg, save=args.save, progress=False if args.quiet else None,
                          checkpoint_dir=args.checkpoint_dir, resume=args.resume)
    if args.json:
        write_json(args.json, result)
    print(f"{result['dataset']}  {result['model']}  {result['method']}  runs={len(result['runs'])}  "
          f"test {fmt(result['test_mean'], result['test_std'])}  val {fmt(result['val_mean'], result['val_std'])}  "
          f"({result['seconds']:.1f}s)")
    return 0


def cmd_distill(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .pipeline.gnn2mlp import DistillConfig, run_distillation
    from .io import write_json
    from .train import fmt

    from .scale.distributed import init_from_env, rank_and_world

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    if args.json is not None:
        check_output_file(args.json)
    if init_from_env() and cfg.book is None:
        raise ConfigError("multi-process distillation (torchrun) learns from a knowledge book: make one with "
                          "`gkd book` and pass --book")
    rank, world = rank_and_world()
    if world > 1 and (args.checkpoint_dir or args.save):
        raise ConfigError("--checkpoint-dir and --save are not supported under torchrun yet (ranks would disagree "
                          "on which seeds remain); run the seeds as separate torchrun jobs instead")
    r = run_distillation(cfg, progress=False if args.quiet or rank else None, checkpoint_dir=args.checkpoint_dir,
                         resume=args.resume, save=args.save)
    r["world_size"] = world
    if rank:
        return 0
    if args.json:
        write_json(args.json, r)
    line = (f"{r['dataset']}  {r['teacher']}({r['teacher_method']}) -> {r['student']}  {r['method']}"
            f"{'+' + '+'.join(r['terms']) if r['terms'] else ''}  {r['setting']}  runs={len(r['runs'])}\n"
            f"  teacher test {fmt(r['teacher_test_mean'], r['teacher_test_std'])}   "
            f"student test {fmt(r['test_mean'], r['test_std'])}  val {fmt(r['val_mean'], r['val_std'])}")
    if r["setting"] == "inductive":
        line += (f"\n  inductive: student tran {fmt(r['test_tran_mean'], r['test_tran_std'])}  "
                 f"ind {fmt(r['test_ind_mean'], r['test_ind_std'])}  prod {fmt(r['test_mean'], r['test_std'])}   "
                 f"teacher tran {fmt(r['teacher_test_tran_mean'], r['teacher_test_tran_std'])}  "
                 f"ind {fmt(r['teacher_test_ind_mean'], r['teacher_test_ind_std'])}")
        if "test_ind_graph_aided_mean" in r:
            line += f"\n  graph-aided ind {fmt(r['test_ind_graph_aided_mean'], r['test_ind_graph_aided_std'])}"
    print(line + f"  ({r['seconds']:.1f}s)")
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    import dataclasses

    from .book import check_overwritable, write_book
    from .config import make_config
    from .datasets import load
    from .pipeline.gnn2mlp import DistillConfig, teacher_stage
    from .nn.device import resolve_device
    from .train.trainer import check_test_nodes

    cfg = make_config(None, _flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    check_new_path(args.out, "--out")
    check_overwritable(args.out, args.overwrite)  # before the teachers train: only a book may be replaced
    from .train.checkpoint import RunCheckpoint

    ckpt = RunCheckpoint(args.checkpoint_dir, {"command": "book", **cfg.to_dict()}, args.resume)
    data = load(cfg.dataset, cfg.root, random_split=cfg.split, **cfg.dataset_args)
    check_test_nodes(data)
    data = data.to(resolve_device(cfg.device))
    stage = teacher_stage(cfg, data, 0, reliability=True, progress=False if args.quiet else None, checkpoint=ckpt)
    k = stage.knowledge
    write_book(args.out, data, stage.teacher_logits, stage.observed, temperature=cfg.temperature, hidden=k.hidden,
               reliability=k.reliability, teachers=stage.teachers, teacher_scores=stage.scores,
               setting={"name": cfg.setting, "inductive_fraction": cfg.inductive_fraction, "seed": cfg.seed},
               float16=args.float16, overwrite=args.overwrite)
    print(f"book {args.out}: {data.meta.name}, {len(stage.teacher_logits)} x {cfg.teacher} ({cfg.teacher_method}), "
          f"{cfg.setting}, teacher test {stage.scores['test'] * 100:.2f} ({stage.seconds:.1f}s)")
    return 0


def cmd_cnn(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .distill.cnn import CNNDistillConfig, run_cnn_distillation
    from .io import write_json
    from .train import fmt

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    if args.json is not None:
        check_output_file(args.json)
    r = run_cnn_distillation(cfg, progress=not args.quiet)
    if args.json:
        write_json(args.json, r)
    s = r["summary"]
    line = f"{cfg.dataset}  {cfg.method}  student {cfg.student_channels}  runs={len(r['runs'])}  " \
           f"test {fmt(s['test_mean'], s['test_std'])}  val {fmt(s['val_mean'], s['val_std'])}"
    if "teacher_test_mean" in s:
        line += f"   teacher test {fmt(s['teacher_test_mean'], s['teacher_test_std'])}"
    print(line)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import dataclasses

    import torch

    from .config import make_config
    from .distill.cnn import CNNDistillConfig, cnn_teacher_stage
    from .graph import MultiHeadGraphBuilder, relational_graph, save_graph
    from .graph.relational import edge_homophily, read_taps

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    check_output_file(args.out, "--out")
    check_int("k", args.k, 1, ConfigError)  # its upper bound (the sample count) is checked once samples exist
    if args.embeddings:
        feats, y = read_taps(args.embeddings)
        builder = MultiHeadGraphBuilder([f.size(1) for f in feats], heads=cfg.heads, value=cfg.builder_value)
        builder.fit(feats, epochs=cfg.builder_epochs, seed=cfg.seed, progress=not args.quiet)
        source = {"embeddings": str(args.embeddings)}
        x = feats[-1]
    else:
        split = cfg.split(0)
        teacher = cnn_teacher_stage(split, cfg, cfg.seed, progress=not args.quiet)
        builder, feats, y = teacher.builder, teacher.feats, split.y
        source = {"dataset": cfg.dataset, "teacher_channels": cfg.teacher_channels, "seed": cfg.seed,
                  "teacher_test": teacher.test}
        from .nn.cnn import FeatureTaps

        with torch.no_grad(), FeatureTaps(teacher.model.eval(), ["embed"]) as taps:
            x = taps(split.x)[1][0]
    data = relational_graph(builder, feats, k=args.k, symmetric=not args.directed, x=x, y=y)
    save_graph(args.out, data, {"k": args.k, "heads": cfg.heads, "symmetric": not args.directed,
                                "builder_value": cfg.builder_value, **source})
    line = f"graph {args.out}: {data.num_nodes} nodes, {data.edge_index.size(1)} edges (k={args.k})"
    if y is not None:
        line += f", edge homophily {edge_homophily(data):.3f}"
    print(line)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .datasets import load
    from .pipeline import load as load_model
    from .pipeline.serve import check_predictions_out, check_split, predict, read_nodes, write_predictions

    from .nn.device import resolve_device

    check_predictions_out(args.out)
    device = resolve_device(args.device or "auto")
    model = load_model(args.model, device=device)
    data = load(args.dataset or "Cora", args.root, **dict(args.dataset_args or [])).to(device)
    if args.nodes is not None:
        check(args.mask is None, "--nodes and --mask both given; expected one of them", ConfigError)
        nodes = read_nodes(args.nodes)
    else:
        import torch

        mask = args.mask or "test"
        if mask != "all":
            check_split(model, data)
        nodes = torch.arange(data.num_nodes) if mask == "all" else data[f"{mask}_mask"].nonzero().view(-1)
    logits = predict(model, data, nodes, new_nodes=args.new_nodes)
    write_predictions(args.out, nodes, logits)
    print(f"predict {args.out}: {nodes.numel()} nodes of {data.meta.name} with {args.model}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command == "train":
            return cmd_train(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "book":
            return cmd_book(args)
        if args.command == "distill":
            return cmd_distill(args)
        if args.command == "cnn":
            return cmd_cnn(args)
        if args.command == "graph":
            return cmd_graph(args)
        if args.command == "predict":
            return cmd_predict(args)
        if args.command == "datasets":
            from .datasets.registry import describe, resolve_root

            print(f"data root: {resolve_root(args.root)}")
            for name, status, where in describe(args.root):
                print(f"{name:16s} {status:9s} {where}")
            return 0
    except GKDError as e:
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"gkd: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gkd: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
