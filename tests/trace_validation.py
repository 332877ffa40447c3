"""Trace one ``gkd distill`` run: the gkd modules it enters, the switches between them, and how often each
validation entry point runs. A developer's measuring script (issue #40), not collected by pytest::

    python tests/trace_validation.py [gkd distill flags...]   # default: --dataset Cora --runs 1 --epochs 3
"""
from __future__ import annotations

import collections
import sys
import threading

WATCH = ("validate", "check_types", "check_limits", "check_graph_run", "check_run", "build_options",
         "make_options", "check_term_nodes", "check_optim_args", "check_model_args", "check_dataset_args")


def main(argv: list[str]) -> int:
    from gkd.cli import main as gkd_main

    args = argv or ["--dataset", "Cora", "--runs", "1", "--epochs", "3", "--patience", "3", "--teacher-arg",
                    "epochs=3", "--teacher-arg", "patience=3"]
    calls: collections.Counter = collections.Counter()
    entered: collections.Counter = collections.Counter()
    last = [None]

    def prof(frame, event, arg):
        if event != "call":
            return
        mod = frame.f_globals.get("__name__", "")
        if not mod.startswith("gkd"):
            return
        if mod != last[0]:
            entered[mod] += 1
            last[0] = mod
        name = frame.f_code.co_name
        if name in WATCH:
            qual = getattr(frame.f_code, "co_qualname", name)
            calls[f"{mod}.{qual}"] += 1

    sys.setprofile(prof)
    threading.setprofile(prof)
    try:
        rc = gkd_main(["distill", *args, "--quiet"])
    except SystemExit as e:
        rc = e.code
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    print(f"exit {rc}; modules entered: {len(entered)}; switches between modules: {sum(entered.values())}")
    for mod, n in entered.most_common(8):
        print(f"  {n:6d}  {mod}")
    print("validation calls:")
    for name, n in sorted(calls.items()):
        print(f"  {n:4d}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
