"""Small CNNs for image distillation and :class:`FeatureTaps`, which reads any module's outputs by layer name."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from ..errors import ConfigError, check


class CNN(nn.Module):
    """``len(channels)`` blocks of 3x3 conv + BatchNorm + ReLU, a 2x2 max-pool between blocks, global average
    pooling, then a linear head. Blocks are named ``block1..blockL``; ``embed`` outputs the pooled embedding.

    For 8x8 digits, ``CNN(channels=(32, 64, 128))`` is gkd's teacher and ``CNN(channels=(4, 8, 8))`` its tiny student.
    """

    def __init__(self, in_channels: int = 1, channels: Sequence[int] = (32, 64, 128), out_channels: int = 10,
                 dropout: float = 0.0) -> None:
        super().__init__()
        check(len(channels) >= 1 and all(int(c) >= 1 for c in channels),
              f"channels={tuple(channels)!r}; expected one or more positive widths", ConfigError)
        check(0.0 <= dropout < 1.0, f"dropout={dropout!r}; expected in [0, 1)", ConfigError)
        self.in_channels, self.channels, self.out_channels = in_channels, tuple(int(c) for c in channels), out_channels
        widths = (in_channels,) + self.channels
        for i in range(len(self.channels)):
            self.add_module(f"block{i + 1}", nn.Sequential(
                nn.Conv2d(widths[i], widths[i + 1], 3, padding=1, bias=False), nn.BatchNorm2d(widths[i + 1]),
                nn.ReLU(inplace=True)))
        self.pool = nn.MaxPool2d(2, ceil_mode=True)
        self.embed = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.channels[-1], out_channels)

    @property
    def blocks(self) -> list[str]:
        return [f"block{i + 1}" for i in range(len(self.channels))]

    def reset_parameters(self) -> None:
        for m in self.modules():
            if m is not self and hasattr(m, "reset_parameters"):
                m.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        for i, name in enumerate(self.blocks):
            if i:
                x = self.pool(x)
            x = getattr(self, name)(x)
        return self.head(self.dropout(self.embed(x)))


class FeatureTaps:
    """Forward hooks that keep the outputs of ``model``'s submodules named ``names`` (as in ``named_modules()``).

    ``taps(x)`` runs the model and returns ``(output, [feature per name])``. The hooks stay until :meth:`remove`
    (or the ``with`` block ends)."""

    def __init__(self, model: nn.Module, names: Sequence[str]) -> None:
        modules = dict(model.named_modules())
        check(len(names) >= 1, "no layer names given to tap; expected at least one", ConfigError)
        for n in names:
            check(n in modules and n != "", f"layer {n!r} does not exist in {type(model).__name__}; available: "
                  f"{', '.join(k for k in modules if k)}", ConfigError)
        self.model, self.names = model, list(names)
        self._out: dict[str, Tensor] = {}
        self._handles = [modules[n].register_forward_hook(self._keep(n)) for n in self.names]

    def _keep(self, name: str):
        def hook(_module: nn.Module, _inputs, output: Tensor) -> None:
            self._out[name] = output
        return hook

    def __call__(self, x: Tensor) -> tuple[Tensor, list[Tensor]]:
        self._out.clear()
        out = self.model(x)
        feats = [self._out[n] for n in self.names]
        self._out.clear()
        return out, feats

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []

    def __enter__(self) -> "FeatureTaps":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
