import pytest
import torch
from torch_geometric.data import Data

from gkd.datasets import check_data
from gkd.errors import DatasetError


def graph(**over):
    n = 6
    d = Data(x=torch.randn(n, 3), edge_index=torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]]), y=torch.tensor([0, 1, 0, 1, 0, 1]),
             train_mask=torch.tensor([1, 1, 0, 0, 0, 0], dtype=torch.bool),
             val_mask=torch.tensor([0, 0, 1, 1, 0, 0], dtype=torch.bool),
             test_mask=torch.tensor([0, 0, 0, 0, 1, 1], dtype=torch.bool))
    for k, v in over.items():
        d[k] = v
    return d


def test_valid_graph_passes():
    check_data(graph(), 2)


@pytest.mark.parametrize("over, pattern", [
    ({"edge_index": torch.tensor([0, 1, 2])}, r"edge_index has shape \(3,\); expected \[2, num_edges\]"),
    ({"edge_index": torch.tensor([[0, 1], [1, 2], [2, 3]])}, r"shape \(3, 2\)"),
    ({"edge_index": torch.tensor([[0.0, 1.0], [1.0, 2.0]])}, r"dtype torch.float32; expected torch.int64"),
    ({"edge_index": torch.tensor([[0, 1], [1, 6]])}, r"ids in \[0, 6\]; expected ids in \[0, 5\]"),
    ({"edge_index": torch.tensor([[-1, 1], [1, 2]])}, r"ids in \[-1, 2\]"),
    ({"x": torch.tensor([[float("nan")] * 3] + [[0.0] * 3] * 5)}, r"NaN/inf values \(first in node 0\)"),
    ({"x": torch.tensor([[float("inf")] * 3] * 6)}, r"NaN/inf"),
    ({"y": torch.tensor([0, 1, -2, 1, 0, 1])}, r"labels lie in \[-2, 1\]; expected classes in \[0, 1\]"),
    ({"y": torch.tensor([0, 1, -1, 1, 0, 1])}, r"val_mask selects 1 unlabelled nodes \(label -1\)"),
    ({"y": torch.tensor([0, 1, 2, 1, 0, 1])}, r"labels lie in \[0, 2\]"),
    ({"train_mask": torch.zeros(6, dtype=torch.bool)}, r"train_mask selects no node"),
    ({"test_mask": torch.tensor([1, 0, 0, 0, 1, 1], dtype=torch.bool)}, r"train_mask and test_mask overlap in 1"),
])
def test_bad_graphs_are_refused(over, pattern):
    with pytest.raises(DatasetError, match=pattern):
        check_data(graph(**over), 2)
