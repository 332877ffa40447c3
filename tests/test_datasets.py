import shutil

import numpy as np
import pytest
import torch

from gkd.datasets import available, csbm, load
from gkd.errors import DatasetError

from conftest import DATA_ROOT, assert_one_line_error, needs_cora, write_csv_gz, write_ogb_arxiv_folder


@needs_cora
def test_cora_public_split(cora):
    assert cora.num_nodes == 2708 and cora.num_features == 1433
    assert cora.meta.num_classes == 7 and cora.meta.name == "Cora"
    assert (int(cora.train_mask.sum()), int(cora.val_mask.sum()), int(cora.test_mask.sum())) == (140, 500, 1000)
    assert "public" in cora.meta.split


def test_unknown_dataset_suggests_near_names():
    with pytest.raises(DatasetError, match=r"unknown dataset 'coraa'.*did you mean cora"):
        load("coraa")


def test_missing_dataset_names_path_and_does_not_download(tmp_path):
    with pytest.raises(DatasetError, match=str(tmp_path / "Cora" / "raw")) as e:
        load("Cora", root=tmp_path)
    assert "No download is attempted" in str(e.value)


def test_root_precedence(tmp_path, monkeypatch):
    from gkd.datasets import resolve_root

    monkeypatch.setenv("GKD_DATA", str(tmp_path / "env"))
    assert resolve_root(None) == tmp_path / "env"
    assert resolve_root(tmp_path / "arg") == tmp_path / "arg"
    monkeypatch.delenv("GKD_DATA")
    assert resolve_root(None).name == "datasets"


@pytest.fixture
def cora_copy(tmp_path):
    if not (DATA_ROOT / "Cora" / "raw").is_dir():
        pytest.skip("no Cora raw files")
    shutil.copytree(DATA_ROOT / "Cora" / "raw", tmp_path / "Cora" / "raw")
    return tmp_path


def test_truncated_raw_file_is_refused(cora_copy):
    f = cora_copy / "Cora" / "raw" / "ind.cora.allx"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(DatasetError, match=r"ind\.cora\.allx.*truncated or corrupt"):
        load("Cora", root=cora_copy)
    assert not (cora_copy / "Cora" / "processed" / "data.pt").exists()


def test_raw_pickle_with_foreign_class_is_refused(cora_copy):
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (cora_copy / "Cora" / "raw" / "ind.cora.y").write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(DatasetError, match=r"ind\.cora\.y.*references '(__builtin__|builtins) print'"):
        load("Cora", root=cora_copy)


class _Payload:
    """Unpickling this creates ``marker``: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _plant_processed(folder, marker):
    """What PyG's dataset classes would unpickle: pre_transform.pt, pre_filter.pt and data.pt holding payloads."""
    processed = folder / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    for name in ("pre_transform.pt", "pre_filter.pt", "data.pt"):
        torch.save(_Payload(marker), processed / name)


def _tree(root):
    return sorted((str(p.relative_to(root)), p.stat().st_size) for p in root.rglob("*"))


def test_planted_processed_pickles_never_run(cora_copy, webkb_folder, tmp_path):
    """A pickle dropped into processed/ (PyG's cache) must not run: gkd reads the raw files itself, caches nothing,
    and the graph it returns is the one in raw/."""
    marker = tmp_path / "pwned"
    _plant_processed(cora_copy / "Cora", marker)
    _plant_processed(webkb_folder / "texas", marker)
    before = _tree(cora_copy), _tree(webkb_folder)
    assert load("Cora", root=cora_copy).num_nodes == 2708
    assert load("texas", root=webkb_folder).num_nodes == 40
    assert not marker.exists()
    assert (_tree(cora_copy), _tree(webkb_folder)) == before  # nothing written under the data root


def test_truncated_processed_cache_is_ignored(cora_copy):
    """A SIGKILL during PyG's first processing left a truncated data.pt: gkd never reads it, so later runs work."""
    (cora_copy / "Cora" / "processed").mkdir()
    (cora_copy / "Cora" / "processed" / "data.pt").write_bytes(b"PK\x03\x04 truncated")
    assert load("Cora", root=cora_copy).num_nodes == 2708


def _op(code: bytes, text: str) -> bytes:
    import struct

    raw = text.encode()
    return code + struct.pack("<Q", len(raw)) + raw  # BINUNICODE8: 8-byte length, then UTF-8


def test_binunicode8_stack_global_payload_is_refused(cora_copy, tmp_path):
    """Protocol-4 strings (BINUNICODE8) naming os.system through STACK_GLOBAL, after decoy literals 'numpy ndarray'
    that a check reading only the short string opcodes would take for the target: refused, nothing runs."""
    marker = tmp_path / "pwned"
    decoys = b"\x8c\x05numpy0\x8c\x07ndarray0"  # SHORT_BINUNICODE + POP, twice
    payload = (b"\x80\x04" + decoys + _op(b"\x8d", "os") + _op(b"\x8d", "system") + b"\x93"
               + _op(b"\x8d", f"touch {marker}") + b"\x85R.")
    (cora_copy / "Cora" / "raw" / "ind.cora.x").write_bytes(payload)
    with pytest.raises(DatasetError, match=r"ind\.cora\.x.*references 'os system'"):
        load("Cora", root=cora_copy)
    assert not marker.exists()


def test_memo_payload_is_refused(cora_copy, tmp_path):
    """The global's name comes from the memo (BINGET) while decoy literals 'numpy ndarray' come last: a check that
    guesses STACK_GLOBAL's target from the last strings is fooled; the restricted unpickler sees os.system."""
    marker = tmp_path / "pwned"

    def s(text: str) -> bytes:  # SHORT_BINUNICODE
        return b"\x8c" + bytes([len(text)]) + text.encode()

    payload = (b"\x80\x04" + s("os") + b"q\x00" + s("system") + b"q\x01" + s("numpy") + b"0" + s("ndarray") + b"0"
               + b"h\x00h\x01\x93" + s(f"touch {marker}") + b"\x85R.")
    (cora_copy / "Cora" / "raw" / "ind.cora.graph").write_bytes(payload)
    with pytest.raises(DatasetError, match=r"ind\.cora\.graph.*references 'os system'"):
        load("Cora", root=cora_copy)
    assert not marker.exists()


def test_loads_match_pyg_dataset_classes(cora_copy, webkb_folder, tmp_path):
    """gkd's readers give exactly the tensors PyG's Planetoid and WebKB classes build (run here on copies gkd made,
    in a scratch root, so PyG's own pickle cache holds only what PyG wrote)."""
    from torch_geometric.datasets import Planetoid, WebKB

    ref = Planetoid(str(cora_copy), "Cora", split="public")[0]
    ours = load("Cora", root=cora_copy)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert ref[key].dtype == ours[key].dtype and torch.equal(ref[key], ours[key]), key
    ref = WebKB(str(webkb_folder), "Texas")[0]
    for s in (0, 7):
        ours = load("texas", root=webkb_folder, split=s)
        for key in ("x", "edge_index", "y"):
            assert ref[key].dtype == ours[key].dtype and torch.equal(ref[key], ours[key]), key
        for key in ("train_mask", "val_mask", "test_mask"):
            assert torch.equal(ref[key][:, s], ours[key]), key


def test_read_only_root_is_enough(cora_copy):
    """Planetoid and geom-gcn sets are read in place: a data root gkd cannot write to loads fine."""
    import os

    for p in [cora_copy, *cora_copy.rglob("*")]:
        os.chmod(p, 0o555 if p.is_dir() else 0o444)
    try:
        assert load("Cora", root=cora_copy).num_nodes == 2708
        assert not (cora_copy / "Cora" / "processed").exists()
    finally:
        for p in [cora_copy, *cora_copy.rglob("*")]:
            os.chmod(p, 0o755 if p.is_dir() else 0o644)


def test_planetoid_files_that_disagree(cora_copy):
    raw = cora_copy / "Cora" / "raw"
    (raw / "ind.cora.ty").write_bytes((raw / "ind.cora.y").read_bytes())  # 140 label rows for 1000 test nodes
    with pytest.raises(DatasetError, match=r"Planetoid files under .* disagree: .*ty \(140, 7\)"):
        load("Cora", root=cora_copy)


def test_damaged_geom_gcn_files(webkb_folder):
    raw = webkb_folder / "texas" / "raw"
    (raw / "out1_graph_edges.txt").write_text("node_id\tnode_id\n0\t99\n")
    with pytest.raises(DatasetError, match=r"links node ids in \[0, 99\]; the graph has 40 nodes"):
        load("texas", root=webkb_folder)
    (raw / "texas_split_0.6_0.2_0.npz").write_bytes(b"not a zip")
    (raw / "out1_graph_edges.txt").write_text("node_id\tnode_id\n0\t1\n")
    with pytest.raises(DatasetError, match="is not an .npz of train_mask"):
        load("texas", root=webkb_folder)


@pytest.mark.parametrize("row, message", [
    ("0\t1,0,1,0,1,0\t1000000000000", r"holds labels in \[0, 1000000000000\]; expected classes 0 .. C-1 with C at most "
     r"the node count \(40\)"),
    ("0\t1,0,1,0,1,0\t100000000000000000000", "holds '100000000000000000000'; expected integers below 2..62"),
    ("0\t1,0,1,0,1,0\t1,2", "holds '1,2'; expected one integer"),
])
def test_geom_gcn_labels_beyond_what_a_graph_holds(webkb_folder, row, message):
    """A 10**12 label would size [N, 10**12] tensors; a 20-digit one overflows int64: one error, at loading."""
    table = webkb_folder / "texas" / "raw" / "out1_node_feature_label.txt"
    lines = table.read_text().splitlines()
    table.write_text("\n".join([lines[0], row, *lines[2:]]) + "\n")
    with pytest.raises(DatasetError, match=message):
        load("texas", root=webkb_folder)
    edges = webkb_folder / "texas" / "raw" / "out1_graph_edges.txt"
    table.write_text("\n".join(lines) + "\n")
    edges.write_text("node_id\tnode_id\n0\t100000000000000000000\n")
    with pytest.raises(DatasetError, match="expected integers below 2..62"):
        load("texas", root=webkb_folder)


def test_csbm_deterministic_and_homophily():
    from torch_geometric.utils import homophily, is_undirected

    a = csbm(num_nodes=2000, homophily=0.2, seed=3)
    b = csbm(num_nodes=2000, homophily=0.2, seed=3)
    assert torch.equal(a.x, b.x) and torch.equal(a.edge_index, b.edge_index) and torch.equal(a.y, b.y)
    assert not torch.equal(a.x, csbm(num_nodes=2000, homophily=0.2, seed=4).x)
    assert is_undirected(a.edge_index)
    for h in (0.1, 0.5, 0.9):
        g = csbm(num_nodes=3000, homophily=h, avg_degree=10, seed=0)
        assert abs(homophily(g.edge_index, g.y) - h) < 0.03
        assert abs(g.num_edges / g.num_nodes - 10) < 0.5


@pytest.mark.parametrize("n", [3, 40, 700])
def test_csbm_undirected_edges_equal_pyg_to_undirected(n):
    """csbm's memory-lean undirected construction gives PyG's to_undirected edges exactly (duplicates, both
    directions and self-loops in the sampled pairs included)."""
    from torch_geometric.utils import to_undirected

    from gkd.datasets.csbm import _undirected

    g = torch.Generator().manual_seed(n)
    src, dst = torch.randint(n, (4 * n,), generator=g), torch.randint(n, (4 * n,), generator=g)
    keep = src != dst
    assert torch.equal(_undirected(src, dst, n), to_undirected(torch.stack([src[keep], dst[keep]]), num_nodes=n))


def test_csbm_through_load_and_bad_args():
    d = load("synthetic-csbm", num_nodes=1700, homophily=0.5)
    assert d.meta.num_classes == 5 and int(d.train_mask.sum()) == 100
    with pytest.raises(DatasetError, match="homophily=1.5"):
        load("synthetic-csbm", homophily=1.5)
    with pytest.raises(DatasetError, match="unknown synthetic-csbm argument"):
        load("synthetic-csbm", homophilly=0.5)
    with pytest.raises(DatasetError, match="the split needs"):
        load("synthetic-csbm", num_nodes=100)


@pytest.fixture
def ogb_folder(tmp_path):
    return write_ogb_arxiv_folder(tmp_path)


def test_ogb_folder_through_ogb_readers(ogb_folder):
    d = load("ogbn-arxiv", root=ogb_folder)
    assert d.num_nodes == 60 and d.num_features == 8 and d.meta.num_classes == 40
    assert (int(d.train_mask.sum()), int(d.val_mask.sum()), int(d.test_mask.sum())) == (30, 15, 15)
    assert d.meta.metric == "ogb:ogbn-arxiv"
    cache = ogb_folder / "ogbn_arxiv" / "processed" / "gkd_graph.npz"
    assert cache.is_file()
    np.load(cache, allow_pickle=False)  # the cache holds no pickles
    again = load("ogbn-arxiv", root=ogb_folder)
    assert torch.equal(again.x, d.x) and torch.equal(again.edge_index, d.edge_index)


def test_ogb_evaluator_metric(ogb_folder):
    from gkd.train import get_metric

    metric = get_metric("ogb:ogbn-arxiv")
    logits = torch.eye(4)
    assert metric(logits, torch.tensor([0, 1, 2, 0])) == pytest.approx(0.75)


def test_ogb_bad_split_ids(ogb_folder):
    write_csv_gz(ogb_folder / "ogbn_arxiv" / "split" / "time" / "test.csv.gz", np.array([[5], [999]]))
    with pytest.raises(DatasetError, match="split holds node ids outside"):
        load("ogbn-arxiv", root=ogb_folder)


def test_ogb_bad_folder_is_one_error_line_on_the_cli(ogb_folder, capsys):
    """ogb's readers print progress; a bad folder's error must still be the only line the user sees."""
    from gkd.cli import main

    write_csv_gz(ogb_folder / "ogbn_arxiv" / "split" / "time" / "test.csv.gz", np.array([[5], [999]]))
    assert main(["train", "--dataset", "ogbn-arxiv", "--root", str(ogb_folder), "--epochs", "1"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert_one_line_error(err)
    assert "split holds node ids outside" in err


def test_ogb_missing_never_prompts(tmp_path, monkeypatch):
    monkeypatch.setattr("builtins.input", lambda *a: pytest.fail("ogb download prompt reached"))
    with pytest.raises(DatasetError, match="ogbn_products"):
        load("ogbn-products", root=tmp_path)


@pytest.fixture
def webkb_folder(tmp_path):
    """Texas in the geom-gcn file layout that PyG's WebKB reads: features|label table, edge list, 10 split files."""
    rng = np.random.default_rng(0)
    n = 40
    raw = tmp_path / "texas" / "raw"
    raw.mkdir(parents=True)
    rows = ["node_id\tfeature\tlabel"] + [f"{i}\t{','.join(map(str, rng.integers(0, 2, 6)))}\t{i % 5}"
                                          for i in range(n)]
    (raw / "out1_node_feature_label.txt").write_text("\n".join(rows) + "\n")
    edges = ["node_id\tnode_id"] + [f"{a}\t{b}" for a, b in rng.integers(0, n, size=(80, 2))]
    (raw / "out1_graph_edges.txt").write_text("\n".join(edges) + "\n")
    for s in range(10):
        perm = rng.permutation(n)
        masks = {k: np.zeros(n, dtype=bool) for k in ("train_mask", "val_mask", "test_mask")}
        masks["train_mask"][perm[:20]] = masks["val_mask"][perm[20:30]] = masks["test_mask"][perm[30:]] = True
        np.savez(raw / f"texas_split_0.6_0.2_{s}.npz", **masks)
    return tmp_path


def test_webkb_split_r_mod_10(webkb_folder):
    a, b, c = (load("texas", root=webkb_folder, split=s) for s in (1, 11, 2))
    assert a.meta.num_splits == 10 and a.meta.split_index == 1 and b.meta.split_index == 1
    assert torch.equal(a.train_mask, b.train_mask) and not torch.equal(a.train_mask, c.train_mask)
    assert a.meta.num_classes == 5 and a.train_mask.dim() == 1


def test_available_lists_the_families():
    names = available()
    for n in ("cora", "citeseer", "pubmed", "texas", "wisconsin", "cornell", "actor", "ogbn-arxiv", "synthetic-csbm"):
        assert n in names


@pytest.mark.parametrize("kwargs, message", [
    ({"num_nodes": "abc"}, r"num_nodes='abc'; expected an integer in \[2, "),
    ({"num_nodes": 10 ** 12}, r"num_nodes=1000000000000; expected an integer in \[2, "),
    ({"num_features": 2.5}, r"num_features=2.5; expected an integer in \[1, "),
    ({"avg_degree": 1e300}, r"avg_degree=1e\+300; expected a value in \(0, num_nodes\]"),
    ({"homophily": float("nan")}, "homophily=nan; expected a finite number"),
    ({"num_nodes": 40_000_000, "avg_degree": 200.0}, "edges; expected at most"),
    ({"num_nodes": 40_000_000, "num_features": 60_000}, "feature entries; expected at most"),
])
def test_csbm_refuses_wrong_types_and_sizes_before_allocating(kwargs, message):
    with pytest.raises(DatasetError, match=message):
        csbm(**kwargs)


def test_actor_feature_id_that_would_need_a_huge_dense_matrix(tmp_path):
    """Actor's features are sparse ids made dense: a stray 10**9 would ask for terabytes; one DatasetError instead."""
    raw = tmp_path / "Actor" / "raw"
    raw.mkdir(parents=True)
    n = 12
    rows = ["node_id\tfeature\tlabel"] + [f"{i}\t{i % 4},{(i + 1) % 4}\t{i % 3}" for i in range(n)]
    (raw / "out1_graph_edges.txt").write_text("node_id\tnode_id\n" + "\n".join(f"{i}\t{(i + 1) % n}" for i in
                                                                             range(n)) + "\n")
    for s in range(10):
        masks = {k: np.zeros(n, dtype=bool) for k in ("train_mask", "val_mask", "test_mask")}
        masks["train_mask"][:6] = masks["val_mask"][6:9] = masks["test_mask"][9:] = True
        np.savez(raw / f"film_split_0.6_0.2_{s}.npz", **masks)
    (raw / "out1_node_feature_label.txt").write_text("\n".join(rows) + "\n")
    assert load("actor", root=tmp_path).x.shape == (n, 4)
    rows[1] = "0\t1,1000000000\t0"
    (raw / "out1_node_feature_label.txt").write_text("\n".join(rows) + "\n")
    with pytest.raises(DatasetError, match=r"a dense \[12, 1000000001\] feature matrix is more than"):
        load("actor", root=tmp_path)
