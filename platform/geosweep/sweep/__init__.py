"""Sweeps: Ray Tune over backbones x representations x hypernetwork settings, compared in MLflow."""
