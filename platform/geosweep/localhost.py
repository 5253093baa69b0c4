"""Ports and processes of this machine, for the local servers geosweep starts in tests and benchmarks."""

from __future__ import annotations

import contextlib
import socket

import psutil


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_processes_mentioning(marker: str, timeout_s: float = 15) -> None:
    """Stop processes whose command line contains `marker`, and all their descendants."""
    me = psutil.Process()
    spared = {me.pid, *(p.pid for p in me.parents())}  # the caller's own command line may name the marker
    ours = [
        p
        for p in psutil.process_iter(["cmdline"])
        if p.pid not in spared and marker in " ".join(p.info["cmdline"] or [])
    ]
    family = {p.pid: p for p in ours}
    for p in ours:
        with contextlib.suppress(psutil.NoSuchProcess):
            family.update({c.pid: c for c in p.children(recursive=True)})
    for p in family.values():
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(list(family.values()), timeout=timeout_s)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
