"""``gkd`` command line. Bad input exits with code 2 and one ``gkd: error: ...`` line on stderr, no traceback."""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

import yaml

from .errors import ConfigError, GKDError


def _key_value(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key, yaml.safe_load(value)


def _add_train_flags(p: argparse.ArgumentParser) -> None:
    # Every default is None: an unset flag never overrides the YAML file (defaults < YAML < flags).
    p.add_argument("--dataset", help="dataset name (see `gkd datasets`); default Cora")
    p.add_argument("--dataset-arg", dest="dataset_args", action="append", type=_key_value, metavar="KEY=VALUE",
                   help="loader argument, e.g. homophily=0.2 for synthetic-csbm (repeatable)")
    p.add_argument("--root", help="data root (default: $GKD_DATA, else datasets/)")
    p.add_argument("--model", help="gcn | gat | sage | mlp (default gcn)")
    p.add_argument("--hidden-channels", type=int)
    p.add_argument("--num-layers", type=int)
    p.add_argument("--dropout", type=float)
    p.add_argument("--heads", type=int, help="GAT attention heads")
    p.add_argument("--lr", type=float)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--epochs", type=int, help="maximum epochs (default 500)")
    p.add_argument("--patience", type=int, help="early-stopping patience on validation (default 100)")
    p.add_argument("--runs", type=int, help="number of seeds (default 10)")
    p.add_argument("--seed", type=int, help="first seed; run r uses seed + r (default 0)")
    p.add_argument("--method", help="plain | self-distill | label-smoothing | tf-kd-reg (default plain)")
    p.add_argument("--self-distill", dest="self_distill", action="store_true",
                   help="shorthand for --method self-distill")
    p.add_argument("--sd-terms", help="comma list of depth,time,neighbour,normalised (default neighbour,time)")
    p.add_argument("--sd-weight", dest="sd_weights", action="append", type=_key_value, metavar="TERM=W",
                   help="weight of one self-distillation term (repeatable; default 1)")
    p.add_argument("--sd-warmup", type=int, help="epochs of validation plateau before the neighbour term starts (default 20)")
    p.add_argument("--sd-temperature", type=float, help="depth term's KD temperature (default 4)")
    p.add_argument("--ls-epsilon", type=float, help="label-smoothing epsilon (default 0.1)")
    p.add_argument("--tfkd-weight", type=float)
    p.add_argument("--tfkd-temperature", type=float)
    p.add_argument("--config", help="YAML file of the same keys (flags win over it)")
    p.add_argument("--json", help="write the results JSON here (atomically)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gkd", description="Knowledge distillation on graphs.")
    parser.add_argument("--version", action="version", version=f"gkd {__import__('gkd').__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a backbone on a dataset over several seeds")
    _add_train_flags(train)
    sub.add_parser("datasets", help="list the dataset names gkd loads")
    return parser


def _flags(args: argparse.Namespace, names: Sequence[str]) -> dict:
    flags = {n: getattr(args, n) for n in names if hasattr(args, n)}
    for key in ("dataset_args", "sd_weights"):
        if flags.get(key) is not None:
            flags[key] = dict(flags[key])
    if getattr(args, "self_distill", False):
        if flags.get("method") not in (None, "self-distill"):
            raise ConfigError(f"--self-distill conflicts with --method {flags['method']}")
        flags["method"] = "self-distill"
    return flags


def cmd_train(args: argparse.Namespace) -> int:
    from .config import TrainConfig, make_config
    from .io import write_json
    from .train import fmt, run_experiment
    import dataclasses

    from .distill import build_method

    cfg = make_config(args.config, _flags(args, [f.name for f in dataclasses.fields(TrainConfig)]))
    factory, method_config = build_method(cfg)
    if args.json:
        _check_writable(args.json)
    result = run_experiment(cfg, terms_factory=factory, method=cfg.method, method_config=method_config,
                            progress=False if args.quiet else None)
    if args.json:
        write_json(args.json, result)
    print(f"{result['dataset']}  {result['model']}  {result['method']}  runs={len(result['runs'])}  "
          f"test {fmt(result['test_mean'], result['test_std'])}  val {fmt(result['val_mean'], result['val_std'])}  "
          f"({result['seconds']:.1f}s)")
    return 0


def _check_writable(path: str) -> None:
    from pathlib import Path

    parent = Path(path).resolve().parent
    if not parent.is_dir():
        raise ConfigError(f"--json {path!r}: folder {str(parent)!r} does not exist")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return cmd_train(args)
        if args.command == "datasets":
            from .datasets import available
            print("\n".join(available()))
            return 0
    except GKDError as e:
        print(f"gkd: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gkd: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
