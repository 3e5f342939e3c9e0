"""The cache's folders on disk: free space, preallocated arrays and temporaries of killed builds.

A build checks the free space first and preallocates its arrays (``posix_fallocate``), so a full
disk raises :class:`CacheSpaceError` naming the device, the path and the space needed instead of
a bus error in the middle of a memory-mapped write. Each temporary folder holds an ``owner`` file
(host and process id); a later build removes the temporary folders whose owner is gone.
"""
from __future__ import annotations

import os
import shutil
import socket
import time
from pathlib import Path

from .layout import DataError

SPACE_MARGIN = 16 << 20  # bytes kept free beyond the arrays (manifest, report, file system)
STALE_SECONDS = 3600     # a temporary folder without an owner file is stale after this long


class CacheSpaceError(DataError):
    """The cache's disk has too little free space; the message names the device and the path."""

    def __init__(self, message: str):
        super().__init__(message, "no_space")


def preallocate(path: Path, nbytes: int) -> None:
    """Reserve the file's blocks now: a full disk raises ENOSPC here, not SIGBUS mid-write."""
    with open(path, "wb") as fh:
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(fh.fileno(), 0, nbytes)
        else:
            fh.truncate(nbytes)


def _mount_of(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path != path.parent:
        path = path.parent
    return path


def space_error(final: Path, need: int) -> CacheSpaceError:
    free = shutil.disk_usage(final.parent).free
    return CacheSpaceError(f"no space left on {_mount_of(final.parent)} for the cache at {final} "
                           f"(needs {need / 1e6:.0f} MB, {free / 1e6:.0f} MB free)")


def _owner_alive(folder: Path) -> bool:
    """Whether the build that owns a temporary folder may still be running."""
    try:
        host, pid = (folder / "owner").read_text().split()
    except (OSError, ValueError):
        try:
            return time.time() - folder.stat().st_mtime < STALE_SECONDS
        except OSError:
            return False
    if host != socket.gethostname():
        return True          # another machine's build on a shared disk: leave it
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, ValueError):
        return True
    return True


def remove_stale_temporaries(root: Path) -> int:
    """Remove temporary folders of killed builds under the cache ``root``; returns how many."""
    n = 0
    for tmp in Path(root).glob(".*.tmp-*"):
        if tmp.is_dir() and not _owner_alive(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
            n += 1
    return n


def write_owner(folder: Path) -> None:
    (Path(folder) / "owner").write_text(f"{socket.gethostname()} {os.getpid()}")


__all__ = ["CacheSpaceError", "SPACE_MARGIN", "preallocate", "remove_stale_temporaries",
           "space_error", "write_owner"]
