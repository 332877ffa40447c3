"""gkd: knowledge distillation on graphs."""
from .version import __version__  # noqa: E402

from .errors import ConfigError, DatasetError, GKDError  # noqa: E402
from .lazy import lazy_exports  # noqa: E402

__all__ = ["__version__", "GKDError", "DatasetError", "ConfigError", "GNNToMLP", "load", "save", "predict"]


# ``gkd.GNNToMLP``, ``gkd.load``, ``gkd.save``, ``gkd.predict`` import torch on first use, not at ``import gkd`` (the
# CLI's error path stays fast)
__getattr__, __dir__ = lazy_exports(__name__, {"GNNToMLP": "pipeline", "load": "pipeline", "save": "pipeline",
                                               "predict": "pipeline"})
