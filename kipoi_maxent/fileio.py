"""Writing files so that a killed process never leaves a half-written one, and cleaning up the
temporary files a harder kill leaves behind.

Every file is written under a temporary name beside its final one (``.NAME.PID.HEX.tmp``),
flushed to disk, and renamed into place; the directory entry is flushed too. Permissions
follow the umask (unlike ``tempfile.mkstemp``'s 0600).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
from pathlib import Path

#: Names of the temporary files :func:`atomic_name` creates.
TEMPORARY_NAME = re.compile(r"^\..+\.\d+\.[0-9a-f]{8}\.tmp$")


def _fsync_path(path: Path, directory: bool = False) -> None:
    descriptor = os.open(path, os.O_RDONLY | (os.O_DIRECTORY if directory else 0))
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_name(path):
    """A temporary name beside ``path``, renamed to ``path`` only on success (for libraries
    that open files by name, like pyBigWig and h5py). The file's content and the rename are
    flushed to disk before the context exits, so a file that exists after a crash is whole."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    try:
        yield temporary
        _fsync_path(temporary)
        os.replace(temporary, path)
        _fsync_path(path.parent, directory=True)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


@contextlib.contextmanager
def atomic_path(path, mode: str = "w"):
    """Open a temporary file beside ``path``; rename it to ``path`` only on success."""
    with atomic_name(path) as temporary, open(temporary, mode.replace("w", "x")) as stream:
        yield stream


def write_json(record: dict, path) -> None:
    """``record`` as indented, key-sorted JSON (values JSON cannot hold are written as strings)."""
    with atomic_path(path) as stream:
        json.dump(record, stream, indent=2, sort_keys=True, default=str)
        stream.write("\n")


def remove_temporaries(directory) -> list[str]:
    """Delete the temporary files of :func:`atomic_name` in ``directory`` (not recursive): only
    call it while no other process writes there (e.g. under the run's lock). Returns their names."""
    directory = Path(directory)
    removed = []
    if directory.is_dir():
        for path in directory.iterdir():
            if TEMPORARY_NAME.match(path.name) and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path.name)
    return removed


class Terminated(SystemExit):
    """SIGTERM, raised as an exception so that ``finally`` blocks and context managers (temporary
    files, locks) clean up as for Ctrl-C."""


@contextlib.contextmanager
def sigterm_raises():
    """Within the context, SIGTERM raises :class:`Terminated` (exit code 143) in the main thread."""
    def handler(signum, frame):
        raise Terminated(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
