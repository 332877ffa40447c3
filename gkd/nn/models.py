r"""The backbone zoo: GCN, GAT, GraphSAGE and MLP on PyG layers, one base class.

Constructors take PyG ``BasicGNN``'s positional order ``(in_channels, hidden_channels, num_layers, out_channels)``, so
``GCN(1433, 16, 2, 7)`` is the same 2-layer, 7-class net in gkd and in PyG. Every model is called as
``model(x, edge_index, edge_weight=None, *, edge_attr=None, return_hidden=False)`` (GCN takes ``edge_weight``, GAT
``edge_attr`` when built with ``edge_dim``, as their PyG layers do). ``edge_index`` is a ``[2, E]`` tensor or a
``torch.sparse_csr`` *transposed* adjacency (``adj_t[i, j] != 0`` iff ``j → i``; see :func:`gkd.nn.to_adj_t`), which
PyG layers turn into SpMM so a million-node graph never materialises per-edge messages. With ``return_hidden=True`` it
returns ``(logits, hidden)`` where ``hidden`` lists the post-activation output of every layer but the last: the
taps that feature distillers use, from the same forward pass.
"""
from __future__ import annotations

import warnings
import weakref
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, SAGEConv

from ..errors import ConfigError, DatasetError, check
from ..limits import MAX_LAYERS
from .functional import dropout


def check_model_args(num_layers: int, hidden_channels: int, dropout: float) -> None:
    """The checks every zoo model makes; also run by the run config before any data is loaded."""
    check(isinstance(num_layers, int) and 1 <= num_layers <= MAX_LAYERS,
          f"num_layers={num_layers!r}; expected an integer in [1, {MAX_LAYERS}]", ConfigError)
    check(isinstance(hidden_channels, int) and hidden_channels > 0,
          f"hidden_channels={hidden_channels!r}; expected an integer > 0", ConfigError)
    check(0.0 <= float(dropout) < 1.0, f"dropout={dropout!r}; expected a value in [0, 1)", ConfigError)


def model_class(name: str) -> type["BasicModel"]:
    """The zoo class for ``name`` (``gcn``, ``gat``, ``sage``/``graphsage``, ``mlp``)."""
    cls = MODELS.get(str(name).lower())
    if cls is None:
        raise ConfigError(f"unknown model {name!r}; expected one of {', '.join(sorted(set(MODELS) - {'graphsage'}))}")
    return cls


class BasicModel(nn.Module):
    r"""Stack of ``num_layers`` layers: (dropout → layer → ReLU) repeated, the last without ReLU.

    Subclasses only say how to build one layer (:meth:`init_layer`) and whether it needs the graph.
    """

    uses_graph: bool = True
    supports_edge_weight: bool = False
    supports_edge_attr: bool = False

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2, out_channels: int | None = None,
                 dropout: float = 0.5, **kwargs: Any) -> None:
        super().__init__()
        out_channels = hidden_channels if out_channels is None else out_channels  # PyG's BasicGNN convention
        for name, v in (("in_channels", in_channels), ("out_channels", out_channels)):
            check(isinstance(v, int) and v >= 1, f"{name}={v!r}; expected an integer >= 1", ConfigError)
        check_model_args(num_layers, hidden_channels, dropout)
        self.in_channels, self.hidden_channels, self.out_channels = in_channels, hidden_channels, out_channels
        self.num_layers, self.dropout = num_layers, float(dropout)
        dims = [in_channels] + [hidden_channels] * (num_layers - 1) + [out_channels]
        self.layers = nn.ModuleList(
            self.init_layer(dims[i], dims[i + 1], last=i == num_layers - 1, **kwargs) for i in range(num_layers))

    def init_layer(self, in_channels: int, out_channels: int, *, last: bool, **kwargs: Any) -> nn.Module:
        raise NotImplementedError

    def first_layer(self, x: Tensor, edge_index: Tensor | None, **edge: Tensor) -> Tensor:
        """Input dropout and the first layer (subclasses may use the input's sparsity)."""
        return self._layer(0, self._input_dropout(x), edge_index, edge)

    def _layer(self, i: int, x: Tensor, edge_index: Tensor | None, edge: dict[str, Tensor]) -> Tensor:
        return self.layers[i](x, edge_index, **edge) if self.uses_graph else self.layers[i](x)

    def _edge_args(self, edge_index: Tensor | None, edge_weight: Tensor | None,
                   edge_attr: Tensor | None) -> dict[str, Tensor]:
        """What the PyG layer takes besides the graph; a value it would silently ignore is an error instead."""
        name = type(self).__name__
        if not self.uses_graph:
            return {}
        check(edge_weight is None or self.supports_edge_weight, f"{name} takes no edge_weight (its PyG layer has "
              "none); use GCN, or pass a weighted sparse adjacency", ConfigError)
        check(edge_attr is None or self.supports_edge_attr, f"{name} takes no edge_attr"
              f"{' unless built with edge_dim' if isinstance(self, GAT) else ''}", ConfigError)
        sparse = isinstance(edge_index, Tensor) and edge_index.layout != torch.strided
        check(not (sparse and (edge_weight is not None or edge_attr is not None)),
              "edge_weight/edge_attr come with a [2, E] edge_index; a sparse adjacency carries its weights itself",
              ConfigError)
        out = {}
        if edge_weight is not None:
            out["edge_weight"] = edge_weight
        if edge_attr is not None:
            out["edge_attr"] = edge_attr
        return out

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor | None = None, edge_weight: Tensor | None = None, *,
                edge_attr: Tensor | None = None,
                return_hidden: bool = False) -> Tensor | tuple[Tensor, list[Tensor]]:
        if self.uses_graph and edge_index is None:
            raise ConfigError(f"{type(self).__name__} needs edge_index (or a sparse adjacency); got None")
        want = next(self.parameters()).dtype
        if x.dtype != want:  # PyG's own message would be a matmul dtype clash deep inside a layer
            raise DatasetError(f"x has dtype {x.dtype}; this model's parameters are {want} (convert the features, "
                               f"e.g. data.x = data.x.to({want}), or the model)")
        edge = self._edge_args(edge_index, edge_weight, edge_attr)
        hidden: list[Tensor] = []
        for i in range(self.num_layers):
            if i == 0:
                x = self.first_layer(x, edge_index, **edge)
            else:
                x = self._layer(i, dropout(x, self.dropout, self.training), edge_index, edge)
            if i < self.num_layers - 1:
                x = F.relu(x)
                hidden.append(x)
        return (x, hidden) if return_hidden else x

    def _input_dropout(self, x: Tensor) -> Tensor:
        """Dropout on the input features that draws random numbers only for their nonzero entries.

        Equal in distribution to ``F.dropout`` (a dropped zero is still zero) but, on sparse bag-of-words features
        such as Cora's (1.3% nonzero), about 15x cheaper: CPU RNG dominated the whole training step otherwise.
        """
        if not self.training or self.dropout == 0.0:
            return x  # rebuilding x from its nonzeros cost a fifth of a CiteSeer teacher's time, in evaluation
        kept = self._kept_nonzeros(x)
        if kept is None:
            return dropout(x, self.dropout, self.training)
        idx, values = kept
        out = torch.zeros_like(x).view(-1)
        out[idx] = values
        return out.view_as(x)

    def _kept_nonzeros(self, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """``(flat indices, values)`` of the input after dropout, or ``None`` when ``x`` is not sparse enough (or
        needs gradients) for the nonzero path to pay."""
        if x.requires_grad or x.dim() != 2:
            return None
        # Keyed by the tensor itself (a weak reference) and its version: a key of data_ptr() handed a new tensor,
        # allocated where a freed one lived, the freed one's pattern (measured: position features silently dropped).
        ref = getattr(self, "_nz_ref", None)
        if ref is None or ref() is not x or self._nz_version != x._version:
            nz = x.reshape(-1).nonzero().view(-1)
            self._nz_ref, self._nz_version = weakref.ref(x), x._version
            self._nz = nz if nz.numel() < 0.25 * x.numel() else None
        if self._nz is None:
            return None
        values = x.reshape(-1)[self._nz]
        if not self.training or self.dropout == 0.0:
            return self._nz, values
        keep = torch.rand(self._nz.numel(), device=x.device) >= self.dropout
        return self._nz[keep], values[keep] / (1.0 - self.dropout)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.in_channels}, {self.hidden_channels}, num_layers={self.num_layers}, "
                f"out_channels={self.out_channels}, dropout={self.dropout})")


class GCN(BasicModel):
    r"""Graph convolutional network (Kipf & Welling, ICLR 2017):
    :math:`H' = \hat D^{-1/2}(A + I)\hat D^{-1/2} H W`."""

    supports_edge_weight = True

    def init_layer(self, in_channels, out_channels, *, last, **kwargs):
        return GCNConv(in_channels, out_channels, **kwargs)


class GraphSAGE(BasicModel):
    r"""GraphSAGE with mean aggregation (Hamilton et al., NeurIPS 2017):
    :math:`h_i' = W_1 h_i + W_2\,\mathrm{mean}_{j \in N(i)} h_j`."""

    def init_layer(self, in_channels, out_channels, *, last, **kwargs):
        return SAGEConv(in_channels, out_channels, **kwargs)


class GAT(BasicModel):
    r"""Graph attention network (Veličković et al., ICLR 2018): :math:`h_i' = \Vert_k \sum_j \alpha^k_{ij} W^k h_j`.

    ``hidden_channels`` is the width after concatenating ``heads`` heads (must be divisible by ``heads``); the output
    layer averages ``heads`` heads when ``out_heads`` is given (GAT's PubMed setting), else uses one head. Attention
    dropout equals ``dropout`` as in the paper.
    """

    def __init__(self, in_channels: int, hidden_channels: int, num_layers: int = 2, out_channels: int | None = None,
                 dropout: float = 0.6, heads: int = 8, out_heads: int = 1, **kwargs: Any) -> None:
        check(isinstance(heads, int) and heads >= 1, f"heads={heads!r}; expected an integer >= 1", ConfigError)
        check(isinstance(hidden_channels, int) and hidden_channels > 0 and hidden_channels % heads == 0,
              f"hidden_channels={hidden_channels!r}; expected a positive multiple of heads={heads}", ConfigError)
        self.heads, self.out_heads = heads, out_heads
        self.supports_edge_attr = kwargs.get("edge_dim") is not None  # GATConv reads edge_attr only then
        super().__init__(in_channels, hidden_channels, num_layers, out_channels, dropout, **kwargs)

    def init_layer(self, in_channels, out_channels, *, last, **kwargs):
        if last:
            return GATConv(in_channels, out_channels, heads=self.out_heads, concat=False, dropout=self.dropout,
                           **kwargs)
        return GATConv(in_channels, out_channels // self.heads, heads=self.heads, dropout=self.dropout, **kwargs)


class MLP(BasicModel):
    r"""Multi-layer perceptron over node features alone: :math:`H' = H W + b`; ``edge_index`` is ignored.

    On sparse inputs (under 25% nonzero, e.g. bag-of-words) the first layer is a sparse-dense product over the
    nonzeros that survive dropout: same result, 9x faster
    forward+backward on Cora's 1.3%-dense features (13 vs 116 ms, 1 thread).
    """

    uses_graph = False

    def init_layer(self, in_channels, out_channels, *, last, **kwargs):
        return nn.Linear(in_channels, out_channels, **kwargs)

    def first_layer(self, x: Tensor, edge_index: Tensor | None, **edge: Tensor) -> Tensor:
        kept = self._kept_nonzeros(x) if x.size(0) > 64 else None  # tiny batches: dense is faster
        if kept is None:
            return super().first_layer(x, edge_index)
        idx, values = kept
        n, f = x.shape
        crow = torch.zeros(n + 1, dtype=torch.long, device=x.device)
        crow[1:] = torch.cumsum(torch.bincount(idx // f, minlength=n), 0)
        with warnings.catch_warnings():  # torch flags CSR constructors as beta; CSR @ dense is stable
            warnings.simplefilter("ignore", UserWarning)
            sparse = torch.sparse_csr_tensor(crow, idx % f, values, (n, f))
        lin = self.layers[0]
        out = sparse @ lin.weight.t()  # CSR beats COO by 2x here (Cora, 1 thread: 13 vs 30 ms with backward)
        return out + lin.bias if lin.bias is not None else out


MODELS: dict[str, type[BasicModel]] = {"gcn": GCN, "gat": GAT, "sage": GraphSAGE, "graphsage": GraphSAGE, "mlp": MLP}


def build_model(name: str, in_channels: int, out_channels: int, hidden_channels: int = 64,
                **kwargs: Any) -> BasicModel:
    """Build a zoo model by name (``gcn``, ``gat``, ``sage``/``graphsage``, ``mlp``)."""
    return model_class(name)(in_channels, hidden_channels, out_channels=out_channels, **kwargs)


def to_adj_t(edge_index: Tensor, num_nodes: int, edge_weight: Tensor | None = None) -> Tensor:
    """``[2, E]`` edges (``src → dst``), optionally weighted → ``torch.sparse_csr`` transposed adjacency that every
    zoo model accepts."""
    import warnings

    from torch_geometric.utils import to_torch_csr_tensor

    with warnings.catch_warnings():  # torch flags every CSR constructor as "beta"; the ops gkd uses are stable
        warnings.simplefilter("ignore", UserWarning)
        return to_torch_csr_tensor(edge_index.flip(0), edge_weight, size=(num_nodes, num_nodes))


def graph_of(data) -> Tensor:
    """The structure a model should be called with: ``data.adj_t`` (CSR, SpMM) when present, else ``edge_index``.

    SpMM never materialises per-edge messages: 2.5x faster for GraphSAGE on Cora, and the only way a 1M-node /
    20M-edge graph fits in 24 GB.
    """
    adj_t = getattr(data, "adj_t", None)
    return adj_t if adj_t is not None else data.edge_index
