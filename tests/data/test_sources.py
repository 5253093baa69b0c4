"""Tests for `local_copy` on real `file://` URIs (pyarrow's LocalFileSystem) of temporary directories."""

import multiprocessing
import os
from pathlib import Path

import pytest

from geosweep.data.sources import check_source, local_copy

FIELD = "dataset.kwargs.path"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A directory with a nested file and a .gz one (which must arrive as it is, not decompressed)."""
    root = tmp_path / "release"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_text("alpha\n")
    # 8 MiB takes long enough to copy that two fetches without the lock overlap (and fail).
    (root / "sub" / "b.bin").write_bytes(os.urandom(8 << 20))
    (root / "c.gz").write_bytes(b"not really gzip")
    return root


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def fetch(uri: str, cache: Path) -> Path:
    return local_copy(uri, field=FIELD, cache_dir=cache)


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def entries(cache: Path) -> list[str]:
    """The cache's copies and leftovers, without the lock files."""
    return sorted(p.name for p in cache.iterdir() if not p.name.endswith(".lock"))


def test_plain_path_is_returned_unchanged(tmp_path, cache):
    assert local_copy(str(tmp_path / "anything"), field=FIELD, cache_dir=cache) == tmp_path / "anything"
    assert local_copy("~/data/modelnet40", field=FIELD, cache_dir=cache) == Path("~/data/modelnet40")
    assert not cache.exists()


def test_directory_is_copied(source, cache):
    copy = fetch(source.as_uri(), cache)
    assert copy.parent == cache and copy.name.startswith("release-")
    assert files(copy) == files(source)
    assert entries(cache) == [copy.name]


def test_single_file_is_copied_under_its_name(source, cache):
    copy = fetch((source / "a.txt").as_uri(), cache)
    assert copy.name == "a.txt" and copy.parent.parent == cache
    assert copy.read_text() == "alpha\n"


def test_default_cache_dir_is_the_environment_variable(source, cache, monkeypatch):
    monkeypatch.setenv("GEOSWEEP_DATA_CACHE_DIR", str(cache))
    assert local_copy(source.as_uri(), field=FIELD).parent == cache


def test_unchanged_source_is_not_fetched_again(source, cache):
    first = fetch(source.as_uri(), cache)
    before = (first / "sub" / "b.bin").stat()
    second = fetch(source.as_uri(), cache)
    after = (second / "sub" / "b.bin").stat()
    assert second == first
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert entries(cache) == [first.name]


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "a.txt").write_text("alpha, longer\n"),
        lambda root: os.utime(root / "sub" / "b.bin", ns=(0, 1_000_000_000)),
        lambda root: (root / "new.txt").write_text("new\n"),
        lambda root: (root / "c.gz").unlink(),
    ],
    ids=["resized", "touched", "added", "removed"],
)
def test_changed_source_is_fetched_into_a_new_key(source, cache, change):
    old = fetch(source.as_uri(), cache)
    change(source)
    new = fetch(source.as_uri(), cache)
    assert new != old and new.parent == cache
    assert files(new) == files(source)
    assert entries(cache) == sorted([old.name, new.name])


def _fetch_after_barrier(uri: str, cache: str, barrier, results) -> None:
    barrier.wait()  # both processes look the source up and ask for the lock at the same moment
    copy = local_copy(uri, field=FIELD, cache_dir=cache)
    results.put((str(copy), (copy / "sub" / "b.bin").stat().st_ino))


def test_concurrent_processes_make_one_copy(source, cache):
    # spawn, not fork: the test process holds pyarrow's and torch's threads.
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(2), context.Queue()
    workers = [
        context.Process(target=_fetch_after_barrier, args=(source.as_uri(), str(cache), barrier, results))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    first, second = results.get(timeout=5), results.get(timeout=5)
    # The same file (one inode): the second process reused the first's copy instead of fetching its own.
    assert first == second
    assert entries(cache) == [Path(first[0]).name]  # and no temporary directory is left


def test_stale_temporary_directory_is_removed(source, cache):
    copy = fetch(source.as_uri(), cache)
    key = copy.name
    for entry in cache.iterdir():  # as if a fetch had died half-way: no copy, only its temporary
        if entry.name == key:
            entry.rename(cache / f".{key}.dead.tmp")
    again = fetch(source.as_uri(), cache)
    assert again == copy and files(again) == files(source)
    assert entries(cache) == [key]


def test_unsupported_scheme_names_the_field(cache):
    expected = r"dataset\.kwargs\.path: 's3x://bucket/x': unsupported URI scheme 's3x' \(expected a local path or s3://"
    with pytest.raises(ValueError, match=expected):
        check_source("s3x://bucket/x", field=FIELD)
    with pytest.raises(ValueError, match=expected):
        fetch("s3x://bucket/x", cache)


def test_supported_schemes_pass_the_check_without_io():
    for source in ("s3://bucket/x", "gs://bucket/x", "file:///nope", "hdfs://namenode/x", "relative/dir", "/abs"):
        assert check_source(source, field=FIELD) == source


def test_missing_source_names_the_field(tmp_path, cache):
    with pytest.raises(FileNotFoundError, match=f"dataset.kwargs.path: file://{tmp_path}/nope does not exist"):
        fetch(f"file://{tmp_path}/nope", cache)


def test_malformed_uri_names_the_field(cache):
    with pytest.raises(ValueError, match="dataset.kwargs.path: 'file://host/x': .*hostname"):
        fetch("file://host/x", cache)
