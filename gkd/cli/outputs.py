"""What a command writes: the results JSON beside a saved model (the small file first), the checks that keep two
outputs of one run apart, and :class:`OutputError`, an output that could not be written (exit code 1)."""
from __future__ import annotations

import os

from ..errors import ConfigError, check


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
        from ..io import write_json

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
    from ..io import write_json

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
