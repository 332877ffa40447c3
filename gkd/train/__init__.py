"""One trainer, its loss-term interface, seeding, checkpoints and the OGB-style summary."""
from .logger import environment, fmt, mean_std, summarize
from .trainer import Capabilities, FitResult, LossTerm, Step, Trainer, accuracy, get_metric, seed_everything

__all__ = ["Trainer", "LossTerm", "Capabilities", "Step", "FitResult", "accuracy", "get_metric", "seed_everything", "environment",
           "summarize", "mean_std", "fmt"]
