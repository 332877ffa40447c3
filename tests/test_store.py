"""gkd's one on-disk directory format (gkd.io.store), on a toy format: atomic replace, damage, foreign directories,
FIFOs, older manifest layouts. Model artefacts and books (tests/test_artifact.py, tests/test_book.py) are two uses."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest

from gkd.errors import GKDError
from gkd.io import atomic_write, read_json, write_json
from gkd.io.store import Format, foreign, read_dir, write_dir


class ToyError(GKDError):
    pass


TOY = Format(kind="gkd-toy", version=2, noun="toy", file_noun="toy file", names=frozenset({"a.bin", "b.bin"}),
             error=ToyError, remedy="; write it again", legacy_files=lambda m: m.get("digests"))


def plan(manifest, path):
    return {"a.bin": (1 << 20, ""), "b.bin": (1 << 20, "; a toy file holds at most 1 MiB")}, manifest.get("note")


def refuse(out: Path):
    why = foreign(out, TOY)
    return None if why is None else ToyError(f"{str(out)!r} is {why}; left as it is")


def write(out, a=b"alpha", b=b"beta" * 100, note="n"):
    return write_dir(out, TOY, {"a.bin": a, "b.bin": lambda f: f.write(b)}, {"note": note}, refuse=refuse)


def test_round_trip_manifest_and_mapped_reads(tmp_path):
    out = write(tmp_path / "t")
    m = json.loads((out / "manifest.json").read_text())
    assert (m["kind"], m["format"], m["note"]) == ("gkd-toy", 2, "n") and isinstance(m["gkd"], str)
    assert m["files"]["b.bin"] == {"sha256": hashlib.sha256(b"beta" * 100).hexdigest(), "size": 400}
    manifest, blobs, extra = read_dir(out, TOY, plan)
    assert blobs == {"a.bin": b"alpha", "b.bin": b"beta" * 100} and extra == "n" and manifest == m
    _, mapped, _ = read_dir(out, TOY, plan, mapped=True)
    assert bytes(mapped["b.bin"]) == b"beta" * 100


def test_atomic_replace_leaves_one_whole_directory_and_no_temporaries(tmp_path):
    out = write(tmp_path / "t", note="first")
    write(out, a=b"second", note="second")
    assert read_dir(out, TOY, plan)[2] == "second"

    def broken(f):
        f.write(b"half")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):  # a write failing midway leaves the old directory
        write_dir(out, TOY, {"a.bin": b"x", "b.bin": broken}, {"note": "third"}, refuse=refuse)
    assert read_dir(out, TOY, plan)[2] == "second"
    errors = []

    def racer(i):
        try:
            for j in range(10):
                write(out, a=f"{i}-{j}".encode(), note=f"{i}-{j}")
        except GKDError as e:  # a racing write may be refused; never a half directory
            errors.append(e)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    manifest, blobs, note = read_dir(out, TOY, plan)
    assert blobs["a.bin"].decode() == note
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"], errors


def test_a_flipped_byte_and_a_truncated_file(tmp_path):
    out = write(tmp_path / "t")
    raw = bytearray((out / "b.bin").read_bytes())
    raw[7] ^= 1
    (out / "b.bin").write_bytes(bytes(raw))
    with pytest.raises(ToyError, match=r"toy file '.*b.bin' fails its sha256 check \(damaged or edited\); write it"):
        read_dir(out, TOY, plan)
    (out / "b.bin").write_bytes(b"beta" * 99)
    with pytest.raises(ToyError, match="fails its sha256 check"):
        read_dir(out, TOY, plan)
    with pytest.raises(ToyError, match="b.bin' is 396 bytes; its manifest says 400"):
        read_dir(out, TOY, plan, verify=False)
    (out / "b.bin").write_bytes(b"beta" * 101)  # longer than recorded: refused before it is read
    with pytest.raises(ToyError, match="b.bin' is 404 bytes; expected at most 400; a toy file holds at most 1 MiB"):
        read_dir(out, TOY, plan, verify=False)
    (out / "a.bin").unlink()
    with pytest.raises(ToyError, match="a.bin' is missing"):
        read_dir(out, TOY, plan)


def test_a_foreign_directory_is_refused_and_left_untouched(tmp_path):
    users = tmp_path / "users"
    users.mkdir()
    (users / "a.bin").write_bytes(b"my own")
    (tmp_path / "file").write_text("x")
    (tmp_path / "link").symlink_to(users)
    other = tmp_path / "other"
    other.mkdir()
    (other / "manifest.json").write_text(json.dumps({"kind": "gkd-book"}))
    for target, why in [(users, "(no manifest.json)"), (tmp_path / "file", "a file"),
                        (tmp_path / "link", "a symbolic link"), (other, "(manifest kind 'gkd-book')")]:
        before = sorted(p.name for p in target.iterdir()) if target.is_dir() and not target.is_symlink() else None
        with pytest.raises(ToyError, match="left as it is") as e:
            write(target)
        assert why in str(e.value)
        if before is not None:
            assert sorted(p.name for p in target.iterdir()) == before
    assert (users / "a.bin").read_bytes() == b"my own" and (tmp_path / "file").read_text() == "x"
    out = write(tmp_path / "t")
    (out / "notes.txt").write_text("mine")  # a user's file inside: no longer only what gkd wrote
    assert "it holds 'notes.txt'" in foreign(out, TOY)
    with pytest.raises(ToyError, match="left as it is"):
        write(out)
    with pytest.raises(ToyError, match=r"is not a gkd toy \(manifest kind 'gkd-book'\)"):
        read_dir(other, TOY, plan)
    with pytest.raises(ToyError, match=r"is not a gkd toy \(no manifest.json"):
        read_dir(users, TOY, plan)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_a_fifo_is_refused_without_blocking(tmp_path):
    out = write(tmp_path / "t")
    (out / "a.bin").unlink()
    os.mkfifo(out / "a.bin")
    with pytest.raises(ToyError, match="a.bin' is a FIFO, not a plain file of the toy; expected a regular file"):
        read_dir(out, TOY, plan)
    assert "'a.bin' is not a regular file" in foreign(out, TOY)
    with pytest.raises(ToyError, match="left as it is"):
        write(out)
    (out / "manifest.json").rename(out / "m")
    os.mkfifo(out / "manifest.json")
    with pytest.raises(ToyError, match="manifest.json' is a FIFO; expected a regular file"):
        read_dir(out, TOY, plan)


def test_an_older_manifest_layout_is_read_and_a_newer_refused(tmp_path):
    out = write(tmp_path / "t")
    m = json.loads((out / "manifest.json").read_text())
    digests = {k: v["sha256"] for k, v in m["files"].items()}
    (out / "manifest.json").write_text(json.dumps({**m, "format": 1, "files": digests}))  # {name: sha256}
    assert read_dir(out, TOY, plan)[1]["a.bin"] == b"alpha"
    (out / "manifest.json").write_text(json.dumps({**{k: v for k, v in m.items() if k != "files"}, "format": 1,
                                                   "digests": digests}))  # no files entry: the format's own
    assert read_dir(out, TOY, plan)[1]["b.bin"] == b"beta" * 100
    (out / "manifest.json").write_text(json.dumps({**m, "files": digests}))  # the old layout under the new version
    with pytest.raises(ToyError, match=r"is damaged: files.a.bin='[0-9a-f]{64}'; expected"):
        read_dir(out, TOY, plan)
    (out / "manifest.json").write_text(json.dumps({**m, "format": 3}))
    with pytest.raises(ToyError, match=r"toy '.*' has format 3; this gkd .* reads formats up to 2 \(upgrade gkd\)"):
        read_dir(out, TOY, plan)
    (out / "manifest.json").write_text(json.dumps({**m, "format": True}))
    with pytest.raises(ToyError, match="is damaged: format=True; expected an integer >= 1; write it again"):
        read_dir(out, TOY, plan)
    (out / "manifest.json").write_text(json.dumps({**m, "files": {"a.bin": m["files"]["a.bin"]}}))
    with pytest.raises(ToyError, match=r"files=\['a.bin'\]; expected \['a.bin', 'b.bin'\]"):
        read_dir(out, TOY, plan)


def test_stale_temporaries_of_a_killed_writer_are_removed(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    stale = tmp_path / f".t.tmp-{proc.pid}-0123abcd"
    stale.mkdir()
    (stale / "a.bin").write_bytes(b"half")
    kept = tmp_path / f".t.tmp-{proc.pid}-89abcdef"
    kept.mkdir()
    (kept / "notes.txt").write_text("not a toy's file")
    write(tmp_path / "t")
    assert not stale.exists() and (kept / "notes.txt").exists()


def test_results_json_and_store_files_share_one_write(tmp_path):
    """write_json goes through atomic_write: the same hashed, fsynced write as a store directory's files."""
    assert atomic_write(tmp_path / "x.bin", b"abc") == (hashlib.sha256(b"abc").hexdigest(), 3)
    write_json(tmp_path / "r.json", {"runs": [1]})
    assert read_json(tmp_path / "r.json", "results") == {"runs": [1]}
    (tmp_path / "deep.json").write_text("[" * 100000)
    with pytest.raises(GKDError, match="deep.json is not valid JSON .nested too deeply"):
        read_json(tmp_path / "deep.json", "deep.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep.json", "r.json", "x.bin"]
