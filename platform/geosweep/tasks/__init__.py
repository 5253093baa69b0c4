"""Tasks: what the model's outputs mean, the loss, and the evaluation metrics."""

from geosweep.tasks import classification  # noqa: F401  (registers "classification")
