"""gkd: knowledge distillation on graphs."""
__version__ = "0.1.0"

from .errors import ConfigError, DatasetError, GKDError  # noqa: E402

__all__ = ["__version__", "GKDError", "DatasetError", "ConfigError", "load", "save"]


def __getattr__(name: str):
    """``gkd.load`` / ``gkd.save`` without importing torch at ``import gkd`` (the CLI's error path stays fast)."""
    if name in ("load", "save"):
        from .pipeline import artifact

        return getattr(artifact, name)
    raise AttributeError(f"module 'gkd' has no attribute {name!r}")
