"""``gkd`` command line. Bad input exits with code 2 and one ``gkd: error: ...`` line on stderr, no traceback. An
output that cannot be written (a full disk, an I/O error) is one such line too, saying what was kept, and exit code 1.
A closed standard output (``gkd terms | head -1``) ends the command quietly with exit code 141, what a shell reports
for a command stopped by SIGPIPE, so that ``set -o pipefail`` scripts see what they see for any other command.

:mod:`.parser` builds the flags (without importing torch, so ``gkd --help`` and ``gkd --version`` answer at once),
:mod:`.commands` reads them into a config and calls one pipeline function, :mod:`.outputs` writes what a command
returns. Benchmarks are not part of the installed package: ``python benchmarks/run.py`` in a clone runs them."""
from __future__ import annotations

import os
import sys
from typing import Sequence

from ..errors import GKDError, PeerRankError
from .commands import (cmd_book, cmd_cnn, cmd_datasets, cmd_distill, cmd_graph, cmd_predict, cmd_terms, cmd_train,
                       use_threads)
from .outputs import OutputError, check_distinct_outputs
from .parser import BUILTIN_TERMS, CNN_METHOD_NAMES, build_parser

__all__ = ["main", "build_parser", "cmd_train", "cmd_distill", "cmd_book", "cmd_cnn", "cmd_graph", "cmd_predict",
           "cmd_terms", "cmd_datasets", "use_threads", "OutputError", "check_distinct_outputs", "BUILTIN_TERMS", "CNN_METHOD_NAMES"]


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
        parser = build_parser()  # reads the term registry when plugins are about, so a broken one is reported here
        args = parser.parse_args(argv)
        if args.command == "train":
            return cmd_train(args)
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
            return cmd_datasets(args)
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
