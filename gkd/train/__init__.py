"""One trainer, its loss-term interface, seeding, checkpoints and the OGB-style summary.

The names are imported on first use: the loss-term interface (:mod:`.terms`) needs torch but not PyG, so the term
modules that build on it, and ``gkd terms``, do not pay for the trainer's imports."""
from ..lazy import lazy_exports

_WHERE = {"Trainer": "trainer", "LossTerm": "terms", "Capabilities": "terms", "Step": "terms",
          "FitResult": "selection", "accuracy": "trainer", "get_metric": "trainer", "seed_everything": "trainer",
          "environment": "logger", "summarize": "logger", "mean_std": "logger", "fmt": "logger"}
__all__ = list(_WHERE)
__getattr__, __dir__ = lazy_exports(__name__, _WHERE)
