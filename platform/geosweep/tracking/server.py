"""A local `mlflow server` on 127.0.0.1, for tests and benchmarks that need a tracking server, not a file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from geosweep.localhost import free_port


@contextmanager
def local_server(
    workdir: Path, backend_store_uri: str | None = None, timeout_s: float = 120, port: int | None = None
) -> Iterator[str]:
    """Serve `backend_store_uri` (default: a fresh SQLite file in `workdir`); yields the server's URI.

    Artifacts are proxied into `workdir/artifacts`. The server runs in a session of its
    own, so it and its workers are one process group, stopped together by its PID.
    Serving the same store on the same `port` again is a server back from an outage.
    """
    port = port or free_port()
    flags = {
        "host": "127.0.0.1",
        "port": port,
        "workers": 1,
        "backend-store-uri": backend_store_uri or f"sqlite:///{workdir / 'server.db'}",
        "artifacts-destination": workdir / "artifacts",
    }
    command = [str(Path(sys.executable).parent / "mlflow"), "server", *(f"--{k}={v}" for k, v in flags.items())]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # 2 processes instead of 9
    log = workdir / "mlflow-server.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=workdir, start_new_session=True
        )
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"mlflow server did not start; its log ends:\n{log.read_text()[-2000:]}"
                    ) from None
                time.sleep(0.3)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_group(server)


def stop_group(server: subprocess.Popen, timeout_s: float = 15) -> None:
    """Stop `server` and its children (its own process group, nothing else); return once the group is empty."""
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the children exit after their parent
        try:
            os.killpg(server.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    raise RuntimeError(f"mlflow server {server.pid}: its children outlived it")
