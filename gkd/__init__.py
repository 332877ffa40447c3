"""gkd: knowledge distillation on graphs."""
from .version import __version__  # noqa: E402

from .errors import ConfigError, DatasetError, GKDError  # noqa: E402

__all__ = ["__version__", "GKDError", "DatasetError", "ConfigError", "GNNToMLP", "load", "save", "predict"]


def __getattr__(name: str):
    """``gkd.GNNToMLP``, ``gkd.load``, ``gkd.save``, ``gkd.predict`` without importing torch at ``import gkd`` (the
    CLI's error path stays fast)."""
    if name in ("GNNToMLP", "load", "save", "predict"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'gkd' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))  # the lazy names too, for tab completion and help()
