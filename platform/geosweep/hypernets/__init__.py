"""Hypernetworks: generate (some of) a backbone's parameters from a conditioning input."""

from geosweep.hypernets import hypernetwork, none  # noqa: F401  (register "standard", "mip", "none")
