"""Shared fixtures: the real KGBD archive, unpacked once into a cache folder."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

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
