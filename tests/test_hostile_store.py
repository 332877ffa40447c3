"""Hostile input, round three (#38): what gkd stores and reads back (model artefacts, books, checkpoints, .npz files)
and the plugins it imports. Each test plants what a careless or hostile user could leave, and asserts gkd either does
the right thing or says one clear thing; none passes when gkd refuses everything (each has a positive control)."""
from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gkd
from conftest import assert_one_line_error
from gkd.distill import registry
from gkd.errors import ConfigError, GKDError
from gkd.nn import GCN, MLP
from gkd.nn.serving import export_student
from gkd.nn.student import Student
from gkd.pipeline import ArtifactError
from gkd.pipeline.artifact import check_saveable

ROOT = Path(__file__).resolve().parents[1]


def _student(seed: int, features: int = 8, nodes: int = 20) -> Student:
    torch.manual_seed(seed)
    return Student(MLP(features + 4, 16, 2, 3), torch.randn(nodes, 4)).eval()


def _within(seconds: float, fn):
    """``fn()``'s outcome (value or exception), failing the test if it has not returned after ``seconds``: a read
    that blocks on a FIFO would otherwise hang the suite."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn()
        except BaseException as e:  # handed to the test below
            out["error"] = e

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"still running after {seconds} s (blocked on a FIFO, or reading without bound)"
    return out


# -- 1. GKD_PLUGINS changes nothing about where other modules come from -------------------------------------------

PLUGIN = '''
from dataclasses import dataclass

import yaml  # a real plugin may; it must get the installed PyYAML, not the yaml/ lying beside this file
from gkd.distill import LossTerm, TermOptions, register_term


@dataclass
class FileOptions(TermOptions):
    strength: float = 1.0


@register_term("from-file", kind="self", options=FileOptions, summary="registered from a plugin file")
def build(ctx, o):
    return None
'''

PLANTED = '''
import pathlib
pathlib.Path(__file__).resolve().parents[1].joinpath("PLANTED-{name}-IMPORTED").write_text("gkd imported me")
'''


def test_a_plugin_file_runs_without_putting_its_folder_first_on_sys_path(tmp_path):
    """``GKD_PLUGINS=./my_terms.py`` registers the plugin's term; a ``yaml/`` or ``scipy/`` package in the working
    directory is never imported in place of the real one (gkd as a console script: no working directory on
    sys.path)."""
    for name in ("yaml", "scipy"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "__init__.py").write_text(PLANTED.format(name=name))
    (tmp_path / "my_terms.py").write_text(PLUGIN)
    console = "import sys; del sys.path[0]; from gkd.cli import main; sys.exit(main())"  # what the gkd script runs
    env = {**os.environ, "PYTHONPATH": str(ROOT), "GKD_PLUGINS": "./my_terms.py"}
    r = subprocess.run([sys.executable, "-c", console, "terms", "--kind", "self"], env=env, cwd=tmp_path,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "from-file" in r.stdout and "registered from a plugin file" in r.stdout
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("PLANTED")) == []
    # a bare name is a module on sys.path, which the working directory is not on (it was put first before #38)
    env["GKD_PLUGINS"] = "my_terms"
    r = subprocess.run([sys.executable, "-c", console, "terms"], env=env, cwd=tmp_path, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 2 and "(to run a file, name its path: GKD_PLUGINS=./my_terms.py)" in r.stderr
    assert_one_line_error(r.stderr)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("PLANTED")) == []


@pytest.fixture
def fresh_plugins(monkeypatch):
    """Let a test load ``GKD_PLUGINS`` again in this process, then restore the registry as it was."""
    before, modules = dict(registry._TERMS), set(sys.modules)
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(registry, "_BUILTIN", registry._BUILTIN)
    yield
    registry._TERMS.clear()
    registry._TERMS.update(before)
    for name in set(sys.modules) - modules:
        if name.startswith("gkd_plugin_"):
            del sys.modules[name]


def test_plugin_paths_and_module_names(tmp_path, monkeypatch, fresh_plugins):
    (tmp_path / "my_terms.py").write_text(PLUGIN)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GKD_PLUGINS", f"./my_terms.py,{tmp_path / 'my_terms.py'}")  # one file, named twice
    path_before = list(sys.path)
    assert "from-file" in registry.term_names("self")
    assert sys.path == path_before
    assert registry.get_term("self", "from-file").module.startswith("gkd_plugin_my_terms_")
    # a bare module name is looked up on sys.path as it is: the working directory is not on it
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    monkeypatch.setenv("GKD_PLUGINS", "my_terms")
    with pytest.raises(ConfigError, match=r"'my_terms' failed to import: ModuleNotFoundError.*GKD_PLUGINS=./my_terms"):
        registry.term_names("self")
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.setenv("GKD_PLUGINS", "./missing.py")
    with pytest.raises(ConfigError, match=r"GKD_PLUGINS file './missing.py' does not exist or is not a file; "
                                          r"expected a \.py file"):
        registry.term_names("self")


# -- 4. a plugin cannot take a built-in term's name or alias --------------------------------------------------------

FORGER = '''
from gkd.distill import register_term
from gkd.distill.registry import get_term


def build(ctx, o):
    return None


real = get_term("self", "time").build
build.__module__, build.__qualname__ = real.__module__, real.__qualname__
register_term("time", kind="self")(build)
'''


def test_plugins_cannot_replace_or_alias_builtin_terms(tmp_path, monkeypatch, fresh_plugins):
    original = registry._TERMS[("self", "time")].build
    (tmp_path / "forger.py").write_text(FORGER)
    monkeypatch.setenv("GKD_PLUGINS", str(tmp_path / "forger.py"))
    with pytest.raises(ConfigError, match=r"self term 'time' is already registered by gkd\.distill\.pskd "
                                          r"\(a built-in term\); \S+forger\.py may not replace it"):
        registry.term_names("self")
    assert registry.get_term("self", "time").build is original
    with pytest.raises(ConfigError, match="term name 'neighbor' is an alias of the built-in term 'neighbour'"):
        registry.register_term("neighbor", kind="self")
    with pytest.raises(ConfigError, match="term name 'normalized' is an alias of the built-in term 'normalised'"):
        registry.register_term("normalized", kind="student")
    assert registry.get_term("self", "neighbor").module == "gkd.distill.neighbour"

    @dataclass
    class Opts(registry.TermOptions):
        pass

    @registry.register_term("own-name", kind="self", options=Opts)  # control: a new name is welcome
    def build(ctx, o):
        return None

    assert registry.get_term("self", "own-name").build is build


# -- 3. loads and saves racing on one directory ---------------------------------------------------------------------

WORKER = r'''
import json, os, sys, time
from pathlib import Path

import torch
torch.set_num_threads(1)
import gkd
from gkd.errors import GKDError
from gkd.nn import MLP
from gkd.nn.student import Student
from gkd.pipeline import ArtifactError


def student(seed):
    torch.manual_seed(seed)
    return Student(MLP(12, 16, 2, 3), torch.randn(20, 4)).eval()


me, out, seconds = int(sys.argv[1]), Path(sys.argv[2]), float(sys.argv[3])
models = {"A": student(0), "B": student(1)}
mine = "AB"[me]
(out.parent / f"ready-{me}").touch()
deadline = time.time() + 120
while not all((out.parent / f"ready-{i}").exists() for i in (0, 1)) and time.time() < deadline:
    time.sleep(0.01)
counts = {"loads": 0, "ok": 0, "load_refused": 0, "saves": 0, "save_refused": 0}
bad, refusals = [], []
end = time.time() + seconds
while time.time() < end:
    try:
        gkd.save(models[mine], out, metrics={"which": mine})
        counts["saves"] += 1
    except ArtifactError as e:
        counts["save_refused"] += 1
    except Exception as e:
        bad.append(f"save: {type(e).__name__}: {e}")
    for _ in range(2):
        counts["loads"] += 1
        try:
            m = gkd.load(out)
        except ArtifactError as e:
            counts["load_refused"] += 1
            refusals.append(str(e)[-90:])
            continue
        except Exception as e:
            bad.append(f"load: {type(e).__name__}: {e}")
            continue
        which = m.manifest["metrics"].get("which")
        want = models.get(which)
        same = want is not None and m.state_dict().keys() == want.state_dict().keys() and all(
            torch.equal(v, want.state_dict()[k]) for k, v in m.state_dict().items())
        if same:
            counts["ok"] += 1
        else:
            bad.append(f"load: model {which!r}'s manifest over other weights")
print(json.dumps({**counts, "bad": bad[:5], "n_bad": len(bad), "refusals": sorted(set(refusals))[:5]}))
'''


def test_racing_saves_and_loads_give_one_whole_model_or_one_error(tmp_path):
    """Two processes each save their own model into one directory and load it back, for a few seconds at once:
    every load is exactly one of the two models (weights and manifest together) or an ArtifactError, every save ends
    with a whole artefact or an ArtifactError; nothing else escapes, and no temporary is left behind."""
    out = tmp_path / "m"
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, str(script), str(i), str(out), "4"], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in (0, 1)]
    results = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        assert p.returncode == 0, stderr
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    for r in results:
        assert r["n_bad"] == 0, r
        assert r["saves"] > 0 and r["ok"] > 0, r
        assert r["load_refused"] <= r["loads"] // 2, r  # a retry settles most races: refusals stay the exception
    back = gkd.load(out)
    want = _student({"A": 0, "B": 1}[back.manifest["metrics"]["which"]], features=8)
    assert all(torch.equal(v, want.state_dict()[k]) for k, v in back.state_dict().items())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "ready-0", "ready-1", "worker.py"]


def test_a_check_failing_in_a_replaced_directory_is_read_again_then_refused(tmp_path, monkeypatch):
    """A failed check is damage when the directory still stands at its path, and a replace under way when it does
    not: then it is read again, and after a few tries refused as changing (never blamed on damage)."""
    from gkd.io import store

    out = gkd.save(_student(0), tmp_path / "m")
    raw = bytearray((out / "weights.safetensors").read_bytes())
    raw[-1] ^= 1
    (out / "weights.safetensors").write_bytes(bytes(raw))
    with pytest.raises(ArtifactError, match="fails its sha256 check"):
        gkd.load(out)
    reads = []
    real = store._read_open_dir
    monkeypatch.setattr(store, "_read_open_dir", lambda path, fd, *a: reads.append(fd) or real(path, fd, *a))
    monkeypatch.setattr(store, "_same_dir", lambda path, fd: False)  # as if a save had moved it after each open
    with pytest.raises(ArtifactError, match="changed while it was read, 5 times: another process is replacing it"):
        gkd.load(out)
    assert len(reads) == store.TRIES


# -- 6. reads without bound: FIFOs, links to devices, sparse giants, zip bombs ---------------------------------------

@pytest.fixture
def saved(tmp_path):
    s = _student(0)
    return gkd.save(s, tmp_path / "m", metrics={"which": "A"}), s


def _fifo(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_a_fifo_manifest_neither_hangs_load_nor_save(saved):
    out, student = saved
    assert isinstance(gkd.load(out), Student)  # control
    _fifo(out / "manifest.json")
    got = _within(20, lambda: gkd.load(out))
    assert isinstance(got.get("error"), ArtifactError) and "is a FIFO; expected a regular file" in str(got["error"])
    got = _within(20, lambda: gkd.save(student, out))
    assert isinstance(got.get("error"), ArtifactError)
    assert "exists and is not a gkd model artefact" in str(got["error"])
    assert (out / "manifest.json").is_fifo()  # left as it is


def test_a_manifest_linked_to_dev_zero_is_refused(saved):
    out, student = saved
    (out / "manifest.json").unlink()
    (out / "manifest.json").symlink_to("/dev/zero")
    got = _within(20, lambda: gkd.load(out))
    assert isinstance(got.get("error"), ArtifactError), got
    assert "is a symbolic link, which gkd does not follow" in str(got["error"])
    got = _within(20, lambda: check_saveable(out))
    assert isinstance(got.get("error"), ArtifactError)


def test_a_sparse_giant_weights_file_is_refused_before_hashing(saved):
    out, _ = saved
    with open(out / "weights.safetensors", "r+b") as f:
        f.truncate(4 << 30)  # sparse: no disk used, but 4 GiB to hash
    start = time.perf_counter()
    with pytest.raises(ArtifactError, match=r"weights.safetensors' is 4294967296 bytes; expected at most \d+"):
        gkd.load(out)
    assert time.perf_counter() - start < 5


def test_a_sparse_giant_book_array_is_refused_before_hashing(tmp_path, small_graph):
    from gkd.book import BookError, open_book, write_book

    logits = torch.randn(small_graph.num_nodes, 3)
    book = write_book(tmp_path / "b", small_graph, [logits], torch.ones(small_graph.num_nodes, dtype=torch.bool))
    assert open_book(book, small_graph).num_teachers == 1  # control
    with open(book / "logits.npy", "r+b") as f:
        f.truncate(4 << 30)
    start = time.perf_counter()
    with pytest.raises(BookError, match=r"logits.npy' is 4294967296 bytes; expected at most \d+; its manifest entry "
                                        r"\[1, 300, 3\]"):
        open_book(book)
    assert time.perf_counter() - start < 5


def _forge_declared_size(path: Path, size: int) -> None:
    """Rewrite the uncompressed size an .npz's zip directory declares for its one member (local header and central
    directory): what a zip bomb declares, without compressing gigabytes here."""
    raw = bytearray(path.read_bytes())
    local, central = raw.find(b"PK\x03\x04"), raw.find(b"PK\x01\x02")
    struct.pack_into("<I", raw, local + 22, size)
    struct.pack_into("<I", raw, central + 24, size)
    path.write_bytes(bytes(raw))


def test_zip_bombs_are_refused_before_they_expand(tmp_path, monkeypatch):
    from gkd import limits
    from gkd.io import read_npz

    plain = tmp_path / "plain.npz"
    np.savez(plain, x=np.zeros((1000, 64), np.float32))  # control: uncompressed, ratio 1
    assert read_npz(plain)["x"].shape == (1000, 64)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, x=np.zeros(1 << 21, np.float32))  # 8 MiB of zeros in about 8 kB
    assert read_npz(bomb)["x"].size == 1 << 21  # within the free allowance
    monkeypatch.setattr(limits, "MAX_NPZ_FREE_BYTES", 1 << 20)
    with pytest.raises(GKDError, match=r"bomb.npz' expands to 8388736 bytes from \d+ on disk; expected at most"):
        read_npz(bomb, "graph file")
    monkeypatch.undo()
    forged = tmp_path / "forged.npz"
    member = io.BytesIO()
    np.save(member, np.zeros(1024, np.float32))
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as z:  # no zip64 record: the 32-bit sizes are the sizes
        z.writestr("x.npy", member.getvalue())
    _forge_declared_size(forged, 2 << 30)  # 2 GiB declared by a file of about 300 bytes
    start = time.perf_counter()
    with pytest.raises(GKDError, match="expands to 2147483648 bytes from"):
        read_npz(forged, "graph file")
    assert time.perf_counter() - start < 2


def test_a_teacher_file_that_is_a_zip_bomb_is_trained_again(tmp_path, monkeypatch):
    from gkd import limits
    from gkd.train.checkpoint import RunCheckpoint

    ck = RunCheckpoint(tmp_path / "ck", {"command": "book"})
    know = {"logits": torch.zeros(1 << 16, 8), "mask": torch.ones(1 << 16, dtype=torch.bool)}
    ck.save_teacher(0, 0, know, {"w": torch.zeros(4)}, {"val": 0.5})
    assert ck.teacher(0, 0) is not None  # control
    record = np.frombuffer(json.dumps({"val": 0.5, "config_sha256": ck.config_sha256}).encode(), dtype=np.uint8)
    np.savez_compressed(tmp_path / "ck" / "teacher-0-0.npz", **{"k/logits": np.zeros((1 << 16, 8), np.float32),
                                                                "k/mask": np.ones(1 << 16, bool),
                                                                "w/w": np.zeros(4, np.float32), "record": record})
    assert ck.teacher(0, 0) is not None  # compressed, but within the allowance
    monkeypatch.setattr(limits, "MAX_NPZ_FREE_BYTES", 1 << 20)
    assert ck.teacher(0, 0) is None  # 2 MiB from a few kB: refused, so the teacher is trained again


def test_a_fifo_or_dev_zero_checkpoint_config_is_refused(tmp_path):
    from gkd.train.checkpoint import RunCheckpoint

    RunCheckpoint(tmp_path / "ck", {"command": "train"})
    RunCheckpoint(tmp_path / "ck", {"command": "train"}, resume=True)  # control
    _fifo(tmp_path / "ck" / "config.json")
    got = _within(20, lambda: RunCheckpoint(tmp_path / "ck", {"command": "train"}, resume=True))
    assert isinstance(got.get("error"), ConfigError) and "is not a gkd checkpoint configuration" in str(got["error"])
    (tmp_path / "ck" / "config.json").unlink()
    (tmp_path / "ck" / "config.json").symlink_to("/dev/zero")
    got = _within(20, lambda: RunCheckpoint(tmp_path / "ck", {"command": "train"}, resume=True))
    assert isinstance(got.get("error"), ConfigError) and "is not a gkd checkpoint configuration" in str(got["error"])


# -- 9. deep nesting, exporting what is not a student ---------------------------------------------------------------

def test_a_deeply_nested_manifest_is_not_an_artefact_to_save_over(saved):
    out, student = saved
    (out / "manifest.json").write_text("[" * 100000)
    with pytest.raises(ArtifactError, match="exists and is not a gkd model artefact"):
        check_saveable(out)
    with pytest.raises(ArtifactError, match="exists and is not a gkd model artefact"):
        gkd.save(student, out)
    assert (out / "manifest.json").read_text() == "[" * 100000
    with pytest.raises(ArtifactError, match="is not valid JSON"):
        gkd.load(out)


def test_export_student_refuses_a_gnn_and_a_directory(tmp_path, small_graph):
    gkd.save(GCN(small_graph.num_features, 8, 2, 3), tmp_path / "gcn")
    with pytest.raises(ConfigError, match="export_student exports a graph-free Student .* got a GCN"):
        export_student(gkd.load(tmp_path / "gcn"), tmp_path / "g.pt2", small_graph.num_features)
    (tmp_path / "dir.pt2").mkdir()
    student = _student(0)
    for overwrite in (False, True):
        with pytest.raises(ConfigError, match="dir.pt2' is a directory; expected a .pt2 file name"):
            export_student(student, tmp_path / "dir.pt2", 8, overwrite=overwrite)
    (tmp_path / "afile").write_text("x")
    with pytest.raises(ConfigError, match="afile', which is a file, not a folder"):
        export_student(student, tmp_path / "afile" / "s.pt2", 8)
    assert export_student(student, tmp_path / "s.pt2", 8).is_file()  # control


# -- 10. messages that name the real fault ---------------------------------------------------------------------------

def test_save_under_a_file_says_it_is_a_file(tmp_path, saved):
    _, student = saved
    (tmp_path / "afile").write_text("x")
    for target in (tmp_path / "afile" / "m", tmp_path / "afile" / "deeper" / "m"):
        with pytest.raises(ConfigError, match="afile', which is a file, not a folder"):
            gkd.save(student, target)
    assert (tmp_path / "afile").read_text() == "x"


def test_a_symlinked_weights_file_is_called_a_link(saved, tmp_path):
    out, _ = saved
    real = tmp_path / "elsewhere.safetensors"
    shutil.move(out / "weights.safetensors", real)
    (out / "weights.safetensors").symlink_to(real)
    with pytest.raises(ArtifactError, match="weights.safetensors' is a symbolic link, which gkd does not follow"):
        gkd.load(out)


def _rehash(folder: Path, name: str) -> None:
    m = json.loads((folder / "manifest.json").read_text())
    m["files"][name] = {"sha256": hashlib.sha256((folder / name).read_bytes()).hexdigest(),
                        "size": (folder / name).stat().st_size}
    (folder / "manifest.json").write_text(json.dumps(m))


def test_float64_positions_are_blamed_on_the_artefact(saved):
    from safetensors.torch import load_file, save_file

    out, _ = saved
    pos = load_file(str(out / "positions.safetensors"))["positions"]
    save_file({"positions": pos.double()}, str(out / "positions.safetensors"))
    _rehash(out, "positions.safetensors")
    with pytest.raises(ArtifactError, match="positions in .* are float64; gkd writes float32 positions"):
        gkd.load(out)
    # a Student given float64 positions keeps float32 ones (its zero row too), so it answers float32 features
    s = Student(MLP(12, 8, 2, 3), pos.double())
    assert s.positions.dtype == torch.float32 and s(torch.zeros(2, 8), torch.tensor([0, -1])).dtype == torch.float32


# -- property: any byte-level damage gives the saved model or one GKDError -------------------------------------------

_TEMPLATE: dict = {}


def _template() -> tuple[Path, dict]:
    if not _TEMPLATE:
        folder = Path(tempfile.mkdtemp(prefix="gkd-hostile-"))
        student = _student(3)
        gkd.save(student, folder / "m", metrics={"test": 0.5}, position={"method": "fastrp"})
        _TEMPLATE.update(folder=folder / "m", state={k: v.clone() for k, v in student.state_dict().items()})
    return _TEMPLATE["folder"], _TEMPLATE["state"]


@pytest.fixture(scope="module", autouse=True)
def _drop_template():
    yield
    if _TEMPLATE:
        shutil.rmtree(_TEMPLATE["folder"].parent, ignore_errors=True)
        _TEMPLATE.clear()


damage = st.lists(st.tuples(st.sampled_from(["manifest.json", "weights.safetensors", "positions.safetensors"]),
                            st.sampled_from(["flip", "truncate", "append"]), st.floats(0, 1),
                            st.binary(min_size=1, max_size=8)),
                  min_size=1, max_size=3)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damage)
def test_damaged_bytes_load_the_saved_model_or_fail_cleanly(changes):
    template, state = _template()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "m"
        shutil.copytree(template, folder)
        for name, how, where, data in changes:
            raw = bytearray((folder / name).read_bytes())
            at = min(int(where * len(raw)), max(len(raw) - 1, 0))
            if how == "flip" and raw:
                raw[at] ^= data[0] or 1
            elif how == "truncate":
                raw = raw[:at]
            else:
                raw += data
            (folder / name).write_bytes(bytes(raw))
        try:
            back = gkd.load(folder)
        except GKDError:
            return
        got = back.state_dict()
        assert got.keys() == state.keys()
        assert all(got[k].dtype == v.dtype and torch.equal(got[k], v) for k, v in state.items())
