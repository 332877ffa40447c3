r"""The graph-free student as it is served: :class:`Student`, a trained model with its input recipe
(``x ‖ position → model``), what :func:`gkd.load` returns for a distilled MLP."""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from ..errors import DatasetError


def check_finite_logits(logits: Tensor) -> None:
    """A NaN or infinite feature would otherwise come back as NaN logits, and a NaN argmax looks like an answer. One
    float32 sum (NaN and inf survive it; half-precision logits cannot overflow it) read as a Python float: about 2 us
    for a 10-row query in a tight loop (5 in the latency benchmark), where ``torch.isfinite(x).all()`` costs 9 and
    ``bool(torch.isfinite(x.sum()))`` 6."""
    if not math.isfinite(logits.sum(dtype=torch.float32).item()):
        raise DatasetError("the student's logits are NaN or infinite: the feature rows hold NaN or infinite values "
                           "(or values so large the model overflows); expected finite features")


class Student(nn.Module):
    r"""A trained graph-free student with its input recipe: ``x ‖ position → model``.

    ``positions`` (``[N, d]``, optional) are the structural position features of the ``N`` nodes the student was
    trained on (NOSMOG's input; :mod:`gkd.nn.position`). ``forward(x, index=None)``: ``index[i]`` is the known node
    whose position row ``x[i]`` gets, or ``-1`` for a node the graph never held (it gets zeros, which is what the
    student saw for unseen nodes in training); ``index=None`` treats every row as new. Without positions ``index`` is
    ignored. Rows whose logits come out NaN or infinite (non-finite features) raise :class:`DatasetError`, except
    while ``torch.export``/``torch.compile`` trace it (tested); :func:`export_student` writes the traceable
    program. (The zoo models' keyword-only arguments keep TorchScript from scripting it.)
    """

    def __init__(self, model: nn.Module, positions: Tensor | None = None) -> None:
        super().__init__()
        self.model = model
        if positions is not None:  # a zero row at the end: index -1 (a new node) picks it
            positions = positions.detach().float()  # the zeros from the float copy: float64 zeros would promote
            positions = torch.cat([positions, positions.new_zeros(1, positions.size(1))])
        self.register_buffer("positions", positions)

    @property
    def num_known(self) -> int:
        return 0 if self.positions is None else self.positions.size(0) - 1

    @property
    def num_features(self) -> int:
        """The feature width ``x`` must have (the model's input less the position columns)."""
        width = getattr(self.model, "in_channels", None)
        if width is None:
            return -1
        return width - (0 if self.positions is None else self.positions.size(1))

    def reset_parameters(self) -> None:
        self.model.reset_parameters()

    def forward(self, x: Tensor, index: Tensor | None = None) -> Tensor:
        if not isinstance(x, Tensor):
            raise DatasetError(f"x is a {type(x).__name__}; expected a torch.Tensor of feature rows (from NumPy: "
                               "torch.from_numpy(x))")
        want = self.num_features
        if want >= 0 and (x.dim() != 2 or x.size(1) != want):  # a matmul shape clash deep inside otherwise
            raise DatasetError(f"x has shape {tuple(x.shape)}; this student reads [batch, {want}] features")
        if self.positions is not None:
            if index is None:
                pos = self.positions.new_zeros(x.size(0), self.positions.size(1))
            else:
                # -2 would silently read node N-1's row and N the zero row: only -1 (new) and 0 .. N-1 (known)
                bad = (index < -1) | (index >= self.num_known)
                if index.shape != x.shape[:1] or index.is_floating_point() or bool(bad.any()):
                    raise DatasetError(f"index must hold one integer per row of x, -1 (a new node) or a known node "
                                       f"id in [0, {self.num_known - 1}]; got {index.tolist()[:5]}...")
                pos = self.positions[index]
            x = torch.cat([x, pos], dim=-1)
        out = self.model(x)
        if not torch.compiler.is_compiling():  # a data-dependent branch: torch.export and torch.compile trace past it
            check_finite_logits(out)
        return out
