"""Training: the per-worker loop and the driver that launches it on Ray Train."""
