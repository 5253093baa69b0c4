"""geosweep: sweeps over transformation-invariant geometric networks on Ray, tracked in MLflow."""

__version__ = "0.1.0"
