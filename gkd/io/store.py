r"""The one on-disk directory format of gkd: what model artefacts and knowledge books are (each a :class:`Format`).

A directory of a format::

    DIR/manifest.json   {"kind": "gkd-model", "format": 2, "gkd": "0.1.0", "created": "2025-...",
                         ...the format's own fields...,
                         "files": {"weights.safetensors": {"sha256": "<64 hex digits>", "size": 1234}, ...}}
    DIR/NAME            each file the manifest lists, and nothing else: no other file, folder or link

:func:`write_dir` writes the files (:func:`gkd.io.write_new_file`: fsynced and hashed on their way) and the manifest
last into ``.DIR.tmp-<pid>-<hex>`` beside ``DIR``, then renames it into place: a killed write leaves nothing at ``DIR``
that loads. An existing ``DIR`` is replaced only when the caller allows it and it is a directory of the same kind (a
user's file or folder is never deleted, see :func:`foreign`); of two writes racing on one ``DIR``, one whole directory
remains. Temporaries that a killed writer left are removed by the next write once that process is gone.

:func:`read_dir` reads the manifest and every file once, through one open handle on the directory (regular files of
bounded size only: :func:`gkd.io.read_regular_file`), checks the kind, the format version, and the size and sha256 of
the very bytes it hands back. A directory replaced while it is read is read again, a few times, then refused.
"""
from __future__ import annotations

import datetime
import errno
import hashlib
import json
import os
import re
import shutil
import stat
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..errors import GKDError, check
from ..version import __version__
from . import fsync_dir, is_sha256, map_regular_file, read_json, read_regular_file, write_new_file

TRIES = 5  # reads of a directory another process keeps replacing; consecutive refusals of a racing write
MANIFEST = "manifest.json"
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

Plan = Callable[[dict, Path], "tuple[dict[str, tuple[int, str]], Any]"]


@dataclass(frozen=True)
class Format:
    """A kind of directory: its manifest ``kind``, the ``version`` this gkd writes (and the newest it reads), how
    messages name it, the files it may hold besides the manifest, and the error it raises."""
    kind: str
    version: int
    noun: str       # "model artefact": "... is not a gkd model artefact"
    file_noun: str  # "model artefact file": "model artefact file '/m/weights.safetensors' is missing"
    names: frozenset
    error: type[GKDError]
    remedy: str = ""  # appended to damage messages: "; rebuild the book"
    # the {file: sha256} of a manifest written before the format listed its files (no "files" entry), or None
    legacy_files: Callable[[dict], dict] | None = None


def foreign(path: str | os.PathLike, fmt: Format) -> str | None:
    """None when ``path`` is a directory of ``fmt`` that gkd wrote (not a link; a manifest of its kind, any version;
    nothing but regular files of the format's names), else what it is instead (``"a file"``, ``"a directory that is
    not a gkd book (...)"``). Read through one handle on the directory, so the answer is about one directory even
    while a write replaces it; a FIFO, a link or an oversized or absurdly nested manifest make it foreign."""
    path = Path(path)
    title = f"a directory that is not a gkd {fmt.noun}"
    if path.is_symlink():
        return "a symbolic link"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | _O_CLOEXEC)
    except NotADirectoryError:
        return "a file" if path.is_file() else "not a directory"
    except OSError as e:
        return f"not a directory gkd can read ({e.strerror})"
    try:
        try:
            manifest = read_json(MANIFEST, "its manifest.json", dir_fd=fd, error=fmt.error)
        except FileNotFoundError:
            return f"{title} (no manifest.json)"
        kind = manifest.get("kind") if isinstance(manifest, dict) else None
        if kind != fmt.kind:
            return f"{title} (manifest kind {kind!r})"
        for name in os.listdir(fd):
            if name != MANIFEST and name not in fmt.names:
                return f"{title} (it holds {name!r}, which a {fmt.noun} does not)"
            if not stat.S_ISREG(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                return f"{title} ({name!r} is not a regular file)"
        return None
    except GKDError as e:
        return f"{title} ({e})"
    except OSError as e:
        return f"{title} ({e.strerror})"
    finally:
        os.close(fd)


def write_dir(out: str | os.PathLike, fmt: Format, files: dict[str, Any], manifest: dict | Callable[[dict], dict],
              *, refuse: Callable[[Path], GKDError | None]) -> Path:
    """Write a directory of ``fmt`` at ``out``: ``files`` (name -> bytes, or a function writing to a binary file) in
    order, then the manifest: the format's header, ``manifest`` (or ``manifest(entries)``, given each file's
    ``{"sha256", "size"}``), and the ``files`` entries. ``refuse(existing)`` says why what stands at ``out`` may not
    be replaced (the exception to raise), or None; it is asked again whenever ``out`` is looked at."""
    out = Path(out)
    check(set(files) <= fmt.names, f"a {fmt.noun} holds no files named {sorted(set(files) - fmt.names)}", fmt.error)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(out, fmt, "tmp")
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # the PID: a later write sees it stale
    tmp.mkdir()
    try:
        entries = {}
        for name, data in files.items():
            digest, size = write_new_file(tmp / name, data)
            entries[name] = {"sha256": digest, "size": size}
        body = manifest(entries) if callable(manifest) else manifest
        doc = {"kind": fmt.kind, "format": fmt.version, "gkd": __version__,
               "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               **body, "files": entries}
        try:
            text = json.dumps(doc, indent=2, allow_nan=False)
        except ValueError as e:
            raise fmt.error(f"refusing to write {fmt.noun} {str(out)!r}: its manifest would hold a NaN or infinite "
                            f"number ({e}); expected finite values") from None
        write_new_file(tmp / MANIFEST, text.encode("utf-8"))  # last: a directory without it is of no format
        fsync_dir(tmp)
        _swap_in(tmp, out, fmt, refuse)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    remove_stale(out, fmt, "old")  # only now: until the new directory is in place, one may be the only copy
    return out


def _swap_in(tmp: Path, out: Path, fmt: Format, refuse: Callable[[Path], GKDError | None]) -> None:
    """Rename the finished directory ``tmp`` to ``out``, moving what stood there aside (when ``refuse`` allows) and
    removing it after. Another write of ``out`` may run at the same time: each rename moves a whole directory, so
    ``out`` always holds one complete one (the last renamed wins), and a directory moved aside is removed only once
    it is seen, under the name only this process uses, to be of ``fmt``."""
    aside: list[Path] = []
    refused = 0
    try:
        for _ in range(8 * TRIES):
            if os.path.lexists(out):
                error = refuse(out)
                if error is not None:
                    refused += 1  # or a racing write moved it away between the two looks: look again
                    if refused >= TRIES:
                        raise error
                    time.sleep(0.01)
                    continue
                refused = 0
                old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
                try:
                    os.rename(out, old)
                except FileNotFoundError:  # a racing write moved it first
                    continue
                if foreign(old, fmt) is not None:  # something else took its place between the look and the rename
                    try:
                        if os.path.lexists(out):
                            raise FileExistsError
                        os.rename(old, out)
                    except OSError:
                        raise fmt.error(f"{str(out)!r} changed while it was replaced: what stood there is not a gkd "
                                        f"{fmt.noun}, and is now at {str(old)!r}") from None
                    continue
                aside.append(old)
            try:
                os.rename(tmp, out)
            except OSError as e:  # a racing write renamed its directory into place first: move that aside too
                if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                    raise
                continue
            fsync_dir(out.parent)
            return
        raise fmt.error(f"{str(out)!r} kept changing while it was replaced ({8 * TRIES} tries): other processes are "
                        f"writing it; expected one writer at a time")
    finally:
        for old in aside:
            shutil.rmtree(old, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):  # another user's process (or a PID we cannot ask about)
        return True
    return True


def remove_stale(out: Path, fmt: Format, which: str) -> None:
    """Remove the ``.NAME.<which>-<pid>-<hex>`` folders (``tmp``: a new directory; ``old``: the one it replaced) that
    a killed writer of ``out`` left, once its PID no longer runs. Only folders of exactly that pattern that hold
    nothing but regular files of ``fmt``'s names are touched."""
    pattern = re.compile(rf"\.{re.escape(out.name)}\.{which}-(\d+)-[0-9a-f]{{8}}")
    names = fmt.names | {MANIFEST}
    try:
        entries = list(out.parent.iterdir())
    except OSError:
        return
    for p in entries:
        m = pattern.fullmatch(p.name)
        if m is None or p.is_symlink() or not p.is_dir() or _pid_alive(int(m.group(1))):
            continue
        try:
            if all(q.name in names and not q.is_symlink() and q.is_file() for q in p.iterdir()):
                shutil.rmtree(p)
        except OSError:  # a concurrent cleaner got there first, or no permission: harmless
            pass


class _Changed(Exception):
    """The directory being read no longer stands at its path (a write replaced it): read it again."""


def _same_dir(path: Path, fd: int) -> bool:
    try:
        a, b = os.stat(path), os.fstat(fd)
    except OSError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _being_replaced(path: Path) -> bool:
    """A write of ``path`` is under way (its temporary or the directory it moved aside stands beside it): ``path``
    may be missing for the moment between its two renames."""
    prefixes = (f".{path.name}.tmp-", f".{path.name}.old-")
    try:
        return any(name.startswith(prefixes) for name in os.listdir(path.parent))
    except OSError:
        return False


def read_dir(path: str | os.PathLike, fmt: Format, plan: Plan, *, verify: bool = True,
             mapped: bool = False) -> tuple[dict, dict[str, Any], Any]:
    """``(manifest, {name: bytes}, extra)`` of the directory of ``fmt`` at ``path``. ``plan(manifest, path)`` checks
    the format's own fields and returns ``({name: (byte limit, why)}, extra)``: the files the manifest must list, each
    read only when no larger than its limit (``why`` says where the limit comes from) and its recorded size.
    ``verify=False`` skips the sha256 (sizes are still checked); ``mapped`` maps the files read-only instead of
    reading them (arrays larger than memory). Everything comes from one directory, read once: when a write replaces
    it while it is read, it is read again, a few times, then refused."""
    path = Path(path)
    check(path.is_dir() or _being_replaced(path), f"{fmt.noun} {str(path)!r} does not exist or is not a directory",
          fmt.error)
    for attempt in range(TRIES):
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):  # moved aside for a moment by a write of a new one
            time.sleep(0.005 * 2 ** attempt)
            continue
        except OSError as e:
            raise fmt.error(f"{fmt.noun} {str(path)!r} cannot be read ({e.strerror})") from None
        try:
            try:
                return _read_open_dir(path, fd, fmt, plan, verify, mapped)
            except (GKDError, FileNotFoundError):
                if _same_dir(path, fd):
                    raise
                raise _Changed from None
        except _Changed:
            time.sleep(0.005 * 2 ** attempt)
        finally:
            os.close(fd)
    check(path.is_dir(), f"{fmt.noun} {str(path)!r} does not exist or is not a directory", fmt.error)
    raise fmt.error(f"{fmt.noun} {str(path)!r} changed while it was read, {TRIES} times: another process is "
                    "replacing it; expected a directory that stays put while gkd reads it")


def _read_open_dir(path: Path, fd: int, fmt: Format, plan: Plan, verify: bool,
                   mapped: bool) -> tuple[dict, dict[str, Any], Any]:
    mpath = path / MANIFEST
    try:
        manifest = read_json(MANIFEST, f"{fmt.noun} manifest {str(mpath)!r}", dir_fd=fd, error=fmt.error)
    except FileNotFoundError:
        raise fmt.error(f"{str(path)!r} is not a gkd {fmt.noun} (no manifest.json; an interrupted write leaves "
                        "none)") from None
    kind = manifest.get("kind") if isinstance(manifest, dict) else None
    check(kind == fmt.kind, f"{str(path)!r} is not a gkd {fmt.noun} (manifest kind {kind!r})", fmt.error)
    version = manifest.get("format")
    check(_is_int(version, 1), damaged(fmt, path, f"format={version!r}; expected an integer >= 1"), fmt.error)
    check(version <= fmt.version, f"{fmt.noun} {str(path)!r} has format {version}; this gkd ({__version__}) reads "
          f"formats up to {fmt.version} (upgrade gkd)", fmt.error)
    limits, extra = plan(manifest, path)
    files = _files(manifest, fmt, path, version < fmt.version)
    check(set(files) == set(limits), damaged(fmt, path, f"files={sorted(files)}; expected {sorted(limits)}"),
          fmt.error)
    read = map_regular_file if mapped else read_regular_file
    blobs = {}
    for name, (limit, why) in limits.items():
        where, size = f"{fmt.file_noun} {str(path / name)!r}", files[name]["size"]
        try:
            blob = read(name, limit if size is None else min(limit, size), where, dir_fd=fd, error=fmt.error,
                        inside=f"the {fmt.noun}", why=why)
        except FileNotFoundError:
            raise fmt.error(f"{where} is missing") from None
        check(not verify or hashlib.sha256(blob).hexdigest() == files[name]["sha256"],
              f"{where} fails its sha256 check (damaged or edited){fmt.remedy}", fmt.error)
        check(size is None or len(blob) == size, f"{where} is {len(blob)} bytes; its manifest says {size} (damaged "
              f"or edited){fmt.remedy}", fmt.error)
        blobs[name] = blob
    return manifest, blobs, extra


def damaged(fmt: Format, path: Path, what: str) -> str:
    """The message for a manifest field that is not what gkd writes."""
    return f"{fmt.noun} manifest {str(path / MANIFEST)!r} is damaged: {what}{fmt.remedy}"


def _files(manifest: dict, fmt: Format, path: Path, legacy: bool) -> dict[str, dict]:
    """The manifest's ``files`` as ``{name: {"sha256", "size"}}``; an older layout's (``{name: sha256}``, or none at
    all: ``fmt.legacy_files``) with ``size`` None."""
    files = manifest.get("files")
    if files is None and legacy and fmt.legacy_files is not None:
        files = fmt.legacy_files(manifest)
    check(isinstance(files, dict), damaged(fmt, path, f"files={files!r:.60}; expected an object"), fmt.error)
    out = {}
    for name, entry in files.items():
        if legacy and isinstance(entry, str):  # format 1 of model artefacts: the sha256 alone
            entry = {"sha256": entry, "size": None}
        ok = isinstance(entry, dict) and is_sha256(entry.get("sha256")) and (
            _is_int(entry.get("size"), 0) or (legacy and entry.get("size") is None))
        check(ok, damaged(fmt, path, f"files.{name}={entry!r:.100}; expected {{'sha256': 64 hex digits, 'size': "
                          "bytes}"), fmt.error)
        out[name] = entry
    return out


def _is_int(v: Any, minimum: int = 0) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= minimum
