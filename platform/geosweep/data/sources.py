"""Dataset files given as URIs (s3://, gs://, file://, hdfs://, ...), fetched once per node into a local cache.

A plain path is used as it is. A URI is listed through `pyarrow.fs` and copied
into `<cache_dir>/<key>/`, where the key hashes the URI and every file's
relative path, size and mtime: a changed source (a file added, removed,
resized or touched) is fetched again under a new key, an unchanged one never
twice. The Train workers of one node call this at the same moment, so a file
lock lets one of them fetch while the others wait and reuse its copy.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path, PurePosixPath

import pyarrow.fs as pafs

# The schemes `pyarrow.fs.FileSystem.from_uri` dispatches on. They are checked by
# name because from_uri itself may use the network (it looks up an S3 bucket's
# region), and validating a config must not.
_SCHEMES = ("s3", "gs", "gcs", "file", "hdfs", "viewfs", "abfs", "abfss")
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Each read of an S3 or GCS stream is one ranged GET: few, large reads.
_CHUNK = 16 << 20


def check_source(source: str, *, field: str) -> str:
    """Check that `source` is a plain path or a URI of a scheme pyarrow handles, without any I/O.

    Args:
        source: a local path or a URI.
        field: the config field that holds it, for the error message.

    Returns:
        `source`, unchanged (so it can serve as a pydantic validator).

    Raises:
        ValueError: the URI's scheme is not one pyarrow can fetch.
    """
    match = _URI.match(source)
    if match and match.group(1) not in _SCHEMES:
        expected = ", ".join(f"{scheme}://" for scheme in _SCHEMES)
        raise ValueError(
            f"{field}: {source!r}: unsupported URI scheme {match.group(1)!r} (expected a local path or {expected})"
        )
    return source


def is_uri(source: str) -> bool:
    """Whether `source` is a URI (`s3://...`) rather than a local path."""
    return bool(_URI.match(source))


def check_local_dir(source: str, *, field: str, create: bool) -> str:
    """Check, without touching the network, that a local directory can serve: it exists, or can be made.

    A URI passes unchecked (it is read, never written, and only the nodes that fetch it can see it).

    Args:
        source: the directory, a local path (`~` expanded) or a URI.
        field: the config field that holds it, for the error message.
        create: False: the directory must exist (data to read). True: it must be
            a writable directory, or its nearest existing parent one it can be made in.

    Returns:
        `source`, unchanged (so it can serve as a pydantic validator).

    Raises:
        ValueError: naming `field`, the path and what was expected.
    """
    if is_uri(source):
        return source
    path = Path(source).expanduser()
    if not create:
        if not path.is_dir():
            raise ValueError(f"{field}: directory {source!r} does not exist")
        return source
    existing = next(p for p in (path, *path.absolute().parents) if p.exists())
    if not existing.is_dir():
        raise ValueError(f"{field}: {source!r}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "directory is not writable" if existing == path else f"cannot be created: {existing} is not writable"
        raise ValueError(f"{field}: {source!r}: {what}")
    return source


def local_copy(source: str, *, field: str, cache_dir: str | Path | None = None) -> Path:
    """A local directory (or file) holding the content of `source`, fetched into the cache if it is a URI.

    Args:
        source: a local path (returned unchanged) or a URI such as
            `s3://bucket/prefix` or `file:///abs/dir`.
        field: the config field that holds `source`, for error messages.
        cache_dir: where fetched copies live; None: $GEOSWEEP_DATA_CACHE_DIR,
            else ~/.cache/geosweep/data.

    Returns:
        `Path(source)` for a plain path; for a URI, `<cache_dir>/<key>` (a
        directory source) or `<cache_dir>/<key>/<name>` (a single file).

    Raises:
        ValueError: an unsupported scheme or a malformed URI.
        FileNotFoundError: nothing exists at the URI.
        OSError: the source cannot be listed or read (e.g. missing credentials),
            or it changed while being fetched.
    """
    if not _URI.match(check_source(source, field=field)):
        return Path(source)
    try:
        fs, root = pafs.FileSystem.from_uri(source)
    except ValueError as err:  # pyarrow's ArrowInvalid: a URI it cannot parse
        raise ValueError(f"{field}: {source!r}: {err}") from None
    root = root.rstrip("/") or root
    try:
        info = fs.get_file_info(root)
        is_dir = info.type == pafs.FileType.Directory
        listed = fs.get_file_info(pafs.FileSelector(root, recursive=True)) if is_dir else []
    except OSError as err:
        raise OSError(f"{field}: cannot list {source}: {err}") from err
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"{field}: {source} does not exist")
    if is_dir:
        files = {PurePosixPath(i.path).relative_to(root).as_posix(): i for i in listed if i.type == pafs.FileType.File}
    else:
        files = {PurePosixPath(root).name: info}

    cache = Path(cache_dir or os.environ.get("GEOSWEEP_DATA_CACHE_DIR") or "~/.cache/geosweep/data").expanduser()
    cache.mkdir(parents=True, exist_ok=True)
    key = _key(source, root, files)
    # The lock file stays behind: deleting it would let a late process lock a different file.
    with open(cache / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file is closed
        if not (cache / key).is_dir():
            _fetch(fs, files, cache, key, f"{field}: {source}")
    return cache / key if is_dir else cache / key / PurePosixPath(root).name


def _key(source: str, root: str, files: dict[str, pafs.FileInfo]) -> str:
    """`<source's base name>-<hash of the URI and each file's relative path, size and mtime>`."""
    listing = [[rel, info.size, info.mtime_ns] for rel, info in sorted(files.items())]
    digest = hashlib.sha256(json.dumps({"source": source, "files": listing}).encode()).hexdigest()[:16]
    name = re.sub(r"[^A-Za-z0-9._-]", "_", PurePosixPath(root).name).lstrip(".")
    return f"{name}-{digest}" if name else digest


def _fetch(fs: pafs.FileSystem, files: dict[str, pafs.FileInfo], cache: Path, key: str, what: str) -> None:
    """Copy `files` into `cache/key` through a temporary directory renamed into place; the caller holds the lock."""
    # Only the lock holder writes this key's temporaries: any found are from a fetch that died.
    for stale in cache.glob(f".{key}.*.tmp"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", suffix=".tmp", dir=cache))
    try:
        for rel, info in files.items():
            target = tmp / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            # compression=None: the default would silently decompress a file named *.gz.
            with fs.open_input_stream(info.path, compression=None) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, _CHUNK)
            if target.stat().st_size != info.size:
                raise OSError(
                    f"{what}: {rel} changed while being fetched ({info.size} bytes listed, "
                    f"{target.stat().st_size} read); run again"
                )
        os.rename(tmp, cache / key)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
