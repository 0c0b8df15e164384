"""Media storage writes when the disk fills up mid-write."""

import contextlib
import resource
import signal

import pytest
from django.core.files.storage import default_storage

from loupe.datasets.storage import file_replace


@contextlib.contextmanager
def disk_full_after(limit: int):
    """Any write of this process past `limit` bytes of a file fails, as on a full disk
    (EFBIG instead of ENOSPC; what is written before stays). Nothing else may write here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def stored(folder: str) -> list[str]:
    return sorted(default_storage.listdir(folder)[1])


def test_a_full_disk_while_replacing_an_artifact_keeps_the_previous_one_whole():
    name = "models/p/run-1.pt"
    file_replace(name=name, content=b"old weights")

    with pytest.raises(OSError), disk_full_after(1000):
        file_replace(name=name, content=b"x" * 5000)

    with default_storage.open(name, "rb") as handle:
        assert handle.read() == b"old weights"
    assert stored("models/p") == ["run-1.pt"]  # no partial file beside it


def test_a_full_disk_while_writing_a_new_artifact_leaves_no_truncated_file():
    with pytest.raises(OSError), disk_full_after(1000):
        file_replace(name="models/p/run-2.pt", content=b"x" * 5000)

    assert not default_storage.exists("models/p/run-2.pt")
    assert stored("models/p") == []

    file_replace(name="models/p/run-2.pt", content=b"x" * 5000)  # once there is room
    assert default_storage.size("models/p/run-2.pt") == 5000
