"""Content-addressed cache of deterministic representations, shared across trials and runs.

An entry is keyed by a hash of everything that determines it: the input
points' bytes, the representation's registered name and kwargs, and the
source of the module that computes it (so a code change misses). Each entry
is a `.npy` file beside a `.json` manifest holding the key and a checksum of
the array; a truncated or mismatched entry is rebuilt with a log line, never
used.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def fingerprint(array: np.ndarray) -> str:
    """sha256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).data)
    return digest.hexdigest()


def code_version(component: Any) -> str:
    """sha256 of the package that defines `component`'s class (its module and the helpers beside it)."""
    package = Path(inspect.getfile(sys.modules[type(component).__module__])).parent
    digest = hashlib.sha256()
    for source in sorted(package.glob("*.py")):
        digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


@dataclass
class CacheStats:
    """Hits and misses of one cache, and the seconds its misses cost."""

    hits: int = 0
    misses: int = 0
    build_seconds: float = 0.0
    rebuilt: list[str] = field(default_factory=list)


class RepresentationCache:
    """Directory of cached arrays keyed by content hash.

    Args:
        root: cache directory (created on first write).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.stats = CacheStats()

    def key(self, points: np.ndarray, name: str, kwargs: dict[str, Any], component: Any) -> str:
        """The content hash of everything that determines an encoding: points, name, arguments, code version."""
        parts = {
            "points": fingerprint(points),
            "name": name,
            "kwargs": kwargs,
            "code": code_version(component),
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()

    def get_or_build(self, key: str, build: Callable[[], np.ndarray]) -> np.ndarray:
        """Return the cached array for `key`, building and storing it on a miss."""
        cached = self._read(key)
        if cached is not None:
            self.stats.hits += 1
            return cached
        self.stats.misses += 1
        started = time.perf_counter()
        array = np.ascontiguousarray(build())
        self.stats.build_seconds += time.perf_counter() - started
        self._write(key, array)
        return array

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.npy", self.root / f"{key}.json"

    def _read(self, key: str) -> np.ndarray | None:
        data_path, manifest_path = self._paths(key)
        if not manifest_path.exists():
            return None
        try:
            manifest = json.loads(manifest_path.read_text())
            array = np.load(data_path, allow_pickle=False)
            problem = None
            if manifest.get("key") != key:
                problem = f"manifest key {manifest.get('key')!r} does not match"
            elif manifest.get("sha256") != fingerprint(array):
                problem = "checksum mismatch"
        except (OSError, ValueError, EOFError) as err:
            problem = f"unreadable ({err})"
        if problem:
            log.warning("representation cache entry %s is corrupt (%s): rebuilding", data_path, problem)
            self.stats.rebuilt.append(str(data_path))
            return None
        return array

    def _write(self, key: str, array: np.ndarray) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        data_path, manifest_path = self._paths(key)
        # Write to temp files and rename: concurrent trials never see a half-written entry.
        for path, write in (
            (data_path, lambda f: np.save(f, array, allow_pickle=False)),
            (manifest_path, lambda f: f.write(json.dumps({"key": key, "sha256": fingerprint(array)}).encode())),
        ):
            fd, tmp = tempfile.mkstemp(dir=self.root, suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, path)
