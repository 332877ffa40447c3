"""``gkd`` command line. Bad input exits with code 2 and one ``gkd: error: ...`` line on stderr, no traceback. An
output that cannot be written (a full disk, an I/O error) is one such line too, saying what was kept, and exit code 1.
A closed standard output (``gkd terms | head -1``) ends the command quietly with exit code 141, what a shell reports
for a command stopped by SIGPIPE, so that ``set -o pipefail`` scripts see what they see for any other command."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .errors import ConfigError, GKDError, PeerRankError, check
from .io import check_output_file, check_output_folder
from .limits import (MAX_EPOCHS, MAX_HEADS, MAX_LAYERS, MAX_REPEATS, MAX_RUNS, MAX_SEED, MAX_TEMPERATURE,
                     MAX_WIDTH)


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

def _finite_option(term: str, option: str, value: object) -> object:
    """YAML reads ``nan`` and ``inf`` as strings (its own spellings are ``.nan``, ``.inf``): name them as the
    non-finite numbers they are meant to be, not as a string where a float was expected."""
    import math

    try:
        number = float(value) if isinstance(value, str) else None
    except ValueError:
        return value
    if number is not None and not math.isfinite(number):
        bound = " >= 0" if option == "weight" else ""
        raise argparse.ArgumentTypeError(f"term_args {term}: {option}={value!r} is not finite; expected a finite "
                                         f"number{bound}")
    return value


def _term_arg(text: str) -> tuple[str, str, object]:
    from .distill.registry import parse_term_arg

    try:
        term, option, value = parse_term_arg(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return term, option, _finite_option(term, option, _key_value(f"{option}={value}")[1])


def _term_weight(text: str) -> tuple[str, object]:
    term, value = _key_value(text)
    return term, _finite_option(term, "weight", value)


def _terms(kind: str) -> str:
    """The registered terms of ``kind``, for help texts (``gkd terms`` has their papers and options)."""
    from .distill.registry import term_names

    return ",".join(term_names(kind))


def _add_data_flags(parser: argparse.ArgumentParser, split: bool = True, default: str = "default Cora") -> None:
    p = parser.add_argument_group("data")
    p.add_argument("--dataset", help="dataset name (see `gkd datasets`) or a graph file (.npz: x, edge_index, y, "
                   f"optional masks); {default}")
    p.add_argument("--dataset-arg", dest="dataset_args", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="loader argument, e.g. homophily=0.2 for synthetic-csbm (repeatable)")
    p.add_argument("--root", help="data root (default: $GKD_DATA, else datasets/)")
    if split:
        p.add_argument("--split", help="replaces the split, drawn per run (run r: seed r): random:TRAIN/VAL/TEST "
                       "with fractions (random:0.6/0.2/0.2) or counts (random:20/500/1000 = per class / val / test), "
                       "or per-class:20/30 (per class, the rest test: GLNN's protocol); graph files without masks "
                       "get random:0.6/0.2/0.2")
        p.add_argument("--metric", help="the score runs select on and report: acc, rocauc, f1-macro, f1-micro, "
                       "balanced-acc, ogb:NAME (default: the dataset's own, acc for most)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (default auto: cuda when present)")


def _add_model_and_run_flags(parser: argparse.ArgumentParser, width_help: str | None = None) -> None:
    p = parser.add_argument_group("model and optimiser")
    p.add_argument("--hidden-channels", type=int, help=width_help or f"hidden width, at most {MAX_WIDTH} (default 64)")
    p.add_argument("--num-layers", type=int,
                   help=f"layers, the output layer included, at most {MAX_LAYERS} (default 2)")
    p.add_argument("--dropout", type=float, help="dropout rate in [0, 1) (default 0.5; GAT 0.6)")
    p.add_argument("--lr", type=float, help="Adam learning rate (default 0.01; GAT 0.005)")
    p.add_argument("--weight-decay", type=float, help="Adam weight decay (default 5e-4)")
    p.add_argument("--epochs", type=int, help=f"maximum epochs, at most {MAX_EPOCHS} (default 500)")
    p.add_argument("--patience", type=int, help="early-stopping patience on validation (default 100)")
    r = parser.add_argument_group("seeds")
    r.add_argument("--runs", type=int, help=f"number of seeds, at most {MAX_RUNS} (default 10)")
    r.add_argument("--seed", type=int, help=f"first seed in [0, {MAX_SEED}]; run r uses seed + r (default 0)")


_TERM_EXAMPLES = {"self": ("time=0.5", "neighbour.warmup=10"), "student": ("neighbour=0.5", "neighbour.steps=5"),
                  "image": ("mhgd=0.5", "mhgd.grad_cap=0.5")}


def _add_term_flags(p, kind: str, weight_dest: str = "term_weights", weight_flag: str = "--term-weight") -> None:
    weight, option = _TERM_EXAMPLES[kind]
    p.add_argument(weight_flag, dest=weight_dest, action="append", type=_term_weight, metavar="TERM=W",
                   help=f"weight of a switched-on term, e.g. {weight}; the same as --term-arg TERM.weight=W "
                   "(repeatable; default: the term's)")
    p.add_argument("--term-arg", dest="term_arg", action="append", type=_term_arg, metavar="TERM.OPTION=VALUE",
                   help=f"an option of a switched-on {kind} term, e.g. {option} (repeatable; `gkd terms "
                   f"--kind {kind}` lists each term's options and defaults)")


def _add_minibatch_flags(parser: argparse.ArgumentParser, who: str = "") -> None:
    b = parser.add_argument_group(f"mini-batches{who} (graphs too big for full-batch steps)")
    b.add_argument("--batch-size", type=int, help="seed nodes per mini-batch of sampled neighbourhoods (default: "
                   "full-batch)")
    b.add_argument("--fanout", help="neighbours sampled per layer, one positive count per layer, e.g. 15,10 "
                   "(default 10 each; for every neighbour give a count above the largest degree)")
    b.add_argument("--refresh", type=int, help="epochs between the loss terms' full-graph refreshes (default 1)")
    b.add_argument("--term-nodes", type=int, help="seed nodes drawn afresh each epoch once a term that teaches "
                   "unlabelled nodes is on (self-distillation, KD); default: every node each epoch")


def _add_teacher_flags(parser: argparse.ArgumentParser) -> None:
    _add_minibatch_flags(parser, " of the teachers")
    p = parser.add_argument_group("teacher")
    p.add_argument("--teacher", help="teacher GNN: gcn | gat | sage (default gcn)")
    p.add_argument("--teacher-method", help="how the teacher is trained: a `gkd train --method` (default "
                   "self-distill)")
    p.add_argument("--teacher-arg", dest="teacher_args", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="any `gkd train` option for the teacher, e.g. hidden_channels=128 (repeatable)")
    p.add_argument("--teachers", type=int, help="teachers per run (seeds seed + 1000 j); their mean probability "
                   f"is the knowledge, at most {MAX_REPEATS} (default 3)")
    p.add_argument("--teacher-generations", type=int, help="born-again generations of each teacher; the last one "
                   f"teaches, at most {MAX_REPEATS} (default 2)")
    p.add_argument("--setting", help="transductive | inductive (default transductive)")
    p.add_argument("--inductive-fraction", type=float, help="share of test nodes held out (default 0.2)")


def _add_output_flags(parser: argparse.ArgumentParser) -> None:
    p = parser.add_argument_group("output")
    p.add_argument("--config", help="YAML file of the same keys (flags win over it)")
    p.add_argument("--json", help="write the results JSON here (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--checkpoint-dir", help="save each finished seed here, so a killed run can --resume")
    p.add_argument("--resume", action="store_true", help="continue the runs saved in --checkpoint-dir")
    p.add_argument("--save", help="write the best-validation seed's model here as an artefact (load with gkd.load, "
                   "answer with gkd predict); refuses a path that is not an earlier artefact")


def _add_train_flags(parser: argparse.ArgumentParser) -> None:
    _add_data_flags(parser)
    m = parser.add_argument_group("backbone")
    m.add_argument("--model", help="gcn | gat | sage | mlp (default gcn)")
    m.add_argument("--heads", type=int, help=f"GAT attention heads, at most {MAX_HEADS} (default 8)")
    _add_model_and_run_flags(parser)
    _add_minibatch_flags(parser)
    p = parser.add_argument_group("method")
    p.add_argument("--method", help=f"plain | self-distill | one self term ({_terms('self')}) (default plain)")
    p.add_argument("--self-distill", dest="self_distill", action="store_true",
                   help="shorthand for --method self-distill")
    p.add_argument("--sd-terms", help=f"self-distillation terms, a comma list of {_terms('self')} "
                   "(default neighbour,time)")
    _add_term_flags(p, "self", "sd_weights", "--sd-weight")
    p.add_argument("--generations", type=int, help="born-again generations: each later one also learns the "
                   f"previous one's predictions, at most {MAX_REPEATS} (default 1)")
    _add_output_flags(parser)


def _add_distill_flags(parser: argparse.ArgumentParser) -> None:
    _add_data_flags(parser)
    _add_teacher_flags(parser)
    s = parser.add_argument_group("student")
    s.add_argument("--student", help="student model: mlp | gcn | gat | sage (default mlp)")
    s.add_argument("--student-batch-size", type=int, help="nodes per mini-batch of a graph-free student (default: "
                   "full-batch): its training steps hold a batch, not the graph (evaluation still covers every "
                   "node); with --term-nodes N, N nodes drawn afresh each epoch")
    _add_model_and_run_flags(parser, width_help=f"student width, at most {MAX_WIDTH} (default 64)")
    p = parser.add_argument_group("method")
    p.add_argument("--method", help="plain | glnn | gkd | bookkd, optionally +TERM, e.g. gkd+amkd (default gkd = "
                   "glnn + position,neighbour)")
    p.add_argument("--terms", help=f"student terms, a comma list of {_terms('student')} (default: the method's; "
                   "gkd: position,neighbour)")
    p.add_argument("--kd-lambda", type=float, help="weight of the label cross-entropy; KD gets 1 - lambda (default 0)")
    p.add_argument("--temperature", type=float,
                   help=f"distillation temperature, at most {MAX_TEMPERATURE:g} (default 1)")
    p.add_argument("--label-smoothing", type=float,
                   help="bookkd's label smoothing on the hard-label term (default 0.1)")
    _add_term_flags(p, "student")
    p.add_argument("--book", help="learn from this knowledge book (gkd book) instead of training a teacher")
    p.add_argument("--no-student-guard", dest="student_guard", action="store_const", const=False,
                   help="do not also train the student plainly (labels only) and without its terms, to keep "
                   "whichever is best on validation (the guard costs up to two more student trainings a seed)")
    _add_output_flags(parser)


def _add_book_flags(parser: argparse.ArgumentParser) -> None:
    _add_data_flags(parser)
    _add_teacher_flags(parser)
    p = parser.add_argument_group("book")
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


def _add_cnn_flags(parser: argparse.ArgumentParser) -> None:
    p = parser.add_argument_group("teacher CNN and graph builder")
    p.add_argument("--dataset", help="image dataset (default digits, the only one)")
    p.add_argument("--teacher-channels", type=_widths, help="teacher CNN block widths (default 32,64,128)")
    p.add_argument("--heads", type=int, help="attention heads of the MHGD graph builder (default 8)")
    p.add_argument("--builder-epochs", type=int, help="self-supervised epochs of the graph builder (default 100)")
    o = parser.add_argument_group("optimiser and seeds")
    o.add_argument("--epochs", type=int, help="maximum epochs (default 150)")
    o.add_argument("--patience", type=int, help="early-stopping patience on validation (default 50)")
    o.add_argument("--lr", type=float, help="learning rate (default 0.01)")
    o.add_argument("--weight-decay", type=float, help="weight decay (default 5e-4)")
    o.add_argument("--batch-size", type=int, help="images per step (default 64)")
    o.add_argument("--seed", type=int, help="first seed; run r uses seed + r and the split of that seed (default 0)")
    out = parser.add_argument_group("output")
    out.add_argument("--config", help="YAML file of the same keys (flags win over it)")
    out.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    from .version import __version__

    parser = _Parser(prog="gkd", description="Knowledge distillation on graphs.")
    parser.add_argument("--version", action="version", version=f"gkd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a backbone on a dataset over several seeds")
    _add_train_flags(train)
    distill = sub.add_parser("distill", help="distil a GNN teacher into a graph-free MLP student over several seeds")
    _add_distill_flags(distill)
    book = sub.add_parser("book", help="train teachers once and write their knowledge book")
    _add_book_flags(book)
    cnn = sub.add_parser("cnn", help="distil a CNN teacher into a small CNN student on images (kd, mhgd, ...)")
    _add_cnn_flags(cnn)
    m = cnn.add_argument_group("student and method")
    m.add_argument("--method", help=f"{' | '.join(_cnn_methods())} (default kd)")
    m.add_argument("--student-channels", type=_widths, help="student CNN block widths (default 4,8,8)")
    m.add_argument("--labelled-fraction", type=float, help="share of training labels the student sees (default 0.2)")
    m.add_argument("--temperature", type=float, help="KD temperature (default 4)")
    _add_term_flags(m, "image")
    m.add_argument("--runs", type=int, help="number of seeds (default 10)")
    m.add_argument("--json", help="write the results JSON here (atomically)")
    graph = sub.add_parser("graph", help="build a dataset-level relational graph from CNN embeddings (MHGD builder)")
    _add_cnn_flags(graph)
    g = graph.add_argument_group("graph")
    g.add_argument("--embeddings", help="an .npz of taps tap0, tap1, ... ([n, D] each, optional y) to build "
                   "from, instead of training a teacher CNN")
    g.add_argument("--k", type=int, help="attention neighbours kept per sample (default 10)")
    g.add_argument("--builder-value", help="others (default here: class-aligned relations) | learned (MHGD's "
                   "distillation builder)")
    g.add_argument("--directed", action="store_true", help="keep edges one-way (neighbour -> sample)")
    g.add_argument("--out", required=True, help="graph file to write (.npz)")
    terms = sub.add_parser("terms", help="list the registered distillation terms: kind, paper, options")
    terms.add_argument("--kind", choices=["self", "student", "image"], help="only terms of this kind")
    terms.add_argument("--markdown", action="store_true", help="print a Markdown table (the docs' term tables)")
    bench = sub.add_parser("bench", help="run benchmark scripts (benchmarks/NAME.py) and refresh the results pages")
    bench.add_argument("names", nargs="*", default=["all"], help=f"benchmarks to run, or all ({', '.join(BENCHMARKS)})")
    bench.add_argument("--quick", action="store_true", help="fewer seeds/epochs, small graphs; writes to --out, "
                       "never over the committed results")
    bench.add_argument("--out", help="results folder (default benchmarks/results; runs/bench-quick with --quick)")
    predict = sub.add_parser("predict", help="answer nodes with a saved model (gkd train/distill --save)")
    predict.add_argument("--model", required=True, help="model artefact directory")
    _add_data_flags(predict, split=False, default="default: the one the model was trained on (its manifest), "
                    "with its --dataset-arg values unless some are given")
    q = predict.add_argument_group("nodes and output")
    q.add_argument("--mask", choices=["train", "val", "test", "all"], help="answer these nodes (default test)")
    q.add_argument("--nodes", help="answer these node ids instead: .npy (1-D integers) or text")
    q.add_argument("--new-nodes", action="store_true", help="answer the nodes as unseen by a graph-free student "
                   "(zero position features): needed on a graph other than the one it was trained on; default "
                   "--mask all")
    q.add_argument("--features", help="answer these feature rows as new nodes, without a graph (graph-free "
                   "students): .npy (2-D numbers) or .csv (numeric rows); not with --dataset, --mask, --nodes")
    q.add_argument("--out", required=True, help="predictions: .npy (class per node, with a P.npy.gkd.json record "
                   "beside it) or .csv (node,prediction,confidence)")
    datasets = sub.add_parser("datasets", help="list the datasets gkd loads and whether each is under the data root")
    datasets.add_argument("--root", help="data root (default: $GKD_DATA, else datasets/)")
    return parser


def _cnn_methods() -> tuple[str, ...]:
    from .pipeline.images import CNN_METHODS

    return tuple(CNN_METHODS)


BENCHMARKS = ("baselines", "self_distill", "gnn2mlp", "inference_latency", "book_cost", "scale", "mhgd_digits",
              "amkd", "minibatch", "ogb_scale", "book_sweep", "feature_ceiling", "position_drop", "teacher_cost",
              "student_guard", "served_accuracy", "published")


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
        print("gkd bench: results pages refreshed", file=sys.stderr)
    return 0


class OutputError(Exception):
    """An output could not be written (a full disk, an I/O error): not bad input, so exit code 1; the message says
    what was written and what was not."""


def _why(e: OSError) -> str:
    return e.strerror or type(e).__name__


class _JsonFirst:
    """The pipelines' ``before_save``: the results JSON written just before the artefact, the small file first, so a
    disk too full for the model keeps the results. A failed write is kept for :func:`_finish` to report (after the
    model is saved, or fails too)."""

    def __init__(self, path: str | None, world: int) -> None:
        self.path, self.world, self.written = path, world, False

    def __call__(self, result: dict) -> None:
        from .io import write_json

        if self.path is None:
            return
        result["world_size"] = self.world
        try:
            write_json(self.path, result)
            self.written = True
        except OSError:
            pass  # _finish writes it again after the model, and reports what was kept if that fails too


def _run_failed(e: OSError, save: str | None, json_path: str | None, json_written: bool = False) -> OutputError:
    """An I/O error inside a run: with ``--save``, most likely the artefact, which the pipelines write after handing
    the results to :class:`_JsonFirst`."""
    if json_written:
        return OutputError(f"results JSON written to {json_path!r}; the model could not be saved to {save!r}: "
                           f"{_why(e)}")
    lost = f"; the results JSON {json_path!r} was not written either" if json_path else ""
    name = e.filename and os.path.realpath(e.filename)
    if save is not None and (name is None or name == os.path.realpath(save) or name.startswith(
            os.path.join(os.path.realpath(os.path.dirname(os.path.abspath(save))), f".{os.path.basename(save)}."))):
        return OutputError(f"the model could not be saved to {save!r}: {_why(e)}{lost}")
    return OutputError(f"the run stopped on an I/O error: {_why(e)}{f' ({e.filename!r})' if e.filename else ''}"
                       f"{lost}")


def _finish(json_path: str | None, result: dict, line: str, saved: str | None) -> None:
    """Write the results JSON (if asked for), then print the summary ``line``. A failed write is one
    :class:`OutputError` naming what was kept: the model (``saved``), and the summary, printed all the same."""
    from .io import write_json

    if json_path is not None:
        try:
            write_json(json_path, result)
        except OSError as e:
            print(line, flush=True)
            kept = f"the model was saved to {saved!r}; " if saved else ""
            raise OutputError(f"{kept}the results JSON could not be written to {json_path!r}: {_why(e)} (the "
                              "summary line above is all that was kept of it)") from None
    print(line)


def _same_or_inside(a: str, b: str) -> bool:
    ra, rb = os.path.realpath(a), os.path.realpath(b)
    if ra == rb or ra.startswith(rb.rstrip(os.sep) + os.sep) or rb.startswith(ra.rstrip(os.sep) + os.sep):
        return True
    try:  # hard links, bind mounts
        return os.path.exists(a) and os.path.exists(b) and os.path.samefile(a, b)
    except OSError:
        return False


def check_distinct_outputs(outputs: dict[str, str | None]) -> None:
    """No two outputs of one run (``{flag: path}``) are one file or folder, or one inside the other: the second write
    would replace the first, or fail after the run trained. Checked before anything loads."""
    given = [(flag, path) for flag, path in outputs.items() if path is not None]
    for i, (flag_a, a) in enumerate(given):
        for flag_b, b in given[i + 1:]:
            check(not _same_or_inside(a, b), f"{flag_a} {a!r} and {flag_b} {b!r} are the same path, or one lies "
                  "inside the other; expected separate paths", ConfigError)


def _check_json_beside_checkpoints(json_path: str | None, checkpoint_dir: str | None) -> None:
    """``--json`` may sit in ``--checkpoint-dir``, but not under a name the checkpoints use."""
    import re

    if json_path is None or checkpoint_dir is None:
        return
    inside = os.path.realpath(os.path.dirname(os.path.abspath(json_path))) == os.path.realpath(checkpoint_dir)
    check(not (inside and re.fullmatch(r"config\.json|run-\d+\.json", os.path.basename(json_path))),
          f"--json {json_path!r} is a file --checkpoint-dir {checkpoint_dir!r} keeps its runs in; expected another "
          "name", ConfigError)


def _flags(args: argparse.Namespace, names: Sequence[str]) -> dict:
    flags = {n: getattr(args, n) for n in names if hasattr(args, n)}
    for key in ("dataset_args", "teacher_args"):
        if flags.get(key) is not None:
            flags[key] = dict(flags[key])
    # --term-weight T=W and --term-arg T.OPTION=V both set term_args[T]
    pairs = [(t, "weight", w) for t, w in (getattr(args, "sd_weights", None) or getattr(args, "term_weights", None)
                                           or [])] + list(getattr(args, "term_arg", None) or [])
    if pairs:
        term_args: dict = {}
        for term, option, value in pairs:
            check(option not in term_args.get(term, {}), f"term option {term}.{option} given twice; expected once",
                  ConfigError)
            term_args.setdefault(term, {})[option] = value
        flags["term_args"] = term_args
    if getattr(args, "self_distill", False):
        if flags.get("method") not in (None, "self-distill"):
            raise ConfigError(f"--self-distill conflicts with --method {flags['method']}")
        flags["method"] = "self-distill"
    return flags


def cmd_train(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import TrainConfig, make_config
    from .pipeline.train import run_training
    from .train import fmt

    from .scale.distributed import dist_env, init_from_env, peer_failures, rank_and_world

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(TrainConfig)]))
    check_distinct_outputs({"--save": args.save, "--json": args.json})
    _check_json_beside_checkpoints(args.json, args.checkpoint_dir)
    if args.json is not None:
        check_output_file(args.json)
    if dist_env()[1] > 1:  # checked before any rank waits on its peers
        check(cfg.batch_size is not None, "multi-process training (torchrun) trains on mini-batches, each rank on "
              "its share of the seed nodes: pass --batch-size", ConfigError)
        check(not (args.checkpoint_dir or args.save), "--checkpoint-dir and --save are not supported under torchrun "
              "yet (ranks would disagree on which seeds remain); run the seeds as separate torchrun jobs instead",
              ConfigError)
    init_from_env()
    rank, world = rank_and_world()
    first = _JsonFirst(args.json, world)
    with peer_failures():
        try:
            result = run_training(cfg, save=args.save, progress=False if args.quiet or rank else None,
                                  checkpoint_dir=args.checkpoint_dir, resume=args.resume, before_save=first)
        except OSError as e:
            raise _run_failed(e, args.save, args.json, first.written) from None
    result["world_size"] = world
    if rank:
        return 0
    _finish(None if first.written else args.json, result,
            f"{result['dataset']}  {result['model']}  {result['method']}  runs={len(result['runs'])}  "
            f"test {fmt(result['test_mean'], result['test_std'])}  val {fmt(result['val_mean'], result['val_std'])}"
            f"  ({result['seconds']:.1f}s)\n{_protocol(result)}", args.save)
    return 0


def _protocol(result: dict) -> str:
    """The experiment, stated: the score, the split protocol, the edge policy, and the arrays a file held unread."""
    unused = result.get("unused_arrays") or []
    return (f"  {result.get('metric', 'acc')}; split: {result.get('split')}; edges: {result.get('edges')}"
            + (f"; unused arrays: {', '.join(unused)}" if unused else ""))


def cmd_distill(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .pipeline.gnn2mlp import DistillConfig, run_distillation
    from .train import fmt

    from .scale.distributed import init_from_env, peer_failures, rank_and_world

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    check_distinct_outputs({"--save": args.save, "--json": args.json, "--book": cfg.book})
    _check_json_beside_checkpoints(args.json, args.checkpoint_dir)
    if args.json is not None:
        check_output_file(args.json)
    if init_from_env() and cfg.book is None:
        raise ConfigError("multi-process distillation (torchrun) learns from a knowledge book: make one with "
                          "`gkd book` and pass --book")
    rank, world = rank_and_world()
    if world > 1 and (args.checkpoint_dir or args.save):
        raise ConfigError("--checkpoint-dir and --save are not supported under torchrun yet (ranks would disagree "
                          "on which seeds remain); run the seeds as separate torchrun jobs instead")
    first = _JsonFirst(args.json, world)
    with peer_failures():
        try:
            r = run_distillation(cfg, progress=False if args.quiet or rank else None,
                                 checkpoint_dir=args.checkpoint_dir, resume=args.resume, save=args.save,
                                 before_save=first)
        except OSError as e:
            raise _run_failed(e, args.save, args.json, first.written) from None
    r["world_size"] = world
    if rank:
        return 0
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
    if "test_features_only_mean" in r:  # what new nodes get: features alone, no positions
        served = fmt(r["test_features_only_mean"], r["test_features_only_std"])
        line += (f"\n  served from features only (new nodes): test {served}  "
                 f"val {fmt(r['val_features_only_mean'], r['val_features_only_std'])}")
    line += f"  ({r['seconds']:.1f}s)\n{_protocol(r)}"
    kept = [x["guard"]["kept"] for x in r["runs"] if "guard" in x]
    for name, what in (("no terms", "the student without its terms"), ("plain", "the plainly trained student")):
        if name in kept:
            line += f"\n  guard: {what} was better on validation and kept in {kept.count(name)} of {len(kept)} seeds"
    _finish(None if first.written else args.json, r, line, args.save)
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .pipeline.gnn2mlp import DistillConfig, make_book

    cfg = make_config(None, _flags(args, [f.name for f in dataclasses.fields(DistillConfig)]), DistillConfig)
    data, stage = make_book(cfg, args.out, float16=args.float16, overwrite=args.overwrite,
                            progress=False if args.quiet else None, checkpoint_dir=args.checkpoint_dir,
                            resume=args.resume)
    print(f"book {args.out}: {data.meta.name}, {len(stage.teacher_logits)} x {cfg.teacher} ({cfg.teacher_method}), "
          f"{cfg.setting}, teacher test {stage.scores['test'] * 100:.2f} ({stage.seconds:.1f}s)")
    return 0


def cmd_cnn(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .pipeline.images import CNNDistillConfig, run_cnn_distillation
    from .train import fmt

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    if args.json is not None:
        check_output_file(args.json)
    r = run_cnn_distillation(cfg, progress=not args.quiet)
    line = f"{cfg.dataset}  {cfg.method}  student {cfg.student_channels}  runs={len(r['runs'])}  " \
           f"test {fmt(r['test_mean'], r['test_std'])}  val {fmt(r['val_mean'], r['val_std'])}"
    if "teacher_test_mean" in r:
        line += f"   teacher test {fmt(r['teacher_test_mean'], r['teacher_test_std'])}"
    _finish(args.json, r, line, None)
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    import dataclasses

    from .config import make_config
    from .pipeline.images import CNNDistillConfig, build_graph

    from .config import read_yaml

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(CNNDistillConfig)]),
                      CNNDistillConfig)
    if args.builder_value is None and "builder_value" not in (read_yaml(args.config, CNNDistillConfig)
                                                              if args.config else {}):
        cfg.builder_value = "others"  # gkd graph's default; distillation (gkd cnn) keeps MHGD's learned values
    k = 10 if args.k is None else args.k
    g = build_graph(cfg, args.out, k=k, directed=args.directed, embeddings=args.embeddings, progress=not args.quiet)
    line = f"graph {args.out}: {g['nodes']} nodes, {g['edges']} edges (k={k})"
    if g["homophily"] is not None:
        line += f", edge homophily {g['homophily']:.3f}"
    print(line)
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from .pipeline.serve import predict_features_to_file, predict_to_file

    try:
        if args.features is not None:
            graph = [flag for flag, value in (("--dataset", args.dataset), ("--dataset-arg", args.dataset_args),
                                              ("--root", args.root), ("--mask", args.mask), ("--nodes", args.nodes))
                     if value is not None]
            check(not graph, f"--features answers feature rows without a graph; {', '.join(graph)} "
                  f"{'does' if len(graph) == 1 else 'do'} not apply: expected --features or a graph", ConfigError)
            rows = predict_features_to_file(args.model, args.features, args.out, device=args.device or "auto")
            print(f"predict {args.out}: {rows} rows of {args.features} with {args.model}")
            return 0
        data, nodes = predict_to_file(args.model, args.out, dataset=args.dataset, root=args.root,
                                      dataset_args=dict(args.dataset_args) if args.dataset_args else None,
                                      mask=args.mask, nodes=args.nodes,
                                      new_nodes=args.new_nodes, device=args.device or "auto")
    except OSError as e:
        if e.filename is None or os.path.abspath(e.filename) != os.path.abspath(args.out):
            raise  # not the write: reading the model or the graph
        raise OutputError(f"the predictions could not be written to {args.out!r}: {_why(e)}; {args.out!r} is as it "
                          "was") from None
    print(f"predict {args.out}: {nodes.numel()} nodes of {data.meta.name} with {args.model}")
    return 0


def cmd_terms(args: argparse.Namespace) -> int:
    from .distill.registry import KINDS, markdown_table, table

    if args.markdown:
        print(markdown_table(args.kind), end="")
        return 0
    rows = table(args.kind)
    for kind in KINDS if args.kind is None else [args.kind]:
        print(f"{kind} terms: {KINDS[kind]}")
        for r in (r for r in rows if r["kind"] == kind):
            print(f"  {r['name']:16s} {r['paper']}  [{r['module']}]\n  {'':16s} {r['summary']}\n  {'':16s} "
                  + " ".join(f"{k}={v}" for k, v in r["options"].items()))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # a reader that left shows here, while it can still be answered quietly
        return code
    except BrokenPipeError:
        # Python's recipe: the interpreter flushes stdout again at exit, so point it at devnull first
        try:
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):  # an in-process stdout with no file descriptor
            pass
        return 141


def _main(argv: Sequence[str] | None) -> int:
    try:
        parser = build_parser()  # reads the term registry, so a broken plugin is reported here
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
        if args.command == "terms":
            return cmd_terms(args)
        if args.command == "datasets":
            from .datasets.registry import describe, resolve_root

            print(f"data root: {resolve_root(args.root)}")
            for name, status, where in describe(args.root):
                print(f"{name:16s} {status:9s} {where}")
            return 0
    except OutputError as e:
        print(f"gkd: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1
    except GKDError as e:
        message = " ".join(str(e).split())  # one line, whatever the message held
        print(f"gkd: error: {message}", file=sys.stderr)
        if isinstance(e, PeerRankError):
            # the process group is broken: tearing down gloo's threads at interpreter exit can abort (SIGABRT)
            # instead of exiting 2, so leave at once (results are written atomically, nothing is half-done)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print("gkd: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
