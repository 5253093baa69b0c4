"""Hypernetworks: generate (some of) a backbone's parameters from a conditioning input."""

from geosweep.hypernets import none  # noqa: F401  (registers "none")
