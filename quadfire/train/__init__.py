"""Training: the config (`TrainConfig`, `load_config`), the loop (`engine.fit`), checkpoints,
run records (`report.RunReport`), DDP set-up, the paper recipes and studies. See
docs/training.md. The engine (and with it the models) loads only when imported."""
from .config import TrainConfig, load_config
from .recipes import list_recipes, read_recipe

__all__ = ["TrainConfig", "load_config", "list_recipes", "read_recipe"]
