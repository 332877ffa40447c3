"""Crash-safe file writes (a file gkd writes is either whole or absent) and bounded reads of regular files.

Every file gkd stores is written, fsynced and hashed by one routine: through :func:`atomic_write` (temporary name and
rename: results JSON, predictions, graph files, checkpoint records) or :func:`write_new_file` (the files of a directory
that is itself renamed into place, :mod:`gkd.io.store`: model artefacts and knowledge books)."""
from __future__ import annotations

import errno
import hashlib
import json
import math
import mmap
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, BinaryIO, Callable, Collection

from ..errors import ConfigError, GKDError, check

__all__ = ["atomic_write", "write_new_file", "fsync_dir", "atomic_write_bytes", "atomic_write_text", "write_json",
           "check_output_folder", "check_output_file", "check_new_path", "is_results_json", "read_regular_file",
           "map_regular_file", "read_json", "read_npz", "sha256_file", "is_sha256"]


def _new_file_mode(path: Path) -> int:
    """The mode ``path`` should get: that of the file it replaces, else what ``open()`` would give under the umask
    (``mkstemp`` creates 0600 files, which would hide results from the group that shares a run folder)."""
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


class _Hashing:
    """A binary file that hashes and counts the bytes written through it (for writers such as ``np.save``)."""

    def __init__(self, f: BinaryIO) -> None:
        self.f, self.sha256, self.size = f, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.f.write(data)
        self.sha256.update(data)
        self.size += len(data)
        return len(data)


def atomic_write(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None]) -> tuple[str, int]:
    """Write ``data`` (bytes, or a function that writes to a binary file, e.g. ``lambda f: np.save(f, a)``) to
    ``path`` via a temporary file in the same folder, fsync, ``os.replace`` and an fsync of the folder; the file gets
    the mode of the one it replaces, else the umask's. Returns the sha256 and size of the bytes written."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        written = _write_synced(fd, mode, data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)  # make the rename itself durable
    return written


def write_new_file(path: str | os.PathLike, data: bytes | Callable[[BinaryIO], None]) -> tuple[str, int]:
    """Write ``data`` as :func:`atomic_write` does, to a ``path`` that must not exist yet (a file in a folder that is
    itself renamed into place, see :mod:`gkd.io.store`), without a temporary name of its own."""
    path = Path(path)
    mode = _new_file_mode(path)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0), 0o600)
    return _write_synced(fd, mode, data)


def _write_synced(fd: int, mode: int, data: bytes | Callable[[BinaryIO], None]) -> tuple[str, int]:
    """What every file gkd stores goes through: ``data`` written to the new file ``fd`` (closed after), flushed and
    fsynced, hashed on its way; the file's mode set to ``mode`` (``mkstemp``'s 0600 would hide it from the group)."""
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        out = _Hashing(f)
        if callable(data):
            data(out)
        else:
            out.write(data)
        f.flush()
        os.fsync(f.fileno())
    return out.sha256.hexdigest(), out.size


def fsync_dir(path: str | os.PathLike) -> None:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """:func:`atomic_write` of ``data``; returns ``path``."""
    atomic_write(path, data)
    return Path(path)


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
        kind = "is a file, not a folder" if folder.is_file() else "is not a folder" if folder.exists() else \
            "does not exist"
        raise ConfigError(f"{flag}: folder {str(folder)!r} {kind}")
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
        d = read_json(path, "results JSON", limit=256 << 20)
    except (OSError, ValueError):  # GKDError is a ValueError
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
            what = "is a file, not a folder" if parent.exists() else "does not exist"
            raise ConfigError(f"{flag} {str(path)!r}: folder {str(parent)!r} {what}")
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
        # 'afile/m': the nearest existing entry above is a file, in which no folder can ever be made
        check(existing.is_dir(), f"{flag} {str(path)!r} lies under {str(existing)!r}, which "
              f"{'is a file, not a folder' if existing.is_file() else 'is not a folder'}; expected a path under a "
              "folder", ConfigError)
    except OSError as e:
        raise ConfigError(f"{flag} {str(path)!r}: {e.strerror}") from None
    check_output_folder(existing, flag)
    return p


def _kind(mode: int) -> str:
    return ("a symbolic link" if stat.S_ISLNK(mode) else "a FIFO" if stat.S_ISFIFO(mode) else "a directory"
            if stat.S_ISDIR(mode) else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket"
            if stat.S_ISSOCK(mode) else "not a regular file")


def read_regular_file(path: str | os.PathLike, limit: int, what: str, *, error: type[GKDError] = GKDError,
                      dir_fd: int | None = None, inside: str = "", why: str = "") -> bytes:
    """The bytes of ``path`` (relative to the open directory ``dir_fd`` if given), read once, when it is a regular
    file of at most ``limit`` bytes; ``what`` names it in messages (e.g. ``"model manifest '/x/manifest.json'"``).

    A symbolic link, FIFO, device or directory is refused (one ``error``) before anything is read: a FIFO would hang
    the reader, a link to ``/dev/zero`` fill its memory. So is a file larger than ``limit``, before its first byte.
    A missing file stays :class:`FileNotFoundError`: the caller knows whether that means a damaged folder or one
    replaced while it was read. ``inside`` (``"the book"``) names the folder the file should be a plain file of, and
    ``why`` (``"; its manifest entry ..."``) says where ``limit`` comes from, in the messages."""
    return _open_regular(path, limit, what, error, dir_fd, inside, why, _read_all)


def _open_regular(path, limit: int, what: str, error: type[GKDError], dir_fd: int | None, inside: str, why: str,
                  use: Callable[[int, int, str, type[GKDError]], Any]) -> Any:
    """``use(fd, limit, what, error)`` on ``path`` opened as :func:`read_regular_file` checks it."""
    of = f", not a plain file of {inside}" if inside else ""
    try:
        st = os.stat(path, dir_fd=dir_fd, follow_symlinks=False)  # before opening: a device is never even opened
    except FileNotFoundError:
        raise
    except OSError as e:
        raise error(f"{what} cannot be read ({e.strerror})") from None
    if stat.S_ISLNK(st.st_mode):
        raise error(f"{what} is a symbolic link, which gkd does not follow here{of}; expected a regular file")
    flags = os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        raise
    except OSError as e:  # ELOOP: it became a link after the stat
        reason = "is a symbolic link" if e.errno in (errno.ELOOP, errno.EMLINK) else f"cannot be read ({e.strerror})"
        raise error(f"{what} {reason}{of}; expected a regular file") from None
    try:
        st = os.fstat(fd)  # what was opened, whatever the path names by now
        check(stat.S_ISREG(st.st_mode), f"{what} is {_kind(st.st_mode)}{of}; expected a regular file", error)
        check(st.st_size <= limit, f"{what} is {st.st_size} bytes; expected at most {limit}{why}", error)
        return use(fd, limit, what, error)
    except OSError as e:
        raise error(f"{what} cannot be read ({e.strerror})") from None
    finally:
        os.close(fd)


def _read_all(fd: int, limit: int, what: str, error: type[GKDError]) -> bytes:
    parts, total = [], 0
    while total <= limit:  # one read for most files; more only beyond Linux's 2 GiB per read
        block = os.read(fd, min(limit + 1 - total, 1 << 30))
        if not block:
            break
        parts.append(block)
        total += len(block)
    check(total <= limit, f"{what} grew beyond {limit} bytes while it was read", error)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def map_regular_file(path: str | os.PathLike, limit: int, what: str, *, error: type[GKDError] = GKDError,
                     dir_fd: int | None = None, inside: str = "", why: str = "") -> bytes | mmap.mmap:
    """:func:`read_regular_file`, but memory-mapped read-only instead of read (for arrays larger than memory): the
    map stays valid after the file is replaced or removed (a replaced file is a new inode)."""
    def use(fd: int, limit: int, what: str, error: type[GKDError]) -> bytes | mmap.mmap:
        size = os.fstat(fd).st_size
        return b"" if size == 0 else mmap.mmap(fd, size, access=mmap.ACCESS_READ)

    return _open_regular(path, limit, what, error, dir_fd, inside, why, use)


def read_json(path: str | os.PathLike, what: str, *, error: type[GKDError] = GKDError, dir_fd: int | None = None,
              limit: int | None = None) -> Any:
    """The JSON in ``path``, read as :func:`read_regular_file` reads (a manifest's size at most, by default); JSON
    that does not parse (or is nested too deeply to) is one ``error`` naming ``what``."""
    from ..limits import MAX_MANIFEST_BYTES

    raw = read_regular_file(path, MAX_MANIFEST_BYTES if limit is None else limit, what, error=error, dir_fd=dir_fd)
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        reason = "nested too deeply" if isinstance(e, RecursionError) else f"{type(e).__name__}: {str(e)[:120]}"
        raise error(f"{what} is not valid JSON ({reason})") from None


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


def read_npz(path: str | os.PathLike, what: str = "file", *, skip_text: bool = False,
             numeric: Collection[str] = ()) -> dict[str, Any]:
    """The arrays of an ``.npz`` (numpy arrays), read without pickle, after checking the archive and each member's
    header: an archive that would expand beyond :mod:`gkd.limits`' bounds (a zip bomb), a header that claims more
    data than the member holds (a huge shape in a tiny file) or a non-numeric dtype is refused before anything is
    decompressed or allocated. Any failure is one :class:`GKDError` naming ``what`` and ``path``. ``skip_text``:
    text and object arrays (the name arrays of public graph files) are left out unread instead of refused, except
    those named in ``numeric``, which must hold numbers."""
    import zipfile

    import numpy as np

    from .. import limits

    path = Path(path)
    check(path.is_file(), f"{what} {str(path)!r} does not exist or is not a file", GKDError)
    check(zipfile.is_zipfile(path), f"{what} {str(path)!r} is not an .npz of plain arrays (not a zip archive)",
          GKDError)
    skipped: set[str] = set()
    try:
        disk = path.stat().st_size
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            check(len(infos) <= limits.MAX_NPZ_MEMBERS, f"{what} {str(path)!r} holds {len(infos)} members; expected "
                  f"at most {limits.MAX_NPZ_MEMBERS} arrays", GKDError)
            # the sizes the archive declares bound what reading it can allocate (zipfile stops at them)
            total = sum(info.file_size for info in infos)
            bound = min(limits.MAX_NPZ_BYTES, max(limits.MAX_NPZ_FREE_BYTES, limits.MAX_NPZ_RATIO * disk))
            check(total <= bound, f"{what} {str(path)!r} expands to {total} bytes from {disk} on disk; expected at "
                  f"most {bound} (more than {limits.MAX_NPZ_RATIO}x is a zip bomb's ratio; numpy.savez writes "
                  "arrays uncompressed)", GKDError)
            for info in infos:
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                    header = f.tell() if f.seekable() else None
                name = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
                if skip_text and dtype.kind in "USO" and name not in numeric:
                    skipped.add(name)
                    continue
                check(dtype.kind in "biuf", f"{what} {str(path)!r}: array {info.filename!r} has dtype {dtype}; "
                      "expected numbers", GKDError)
                need = math.prod(shape) * dtype.itemsize
                check(header is None or info.file_size - header == need, f"{what} {str(path)!r}: array "
                      f"{info.filename!r} claims shape {shape} ({need} bytes) but holds "
                      f"{info.file_size - (header or 0)} bytes", GKDError)
                check(need <= bound, f"{what} {str(path)!r}: array {info.filename!r} claims shape {shape} ({need} "
                      f"bytes); expected at most {bound}", GKDError)
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files if k not in skipped}
    except GKDError:
        raise
    except Exception as e:  # BadZipFile, truncated members, bad headers
        raise GKDError(f"{what} {str(path)!r} is not an .npz of plain arrays ({type(e).__name__}: "
                       f"{str(e)[:200]})") from None
