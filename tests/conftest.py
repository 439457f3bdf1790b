"""Shared fixtures: the real KGBD archive, unpacked once into a cache folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def _one_share_of_the_cores() -> None:
    """Under ``pytest -n N`` every worker gets its share of the cores as torch/OpenMP threads (and so do
    the ``skelreid`` subprocesses tests start, through the environment). Left at torch's default, N
    workers each run as many threads as there are cores: measured on 2 cores, the fast tier took 135 s
    that way and 85 s with one thread per worker. A value already in the environment is kept; tests of
    thread behaviour pass ``--threads`` or their own environment."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or 1)
    if workers <= 1:
        return
    share = str(max(1, (os.cpu_count() or 1) // workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, share)
    import torch

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))


_one_share_of_the_cores()


def pytest_collection_modifyitems(config, items):
    """The modules holding end-to-end (``slow``) tests run first, each module's tests kept together (so a
    module fixture is built once): under ``pytest -n 2 --dist worksteal`` the long tests start early and
    the short ones fill the gaps at the end, instead of one worker finishing a long test alone."""
    def module(item) -> str:
        return item.nodeid.split("::")[0]

    slow = {module(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: module(item) not in slow)

REPO = Path(__file__).resolve().parents[1]
KGBD_ARCHIVE = REPO.parent / "shared" / "datasets" / "kgbd" / "KinectGait.tar.xz"
TEST_CACHE = Path(os.environ.get("SKELREID_TEST_CACHE", REPO / ".cache" / "tests"))


def _unpack_kgbd() -> Path:
    from skelreid.data.archive import extract_archive

    dest = TEST_CACHE / "kgbd"
    done = dest / ".complete"
    if not done.exists():
        # Several xdist workers may race here: a file lock keeps one extraction.
        import fcntl

        dest.parent.mkdir(parents=True, exist_ok=True)
        with open(dest.parent / ".kgbd.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not done.exists():
                extract_archive(KGBD_ARCHIVE, dest)
                done.write_text("ok\n")
    return dest / "Data"


@pytest.fixture(scope="session")
def kgbd_data() -> Path:
    """Path to the unpacked real KGBD ``Data/`` folder."""
    if not KGBD_ARCHIVE.exists():
        pytest.fail(f"real KGBD archive missing: {KGBD_ARCHIVE}")
    return _unpack_kgbd()


@pytest.fixture(scope="session")
def kgbd_sequences(kgbd_data):
    """All 822 real KGBD walks (parsed once per test process, cached on disk)."""
    from skelreid.data.readers.kgbd import read_kgbd

    return read_kgbd(kgbd_data, cache_dir=TEST_CACHE / "kgbd-parsed")
