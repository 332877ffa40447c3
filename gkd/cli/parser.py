"""``gkd``'s argument parser: the flags of every command, their help texts, and the translation of parsed flags
into config keys (:func:`flags`). Nothing here imports torch: ``gkd --help`` and ``gkd --version`` answer at once.
The registered term names that help texts list come from :data:`BUILTIN_TERMS` unless plugins may add some (then
from the registry, which imports them)."""
from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from typing import Sequence

from ..errors import ConfigError, check
from ..limits import MAX_EPOCHS, MAX_HEADS, MAX_LAYERS, MAX_REPEATS, MAX_RUNS, MAX_SEED, MAX_TEMPERATURE, MAX_WIDTH

# gkd's own terms by kind, in registration order, and the ``gkd cnn`` methods: the help texts' lists, read without
# importing the registry (which imports torch). tests/test_cli_fast.py checks them equal to the registry's built-ins
# and to the image pipeline's CNN_METHODS.
BUILTIN_TERMS: dict[str, tuple[str, ...]] = {
    "self": ("depth", "time", "neighbour", "normalised", "label-smoothing", "tf-kd-reg"),
    "student": ("kd", "bookkd", "neighbour", "self", "label-smoothing", "rsd", "amkd"),
    "transform": ("reliability", "position"),  # typed in --terms too
    "image": ("bss", "amkd", "mhgd", "kd"),
}
CNN_METHOD_NAMES: tuple[str, ...] = ("student", "kd", "mhgd", "mhgd+kd", "bss", "amkd")
MAX_THREADS = 1024


class _HelpFormatter(argparse.HelpFormatter):
    def _split_lines(self, text: str, width: int) -> list[str]:  # never inside a name such as label-smoothing
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False, break_long_words=False)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``gkd: error: ...`` line (as for every other bad input), not a usage
    block; raised as :class:`ConfigError` so that :func:`main` returns 2 in-process too. No flag is matched by a
    prefix (``--epoch``), which would change meaning the day another flag starts the same."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **{"allow_abbrev": False, "formatter_class": _HelpFormatter, **kwargs})

    def error(self, message: str):
        raise ConfigError(f"{message} (see {self.prog} --help)")


def _key_value(text: str) -> tuple[str, object]:
    from ..config import parse_yaml

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
    from ..distill.registry import parse_term_arg

    try:
        term, option, value = parse_term_arg(text)
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return term, option, _finite_option(term, option, _key_value(f"{option}={value}")[1])


def _term_weight(text: str) -> tuple[str, object]:
    term, value = _key_value(text)
    return term, _finite_option(term, "weight", value)


def _plugins_possible() -> bool:
    """Whether terms other than gkd's own may be registered: ``$GKD_PLUGINS`` names some, an installed package
    offers some (the ``gkd.terms`` entry points), or the registry is loaded already (a Python caller may have
    registered its own)."""
    if os.environ.get("GKD_PLUGINS", "").strip() or "gkd.distill.registry" in sys.modules:
        return True
    return any(_names_term_entry_points(entry or ".") for entry in sys.path)


_ENTRY_GROUP = re.compile(r"^\s*\[\s*gkd\.terms\s*\]", re.M)


def _names_term_entry_points(entry: str) -> bool:
    """Whether the installed packages in ``entry`` (a ``sys.path`` folder) offer ``gkd.terms`` entry points: their
    metadata files read directly, as importlib.metadata finds them (it costs more to import than the whole parser).
    A zip on the path counts as yes: the registry then looks."""
    if os.path.isfile(entry):
        return True
    try:
        names = os.listdir(entry)
    except OSError:
        return False
    files = [os.path.join(entry, n, "entry_points.txt") for n in names if n.endswith((".dist-info", ".egg-info"))]
    files.append(os.path.join(entry, "EGG-INFO", "entry_points.txt"))  # an .egg folder on the path
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                if _ENTRY_GROUP.search(f.read()):
                    return True
        except OSError:
            pass
    return False


def _terms(kind: str) -> str:
    """The names a ``kind`` term is typed with, for help texts (``student``: student terms and transforms). With
    plugins about, the registry is read (a broken plugin is reported here, before any command runs); without, gkd's."""
    kinds = ("student", "transform") if kind == "student" else (kind,)
    if not _plugins_possible():
        return ", ".join(n for k in kinds for n in BUILTIN_TERMS[k])
    from ..distill.registry import table

    return ", ".join(r["name"] for k in kinds for r in table(k))


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
    _add_threads_flag(p)


def _threads(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if not 1 <= n <= MAX_THREADS:
        raise argparse.ArgumentTypeError(f"{text!r}; expected a thread count in [1, {MAX_THREADS}]")
    return n


def _add_threads_flag(p) -> None:
    p.add_argument("--threads", type=_threads, metavar="N", help="CPU threads torch computes with (default: torch's "
                   "choice, $OMP_NUM_THREADS or one per core); 1 is fastest for small graphs on a busy machine")


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


def _add_term_flags(p, kind: str, *older: str) -> None:
    """``--term-weight`` and ``--term-arg``, the same flags in every command (``older``: names they replace, still
    read)."""
    weight, option = _TERM_EXAMPLES[kind]
    p.add_argument("--term-weight", *older, dest="term_weights", action="append", type=_term_weight,
                   metavar="TERM=W", help=f"weight of a switched-on term, e.g. {weight}; the same as --term-arg "
                   "TERM.weight=W (repeatable; default: the term's)"
                   + (f"; {', '.join(older)}: its older name" if older else ""))
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
    _add_term_flags(p, "self", "--sd-weight")
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
    p.add_argument("--method", help="plain | glnn | gkd | bookkd (the terms: none | kd | kd + position,neighbour | "
                   "bookkd,label-smoothing), optionally +TERM, e.g. gkd+amkd (default gkd)")
    p.add_argument("--terms", help=f"student terms added to the method's own, a comma list of {_terms('student')} "
                   "(default: gkd's position,neighbour; none for the others)")
    p.add_argument("--kd-lambda", type=float, help="weight of the label cross-entropy; KD gets 1 - lambda (default 0)")
    p.add_argument("--temperature", type=float,
                   help=f"distillation temperature, at most {MAX_TEMPERATURE:g} (default 1)")
    p.add_argument("--label-smoothing", type=float,
                   help="bookkd's label smoothing on the hard-label term (default 0.1; the label-smoothing term's "
                   "epsilon)")
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
    _add_threads_flag(p)
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
    from ..version import __version__

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
    m.add_argument("--method", help=f"{' | '.join(CNN_METHOD_NAMES)} (default kd)")
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
    terms.add_argument("--kind", choices=list(BUILTIN_TERMS), help="only terms of this kind")
    terms.add_argument("--markdown", action="store_true", help="print a Markdown table (the docs' term tables)")
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


def flags(args: argparse.Namespace, names: Sequence[str]) -> dict:
    flags = {n: getattr(args, n) for n in names if hasattr(args, n)}
    flags.update({k: dict(flags[k]) for k in ("dataset_args", "teacher_args") if flags.get(k) is not None})
    # --term-weight T=W and --term-arg T.OPTION=V both set term_args[T]
    pairs = [(t, "weight", w) for t, w in getattr(args, "term_weights", None) or []] + list(
        getattr(args, "term_arg", None) or [])
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

