"""A throwaway PostgreSQL on 127.0.0.1: the backend store a cluster's `mlflow server` uses, for tests and benchmarks.

It runs Debian's `postgres` binary on a data directory of its own, in the foreground, so it is stopped by
its PID like every other process geosweep starts. PostgreSQL refuses to run as root: as root it runs as the
`postgres` user the Debian package creates.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from geosweep.localhost import free_port

DATABASE = "mlflow"


def postgres_bin_dir() -> Path | None:
    """Where the server's programs are (Debian keeps them off PATH, in /usr/lib/postgresql/<version>/bin)."""
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(Path(p).parts[-3]))
    return Path(versions[-1]).parent if versions else None


@contextmanager
def local_postgres(timeout_s: float = 60) -> Iterator[str]:
    """Start a fresh PostgreSQL cluster; yield a SQLAlchemy URI of its `mlflow` database; stop and delete it.

    Only a client on this machine can reach it: it listens on 127.0.0.1 alone, with its socket in its own
    directory, and trusts those clients (a throwaway store, never one that outlives its context). Its
    files live in a fresh directory under the system's temporary directory, which the `postgres` user
    can reach (a test's tmp_path may sit below a directory only its owner may enter).

    Raises:
        RuntimeError: PostgreSQL is not installed (Debian: `apt-get install postgresql`) or did not start.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError("PostgreSQL is not installed: no `postgres` on PATH or in /usr/lib/postgresql/*/bin")
    root = Path(tempfile.mkdtemp(prefix="geosweep-postgres-"))
    data, socket_dir = root / "data", root / "socket"
    socket_dir.mkdir()
    as_owner = _as_postgres_user(root)
    subprocess.run(
        [*as_owner, str(bin_dir / "initdb"), "-D", str(data), "-U", "mlflow", "--auth=trust", "-E", "UTF8"],
        check=True,
        capture_output=True,
    )
    port = free_port()
    settings = {"listen_addresses": "127.0.0.1", "port": str(port), "unix_socket_directories": str(socket_dir)}
    options = [arg for name, value in settings.items() for arg in ("-c", f"{name}={value}")]
    log = root / "postgres.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*as_owner, str(bin_dir / "postgres"), "-D", str(data), *options],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _create_database(port, server, log, timeout_s)
        yield f"postgresql+psycopg://mlflow@127.0.0.1:{port}/{DATABASE}"
    finally:
        _stop(server)
        shutil.rmtree(root)


def _as_postgres_user(root: Path) -> list[str]:
    """The command prefix that runs PostgreSQL's programs as a user it accepts, owning `root`."""
    if os.geteuid() != 0:
        return []
    shutil.chown(root, "postgres")
    shutil.chown(root / "socket", "postgres")
    return ["runuser", "-u", "postgres", "--"]


def _create_database(port: int, server: subprocess.Popen, log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with psycopg.connect(host="127.0.0.1", port=port, user="mlflow", dbname="postgres", autocommit=True) as db:
                db.execute(f"CREATE DATABASE {DATABASE}")
            return
        except psycopg.OperationalError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start; its log ends:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.3)


def _stop(server: subprocess.Popen, timeout_s: float = 30) -> None:
    """Fast shutdown (SIGINT: roll back open transactions, then exit) of the server and its own processes."""
    os.killpg(server.pid, signal.SIGINT)
    try:
        server.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
