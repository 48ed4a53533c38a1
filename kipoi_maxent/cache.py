"""The user cache directory, and content digests of files cached in it.

A run's manifest identifies every file it read (model files, BED, FASTA) by content, so that
a changed file is never mixed into a resumed run. Hashing a 3 GB genome takes seconds, so a
digest is cached under the file's identity: absolute path, size, modification *and* change
time, inode and device. ``cp -p`` and ``rsync -a`` keep size and mtime but not inode and ctime,
and no user tool can set the ctime back, so a file whose content changed is always re-hashed.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import secrets
from pathlib import Path

logger = logging.getLogger(__name__)

#: Bytes read per step when hashing.
_READ_BYTES = 1 << 20
#: Files at least this large get a cached digest; smaller ones are hashed every time.
CACHED_DIGEST_BYTES = 1 << 20


def user_cache_dir(cache_dir: str | os.PathLike[str] | None = None) -> str:
    """``cache_dir``, else ``$XDG_CACHE_HOME/kipoi_maxent``, else ``~/.cache/kipoi_maxent``."""
    if cache_dir is not None:
        return os.path.abspath(os.fspath(cache_dir))
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    # The XDG spec says relative values are invalid and must be ignored.
    base = xdg if os.path.isabs(xdg) else os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "kipoi_maxent")


def dir_is_writable(directory: str | os.PathLike[str]) -> bool:
    """Whether new files can be created in ``directory`` (the single place this is decided)."""
    return os.access(directory, os.W_OK | os.X_OK)


def write_json_atomic(target: str | os.PathLike[str], payload: dict) -> None:
    """Write ``payload`` to ``target`` so readers see either the old or the whole new file
    (temporary file, fsync, rename). Permissions follow the umask."""
    target = os.fspath(target)
    directory = os.path.dirname(target)
    os.makedirs(directory, exist_ok=True)
    temporary = os.path.join(directory, f".{os.path.basename(target)}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as stream:
            json.dump(payload, stream, indent=1, sort_keys=True)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def file_identity(path: str | os.PathLike[str]) -> dict:
    """What identifies a file's current content without reading it (see the module docstring)."""
    status = os.stat(path)
    return {"path": os.path.abspath(os.fspath(path)), "size": status.st_size, "mtime_ns": status.st_mtime_ns,
            "ctime_ns": status.st_ctime_ns, "inode": status.st_ino, "device": status.st_dev}


def _hash(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as stream:
        buffer = bytearray(_READ_BYTES)
        view = memoryview(buffer)
        while True:
            read = stream.readinto(view)
            if not read:
                break
            digest.update(view[:read])
    return digest.hexdigest()


def file_digest(path: str | os.PathLike[str], *, cache_dir: str | os.PathLike[str] | None = None) -> str:
    """sha256 of a file's content (hex), cached in the user cache directory for large files.

    Parameters
    ----------
    path : str or os.PathLike
    cache_dir : str or os.PathLike, optional
        Default :func:`user_cache_dir`.

    Raises
    ------
    ValueError
        The file cannot be read (one line naming it).
    """
    path = os.path.abspath(os.fspath(path))
    try:
        identity = file_identity(path)
        if identity["size"] < CACHED_DIGEST_BYTES:
            return _hash(path)
        record = os.path.join(user_cache_dir(cache_dir), "digests",
                              hashlib.sha256(os.fsencode(path)).hexdigest() + ".json")
        try:
            with open(record, encoding="utf-8") as stream:
                cached = json.load(stream)
            if cached.get("identity") == identity and isinstance(cached.get("sha256"), str):
                return cached["sha256"]
        except (OSError, ValueError, AttributeError):
            pass  # no cache, or a broken one: hash again
        digest = _hash(path)
        if file_identity(path) == identity:  # unchanged while it was read
            try:
                write_json_atomic(record, {"identity": identity, "sha256": digest})
            except OSError as error:
                logger.debug("cannot cache the digest of %s: %s", path, error)
        return digest
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None


def tree_digests(directory: str | os.PathLike[str]) -> dict[str, str]:
    """``{relative path: sha256}`` of every regular file under ``directory`` (``__pycache__``
    and ``.ipynb_checkpoints`` left out), in sorted order."""
    root = Path(directory)
    skipped = {"__pycache__", ".ipynb_checkpoints"}
    found = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not skipped & set(path.relative_to(root).parts):
            found[str(path.relative_to(root))] = file_digest(path)
    return found
