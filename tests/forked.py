"""Processes for the tests that SIGKILL a gkd writer mid-way.

Each is a real process, killed for real, but forked from multiprocessing's fork server, which imported torch, PyG
and gkd once: it starts in milliseconds instead of paying the ~4.5 s import a ``python -m gkd`` subprocess pays
(nine such processes were a tenth of the suite). The server does no torch work before it forks, so no thread pool
is copied half-made. Tests of the real entry point (exit codes, tracebacks, plugins found on a fresh ``sys.path``)
still start ``python -m gkd``.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import runpy
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

_CTX = mp.get_context("forkserver")
_CTX.set_forkserver_preload(["torch", "torch_geometric", "gkd.cli"])


def _child(target: str, args: list[str], cwd: str, env: dict, stdout: str, stderr: str) -> None:
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)  # the test's environment now, not the server's when it started
    for fd, path in ((1, stdout), (2, stderr)):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644), fd)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)
    if target == "gkd":
        from gkd.cli import main

        code = main(args)
    else:  # a script file, run as ``python script args``
        sys.argv = [target, *args]
        runpy.run_path(target, run_name="__main__")
        code = 0
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def start(argv: Sequence[str], *, script: str | Path | None = None, cwd: str | Path = ".",
          stdout: str | Path = os.devnull, stderr: str | Path = os.devnull) -> mp.process.BaseProcess:
    """Start ``gkd argv`` (or ``python script argv``) in a forked process; ``.kill()`` sends it SIGKILL."""
    target = "gkd" if script is None else str(script)
    proc = _CTX.Process(target=_child, args=(target, [str(a) for a in argv], str(Path(cwd).resolve()),
                                             dict(os.environ), str(stdout), str(stderr)), daemon=True)
    proc.start()
    return proc


def wait_until(proc: mp.process.BaseProcess, ready: Callable[[], bool], timeout: float = 240.0) -> None:
    """Return once ``ready()`` holds, ``proc`` has ended, or ``timeout`` seconds have passed."""
    deadline = time.time() + timeout
    while not ready() and proc.is_alive() and time.time() < deadline:
        time.sleep(0.02)


def kill_when(proc: mp.process.BaseProcess, ready: Callable[[], bool], timeout: float = 240.0) -> None:
    """SIGKILL ``proc`` as soon as ``ready()`` holds (or it ended, or ``timeout`` passed), and reap it."""
    wait_until(proc, ready, timeout)
    kill(proc)


def kill(proc: mp.process.BaseProcess) -> None:
    """SIGKILL ``proc`` and reap it."""
    proc.kill()
    proc.join()
