"""Tasks: what the model's outputs mean, the loss, and the evaluation metrics."""

from geosweep.tasks import classification, tsp  # noqa: F401  (register "classification" and "tsp")
