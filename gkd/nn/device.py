"""``--device auto|cpu|cuda|cuda:N`` → a ``torch.device``, refused clearly when it cannot be had."""
from __future__ import annotations

import re

import torch

from ..errors import ConfigError, check


def resolve_device(spec: str | torch.device = "auto") -> torch.device:
    """``auto``: the first CUDA device when there is one, else the CPU. ``cuda``/``cuda:N`` without that GPU is an
    error, not a silent fall-back to the CPU."""
    text = str(spec).strip().lower()
    check(re.fullmatch(r"auto|cpu|cuda(:\d{1,3})?", text) is not None,
          f"device={str(spec)!r}; expected auto, cpu, cuda or cuda:N (N < 1000)", ConfigError)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if text.startswith("cuda"):
        check(torch.cuda.is_available(), f"device={text!r} but this torch ({torch.__version__}) sees no CUDA GPU; "
              "use --device cpu (or auto)", ConfigError)
        index = int(text[5:] or 0)  # parsed here: torch.device("cuda:128") wraps to cuda:-128 (an int8 index)
        count = torch.cuda.device_count()
        check(index < count, f"device={text!r} but only {count} CUDA device(s) exist (cuda:0 .. cuda:{count - 1})",
              ConfigError)
    return torch.device(text)
