"""An ordered outbox for one process's MLflow writes: training goes on while the server is away.

Writes are queued, delivered in order by one background thread, and retried
while the store is unreachable. Up to `memory_limit` pending writes wait in
memory, the rest in a spool file. A store unreachable for longer than
`outage_limit_s`, or one that refuses a write outright, fails the next `put`
or `close` with an error that says so: never a hang.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException

# What MLflow reports for a refused connection, a timeout or a server error: worth retrying.
TRANSIENT_CODES = frozenset({"INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"})
RETRY_FIRST_S, RETRY_MAX_S = 0.25, 5.0

Write = dict[str, Any]  # JSON-able: one MLflow call (the deliverer knows the kinds)


class TrackingUnavailable(RuntimeError):
    """The tracking store refused a write, or stayed unreachable past the outage limit."""


def transient(error: BaseException) -> bool:
    """Whether a failed write may succeed later (the store is down), rather than being wrong."""
    return not isinstance(error, MlflowException) or error.error_code in TRANSIENT_CODES


class Outbox:
    """Deliver writes in order with `deliver`, retrying through outages.

    Args:
        deliver: performs one write; raises while the store is unreachable.
        describe: names the store and run in errors ("MLflow at http://... run 1f3e...").
        outage_limit_s: how long the store may stay unreachable before the run fails.
        memory_limit: pending writes kept in memory; later ones go to the spool file.
    """

    def __init__(
        self, deliver: Callable[[Write], None], describe: str, *, outage_limit_s: float, memory_limit: int = 1000
    ) -> None:
        self._deliver, self._describe = deliver, describe
        self._outage_limit_s, self._memory_limit = outage_limit_s, memory_limit
        self._pending: deque[Write] = deque()
        self._spooled = 0  # writes in the spool file not yet read back
        self._spool_dir = Path(tempfile.mkdtemp(prefix="geosweep-outbox-"))
        self._spool = self._spool_dir / "pending.jsonl"
        self._spool_offset = 0
        self._outage_since: float | None = None
        self._last_error: BaseException | None = None
        self._refused: BaseException | None = None  # a permanent error: nothing after it is delivered
        self._closing = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="geosweep-outbox", daemon=True)
        self._thread.start()

    def put(self, write: Write) -> None:
        """Queue `write` (never blocks on the store).

        Raises:
            TrackingUnavailable: the store refused a write or has been unreachable past the limit.
        """
        with self._changed:
            self._raise_if_failed()
            if self._spooled or len(self._pending) >= self._memory_limit:
                with self._spool.open("a") as spool:
                    spool.write(json.dumps(write) + "\n")
                self._spooled += 1
            else:
                self._pending.append(write)
            self._changed.notify_all()

    def keep_file(self, path: Path) -> str:
        """A copy of the file or directory at `path`, kept until it is delivered (the caller may delete its own)."""
        kept = Path(tempfile.mkdtemp(dir=self._spool_dir)) / path.name
        if path.is_dir():
            shutil.copytree(path, kept)
        else:
            shutil.copyfile(path, kept)
        return str(kept)

    def settle(self, timeout_s: float) -> None:
        """Wait until everything queued is delivered while the store answers: at most `timeout_s`.

        Returns at once during an outage (the writes stay queued): training never waits on a store that is away.
        """
        deadline = time.monotonic() + timeout_s
        with self._changed:
            while (self._pending or self._spooled) and self._outage_since is None and self._refused is None:
                if not self._changed.wait(timeout=deadline - time.monotonic()):
                    return

    def close(self) -> None:
        """Deliver everything queued, waiting through an outage up to its limit.

        Raises:
            TrackingUnavailable: as for `put`.
        """
        with self._changed:
            self._closing = True
            self._changed.notify_all()
            while self._pending or self._spooled:
                self._raise_if_failed()
                self._changed.wait(timeout=0.1)
            self._raise_if_failed()
        self._thread.join(timeout=5)
        shutil.rmtree(self._spool_dir, ignore_errors=True)

    @property
    def undelivered(self) -> int:
        """Writes queued and not yet delivered."""
        with self._changed:
            return len(self._pending) + self._spooled

    def _raise_if_failed(self) -> None:
        if self._refused is not None:
            raise TrackingUnavailable(f"{self._describe} refused a write: {self._refused}") from self._refused
        if self._outage_since is not None and time.monotonic() - self._outage_since > self._outage_limit_s:
            raise TrackingUnavailable(
                f"{self._describe} unreachable for more than {self._outage_limit_s:g} s "
                f"(tracking.outage_limit_s); {len(self._pending) + self._spooled} writes not delivered; "
                f"last error: {self._last_error}"
            )

    def _next(self) -> Write | None:
        """The oldest undelivered write (reading the spool back when memory has run dry), or None."""
        if not self._pending and self._spooled:
            with self._spool.open() as spool:
                spool.seek(self._spool_offset)
                while self._spooled and len(self._pending) < self._memory_limit:
                    self._pending.append(json.loads(spool.readline()))
                    self._spooled -= 1
                self._spool_offset = spool.tell()
        return self._pending[0] if self._pending else None

    def _run(self) -> None:
        delay = RETRY_FIRST_S
        while True:
            with self._changed:
                write = self._next()
                while write is None and not self._closing:
                    self._changed.wait()
                    write = self._next()
                if write is None or self._refused is not None:
                    return
            try:
                self._deliver(write)
            except Exception as error:  # noqa: BLE001  (classified: retried, or kept as the refusal)
                with self._changed:
                    if not transient(error):
                        self._refused = error
                        self._changed.notify_all()
                        return
                    self._last_error = error
                    self._outage_since = self._outage_since or time.monotonic()
                    self._changed.notify_all()
                time.sleep(delay)
                delay = min(2 * delay, RETRY_MAX_S)
                continue
            with self._changed:
                self._pending.popleft()
                self._outage_since, delay = None, RETRY_FIRST_S
                self._changed.notify_all()
