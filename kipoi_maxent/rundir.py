"""The output directory of a run: whether it is ours, who is using it, and what in it we wrote.

The rules that keep a user's files safe:

- **Ownership.** A directory is a run's only if it does not exist, is empty, or holds our
  marker: ``run.json`` with our ``format`` (a finished run), ``.parts/manifest.json`` with ours
  (an unfinished one), or ``grid.json`` (the parent of a β grid's runs). Anything else is
  refused, whatever ``--overwrite`` says.
- **Deletion** only touches files a previous run's ``run.json`` lists *and* that are still
  the files it wrote (same sha256), by plain name inside the directory (no separators, no
  ``..``, no hidden names).
- **One run per directory**, by an OS lock on ``.kipoi_maxent.lock`` (the file stays; the lock
  goes with the process, however it ends).
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
from pathlib import Path

from kipoi_maxent.cache import file_digest
from kipoi_maxent.fileio import TEMPORARY_NAME

#: ``format`` of run.json, of .parts/manifest.json, of grid.json and of execution.json.
RUN_FORMAT = "kipoi_maxent.run"
PARTS_FORMAT = "kipoi_maxent.parts"
GRID_FORMAT = "kipoi_maxent.grid"
EXECUTION_FORMAT = "kipoi_maxent.execution"
#: Version of run.json's layout; a run.json of another version is not resumed.
SCHEMA_VERSION = 2
RUN_RECORD = "run.json"
GRID_RECORD = "grid.json"
EXECUTION_RECORD = "execution.json"
PARTS_DIRECTORY = ".parts"
LOCK_FILE = ".kipoi_maxent.lock"
#: Entries shown when a foreign directory is refused.
_SHOWN = 3


def read_json_object(path: Path) -> dict | None:
    """The JSON object in ``path``; None when it is missing, unreadable, not JSON or not an object."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def ours(path: Path, format_name: str) -> dict | None:
    """The JSON object in ``path`` if it carries our ``format_name``, else None."""
    record = read_json_object(path)
    return record if record is not None and record.get("format") == format_name else None


def ownership(directory: Path) -> str:
    """Whose ``directory`` is, for a run about to use it.

    Returns
    -------
    str
        ``"new"`` (does not exist), ``"empty"``, ``"finished"`` (our run.json), ``"unfinished"``
        (our parts, no run.json) or ``"grid"`` (our grid.json).

    Raises
    ------
    ValueError
        ``directory`` is a file, or a non-empty directory without our marker.
    """
    directory = Path(directory)
    if not directory.exists():
        return "new"
    if not directory.is_dir():
        raise ValueError(f"cannot write to output directory {directory}: it is a file; choose another -o")
    if ours(directory / RUN_RECORD, RUN_FORMAT) is not None:
        return "finished"
    if ours(directory / PARTS_DIRECTORY / "manifest.json", PARTS_FORMAT) is not None:
        return "unfinished"
    if ours(directory / GRID_RECORD, GRID_FORMAT) is not None:
        return "grid"
    try:
        entries = sorted(e.name for e in directory.iterdir()
                         if e.name != LOCK_FILE and not TEMPORARY_NAME.match(e.name))
    except OSError as error:
        raise ValueError(f"cannot read output directory {directory}: {error.strerror or error}; "
                         "choose another -o") from None
    if not entries:
        return "empty"
    shown = ", ".join(repr(name) for name in entries[:_SHOWN]) + (", …" if len(entries) > _SHOWN else "")
    raise ValueError(
        f"{directory} is not empty and is not a kipoi_maxent output directory (it holds {len(entries)} "
        f"entr{'y' if len(entries) == 1 else 'ies'}: {shown}, and no run.json written by kipoi_maxent); choose a "
        "new or empty directory with -o (--overwrite only replaces kipoi_maxent's own results)")


@contextlib.contextmanager
def locked(directory: Path):
    """Hold the run lock of ``directory`` (created if needed) for the context.

    Raises
    ------
    ValueError
        Another process holds it: the message names its PID and host.
    """
    directory = Path(directory)
    path = directory / LOCK_FILE
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as error:
        raise ValueError(f"cannot write to output directory {directory}: {error.strerror or error}; "
                         "choose another -o") from None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EACCES, errno.EAGAIN):
                raise
            holder = os.pread(descriptor, 200, 0).decode(errors="replace").strip() or "another process"
            raise ValueError(f"{directory} is in use by another kipoi_maxent run ({holder}); wait for it to "
                             "finish, or choose another -o") from None
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, f"PID {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def is_plain_name(name: str) -> bool:
    """Whether ``name`` is a file name directly inside a directory: no separator, not ``.``/``..``,
    not hidden, not our lock or records' siblings' parts directory."""
    return (isinstance(name, str) and bool(name) and name == os.path.basename(name) and "/" not in name
            and os.sep not in name and not name.startswith(".") and "\0" not in name)


def output_entry(path: Path) -> dict:
    """What run.json records of an output file: its sha256 and size."""
    return {"sha256": file_digest(path), "size": Path(path).stat().st_size}


def changed_outputs(directory: Path, outputs: dict) -> list[str]:
    """Names of ``outputs`` (run.json's ``{name: entry}``) that are missing from ``directory`` or
    no longer the files that were written."""
    changed = []
    for name, entry in outputs.items():
        path = Path(directory) / name
        if not (is_plain_name(name) and isinstance(entry, dict) and path.is_file()
                and path.stat().st_size == entry.get("size") and file_digest(path) == entry.get("sha256")):
            changed.append(name)
    return changed


def remove_outputs(directory: Path, outputs: dict) -> list[str]:
    """Delete the files of ``outputs`` (``{name: {"sha256", "size"}}``) that are still the files
    written; return the names left alone because they changed since (or are not plain names)."""
    directory = Path(directory)
    kept = []
    for name, entry in (outputs or {}).items():
        path = directory / name if is_plain_name(name) else None
        if path is None or not path.exists():
            if path is None:
                kept.append(str(name))
            continue
        if name in changed_outputs(directory, {name: entry}):
            kept.append(name)
            continue
        path.unlink()
    execution = directory / EXECUTION_RECORD
    if ours(execution, EXECUTION_FORMAT) is not None:
        execution.unlink()
    return kept
