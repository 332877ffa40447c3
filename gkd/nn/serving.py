r"""Answering queries for a few new nodes: a GraphSAGE that must fetch their neighbourhoods, and an MLP that must not.

This is what GNN-to-MLP distillation buys (GLNN, Zhang et al. ICLR 2022, Fig. 1): the MLP reads B feature rows; the
L-layer GNN reads the L-hop neighbourhood and computes layer l only for the nodes layer l+1 needs. Both paths here
are the fast version of themselves (vectorised CSR gathers, no Python loop per node; fused ``addmm`` without autograd
for the MLP) so the
ratio the latency benchmark reports is not against a strawman.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import SAGEConv

from ..errors import ConfigError, check
from .student import Student, check_finite_logits


def gather_neighbours(crow: Tensor, col: Tensor, nodes: Tensor) -> tuple[Tensor, Tensor]:
    """In-neighbours of ``nodes`` from a CSR (row = target) structure: ``(neighbours, segment)`` where
    ``segment[k]`` is the position in ``nodes`` that ``neighbours[k]`` belongs to. Fully vectorised."""
    start, end = crow[nodes], crow[nodes + 1]
    counts = end - start
    total = int(counts.sum())
    seg = torch.repeat_interleave(torch.arange(nodes.numel(), device=nodes.device), counts, output_size=total)
    offsets = torch.arange(total, device=nodes.device) - (torch.cumsum(counts, 0) - counts)[seg]
    return col[start[seg] + offsets], seg


def _mean_by_segment(values: Tensor, seg: Tensor, size: int) -> Tensor:
    out = torch.zeros(size, values.size(-1), dtype=values.dtype, device=values.device).index_add_(0, seg, values)
    count = torch.bincount(seg, minlength=size).clamp_min(1).unsqueeze(-1)
    return out / count


@torch.inference_mode()
def sage_predict(convs: list[SAGEConv], x: Tensor, crow: Tensor, col: Tensor, nodes: Tensor) -> Tensor:
    """Logits of ``nodes`` from a mean-aggregation GraphSAGE (layers ``convs``) by fetching only their L-hop
    neighbourhood. Equal to the full-graph forward on those nodes (tested)."""
    for conv in convs:
        check(conv.aggr == "mean" and conv.root_weight and not conv.normalize and not conv.project,
              "sage_predict supports SAGEConv(aggr='mean', root_weight=True, normalize=False, project=False)",
              ConfigError)
    # frontier[l]: the nodes whose layer-l output is needed, and where their neighbours sit in frontier[l-1]
    layers = len(convs)
    need = [nodes]
    links = []
    for _ in range(layers):
        nbr, seg = gather_neighbours(crow, col, need[-1])
        union, inverse = torch.unique(torch.cat([need[-1], nbr]), return_inverse=True)
        links.append((inverse[: need[-1].numel()], inverse[need[-1].numel():], seg))
        need.append(union)
    h = x[need[-1]]
    for depth in range(layers - 1, -1, -1):  # layer index l = layers - 1 - depth
        self_pos, nbr_pos, seg = links[depth]
        conv = convs[layers - 1 - depth]
        aggr = _mean_by_segment(h[nbr_pos], seg, self_pos.numel())
        h = conv.lin_l(aggr) + conv.lin_r(h[self_pos])
        if depth > 0:
            h = F.relu(h)
    return h


class FastMLP:
    """An inference copy of a trained :class:`~gkd.nn.MLP`: one fused ``addmm`` per layer on weights that need no
    gradient, so no autograd or module dispatch. Call with feature rows, or with ``(features, ids)`` to fetch the rows
    as part of the query.

    Queries of at most ``small_rows`` rows run on one thread whatever the process's thread count: waking a second
    thread cost more than it saved (benchmarks/results/inference_latency.json: 10 rows of 128 features, 64 wide,
    19 us at 1 and at 2 threads; the finiteness check of its logits adds a few, timed beside it). A fused ``addmm``
    chain costs about what NumPy's BLAS does; NumPy was not kept because its thread pool and torch's fight when one
    process runs both (10 ms instead of 1.2 ms for 1,000 rows).
    """

    def __init__(self, mlp: nn.Module, *, check_finite: bool = True) -> None:
        self.check_finite = check_finite  # False: for features validated upstream (a few us of a 10-row query)
        self.positions = None
        if isinstance(mlp, Student):  # its position rows are fetched with the feature rows (new nodes: zeros)
            self.positions, mlp = mlp.positions, mlp.model
        layers = getattr(mlp, "layers", None)
        check(isinstance(layers, nn.ModuleList) and all(isinstance(layer, nn.Linear) for layer in layers),
              f"FastMLP serves gkd's MLP (or a Student around one); got {type(mlp).__name__}", ConfigError)
        self.weights = [(layer.weight.detach().t().contiguous(), layer.bias.detach().clone()) for layer in layers]

    small_rows = 64  # a query of at most this many rows runs on one thread (see __call__)

    def __call__(self, x: Tensor, ids: Tensor | None = None) -> Tensor:
        rows = x.size(0) if ids is None else ids.numel()
        threads = torch.get_num_threads()
        if rows > self.small_rows or threads == 1:
            return self._forward(x, ids)
        # waking a second thread costs more than a 10-row product saves (before this switch, B = 10 measured 40 us
        # at 2 threads against 34 us at 1); toggling the count costs about 0.2 us here
        torch.set_num_threads(1)
        try:
            return self._forward(x, ids)
        finally:
            torch.set_num_threads(threads)

    @torch.inference_mode()  # no autograd or version-counter bookkeeping: ~10 us of a 10-row query
    def _forward(self, x: Tensor, ids: Tensor | None) -> Tensor:
        h = x.detach() if ids is None else x.detach().index_select(0, ids)
        if self.positions is not None:
            pos = self.positions.index_select(0, ids) if ids is not None else \
                self.positions.new_zeros(h.size(0), self.positions.size(1))
            h = torch.cat([h, pos], dim=-1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(self.weights):
            h = torch.addmm(b, h, w)
            if i < last:
                h = h.relu_()
        if self.check_finite:
            check_finite_logits(h)
        return h


class _PlainStudent(nn.Module):
    """The :class:`Student` of an MLP as a Linear/ReLU chain and a row lookup: what ``torch.export`` traces (the zoo
    MLP's sparse first-layer path has data-dependent shapes)."""

    def __init__(self, student: Student) -> None:
        super().__init__()
        mlp = student.model
        check(all(isinstance(layer, nn.Linear) for layer in getattr(mlp, "layers", [None])) and not mlp.uses_graph,
              f"export_student exports an MLP student; got {type(mlp).__name__}", ConfigError)
        self.layers = nn.ModuleList(nn.Linear(l.in_features, l.out_features) for l in mlp.layers)
        self.layers.load_state_dict(mlp.layers.state_dict())
        self.register_buffer("positions", None if student.positions is None else student.positions.clone())

    def forward(self, x: Tensor, index: Tensor) -> Tensor:
        if self.positions is not None:
            x = torch.cat([x, self.positions[index]], dim=-1)
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < last:
                x = F.relu(x)
        return x


def export_student(student: Student, path, num_features: int, *, overwrite: bool = False):
    """Write ``student`` as a ``torch.export`` program (``.pt2``), served with torch alone::

        program = torch.export.load(path).module()
        logits = program(x, index)   # x [B, F]; index [B]: known node ids, -1 for new nodes

    An existing ``path`` is replaced only with ``overwrite=True`` (gkd cannot tell its own programs from a user's file).
    """
    import io
    import os
    from pathlib import Path

    from ..io import atomic_write_bytes, check_new_path

    # gkd.load returns the GNN itself for a graph model: no Student, nothing graph-free to export
    check(isinstance(student, Student), f"export_student exports a graph-free Student (what gkd.load returns for an "
          f"MLP student); got a {type(student).__name__}", ConfigError)
    path = Path(path)
    check(path.suffix == ".pt2", f"export path {str(path)!r}; expected a .pt2 file name", ConfigError)
    check(not path.is_dir(), f"export path {str(path)!r} is a directory; expected a .pt2 file name", ConfigError)
    check_new_path(path, "export path")  # before the export's seconds of tracing: a folder under a file fails now
    check(overwrite or not os.path.lexists(path), f"{str(path)!r} already exists; pass overwrite=True to replace it",
          ConfigError)
    check(num_features == student.num_features, f"num_features={num_features}; this student reads "
          f"{student.num_features} features", ConfigError)
    plain = _PlainStudent(student).eval()
    batch = torch.export.Dim("batch")
    example = (torch.zeros(4, num_features), torch.full((4,), -1, dtype=torch.long))
    program = torch.export.export(plain, example, dynamic_shapes=({0: batch}, {0: batch}))
    buf = io.BytesIO()  # into memory, then gkd's atomic write (torch.export.save warns on a non-.pt2 file name)
    torch.export.save(program, buf)
    try:
        return atomic_write_bytes(path, buf.getvalue())
    except OSError as e:  # a folder under a file, no permission, a directory made meanwhile
        raise ConfigError(f"export path {str(path)!r} cannot be written ({e.strerror})") from None
