"""Crash-safe file writes: a file gkd writes is either whole or absent."""
from __future__ import annotations

import hashlib
import math
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import ConfigError, GKDError, check


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` should get: that of the file it replaces, else what ``open()`` would give under the umask
    (``mkstemp`` creates 0600 files, which would hide results from the group that shares a run folder)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temporary file in the same directory, fsync, then ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:  # make the rename itself durable
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Strict JSON: a NaN or infinity (which ``json`` would write as the non-JSON ``NaN``) is refused, not written."""
    try:
        text = json.dumps(obj, indent=2, sort_keys=False, allow_nan=False)
    except ValueError as e:
        raise GKDError(f"refusing to write {str(path)!r}: the results hold a NaN or infinite number ({e}); "
                       "expected finite values") from None
    return atomic_write_text(path, text + "\n")


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _check_name(folder: Path, name: str, flag: str) -> None:
    limit = _name_max(folder)
    size = len(os.fsencode(name))
    check(size <= limit, f"{flag}: file name {name[:40]!r}... is {size} bytes long; expected at most {limit} "
          "(NAME_MAX)", ConfigError)


def check_output_folder(folder: str | os.PathLike, flag: str, create: bool = False) -> Path:
    """``folder`` is (or, with ``create``, becomes) a folder where a file can be made: checked by making and removing
    one, so that a run never ends by losing its results to a path that was bad from the start."""
    folder = Path(folder)
    try:
        folder.exists()
    except OSError as e:
        raise ConfigError(f"{flag} {str(folder)!r}: {e.strerror}") from None
    if create:
        check(not folder.exists() or folder.is_dir(), f"{flag} {str(folder)!r} is a file; expected a folder",
              ConfigError)
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise ConfigError(f"{flag} {str(folder)!r}: cannot create the folder ({e.strerror})") from None
    if not folder.is_dir():
        raise ConfigError(f"{flag}: folder {str(folder)!r} does not exist")
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".gkd-write-check-"):
            pass
    except OSError as e:
        raise ConfigError(f"{flag}: folder {str(folder)!r} is not writable ({e.strerror})") from None
    return folder


def is_results_json(path: Path) -> bool:
    """Whether ``path`` holds a results JSON gkd wrote (``--json`` may replace it): an object with gkd's ``versions``
    record, ``config`` and ``runs``."""
    try:
        if path.stat().st_size > 256 << 20:
            return False
        with open(path, encoding="utf-8") as f:
            d = json.load(f)
    except (OSError, ValueError, UnicodeDecodeError, RecursionError):
        return False
    return (isinstance(d, dict) and isinstance(d.get("versions"), dict) and "gkd" in d["versions"]
            and isinstance(d.get("config"), dict) and isinstance(d.get("runs"), list))


def check_output_file(path: str | os.PathLike, flag: str = "--json",
                      owned: Callable[[Path], bool] | None = is_results_json, what: str = "gkd results JSON") -> Path:
    """``path`` names a file gkd can write (atomically, via a temporary file beside it) in an existing folder. An
    existing ``path`` is replaced only when it is a regular file (not a link) that ``owned`` recognises as one gkd
    wrote (a ``what``); anything else there is left as it is."""
    check(str(path).strip() != "", f"{flag} {str(path)!r} is empty; expected a file path", ConfigError)
    p = Path(path)
    try:
        parent = Path(os.path.abspath(p)).parent  # not resolve(): it stats, and a too-long name fails there
        if parent.is_dir():
            _check_name(parent, p.name, flag)
        check(not p.is_dir(), f"{flag} {str(path)!r} is a directory; expected a file path", ConfigError)
        parent = p.resolve().parent
        if not parent.is_dir():
            raise ConfigError(f"{flag} {str(path)!r}: folder {str(parent)!r} does not exist")
        mine = not os.path.lexists(p) or (p.is_file() and not p.is_symlink() and owned is not None and owned(p))
    except OSError as e:  # e.g. a folder name beyond NAME_MAX, a loop of links
        raise ConfigError(f"{flag} {str(path)!r}: {e.strerror}") from None
    check(mine, f"{flag} {str(path)!r} exists and is not a {what}; it is left as it is: choose another name",
          ConfigError)
    check_output_folder(parent, flag)
    return p


def check_new_path(path: str | os.PathLike, flag: str) -> Path:
    """``path`` may become a directory gkd writes (a book, a model artefact): a sane name, and the nearest existing
    folder above it takes new entries (the missing ones are made on writing)."""
    check(str(path).strip() != "", f"{flag} {str(path)!r} is empty; expected a folder path", ConfigError)
    p = Path(path)
    try:
        parent = Path(os.path.abspath(p)).parent
        if parent.is_dir():
            _check_name(parent, p.name, flag)
        existing = p.resolve().parent
        while not existing.exists():
            existing = existing.parent
    except OSError as e:
        raise ConfigError(f"{flag} {str(path)!r}: {e.strerror}") from None
    check_output_folder(existing, flag)
    return p


def sha256_file(path: str | os.PathLike) -> str:
    """sha256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def is_sha256(value: Any) -> bool:
    """``value`` is what :func:`sha256_file` returns: 64 lower-case hex digits."""
    return isinstance(value, str) and re.fullmatch(r"[0-9a-f]{64}", value) is not None


def read_npz(path: str | os.PathLike, what: str = "file") -> dict[str, Any]:
    """The arrays of an ``.npz`` (numpy arrays), read without pickle, after checking each member's header: a header
    that claims more data than the member holds (a huge shape in a tiny file) or a non-numeric dtype is refused
    before anything is allocated. Any failure is one :class:`GKDError` naming ``what`` and ``path``."""
    import zipfile

    import numpy as np

    path = Path(path)
    check(path.is_file(), f"{what} {str(path)!r} does not exist or is not a file", GKDError)
    check(zipfile.is_zipfile(path), f"{what} {str(path)!r} is not an .npz of plain arrays (not a zip archive)",
          GKDError)
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                    header = f.tell() if f.seekable() else None
                check(dtype.kind in "biuf", f"{what} {str(path)!r}: array {info.filename!r} has dtype {dtype}; "
                      "expected numbers", GKDError)
                need = math.prod(shape) * dtype.itemsize
                check(header is None or info.file_size - header == need, f"{what} {str(path)!r}: array "
                      f"{info.filename!r} claims shape {shape} ({need} bytes) but holds "
                      f"{info.file_size - (header or 0)} bytes", GKDError)
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except GKDError:
        raise
    except Exception as e:  # BadZipFile, truncated members, bad headers
        raise GKDError(f"{what} {str(path)!r} is not an .npz of plain arrays ({type(e).__name__}: "
                       f"{str(e)[:200]})") from None
