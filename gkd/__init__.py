"""gkd: knowledge distillation on graphs."""
__version__ = "0.1.0"

from .errors import ConfigError, DatasetError, GKDError  # noqa: E402

__all__ = ["__version__", "GKDError", "DatasetError", "ConfigError"]
