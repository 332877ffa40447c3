"""One trainer, its loss-term interface, seeding and the OGB-style logger."""
from .experiment import environment, run_experiment
from .logger import fmt, mean_std, summarize
from .trainer import FitResult, LossTerm, Step, Trainer, accuracy, get_metric, seed_everything

__all__ = ["Trainer", "LossTerm", "Step", "FitResult", "accuracy", "get_metric", "seed_everything", "run_experiment",
           "environment", "summarize", "mean_std", "fmt"]
