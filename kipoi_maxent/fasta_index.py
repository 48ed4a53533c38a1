"""The index files pyfaidx reads a genome FASTA through: a ``.fai`` (samtools' format), and for a
bgzip-compressed FASTA a ``.gzi``. An existing index is checked against the FASTA before it is
trusted, and a new one is written atomically.

pyfaidx trusts any ``.fai`` that is not older than its FASTA, and rewrites an index in place. A
half-written index (a killed run) or a hand-edited one then silently gives wrong bases or drops
chromosomes. :func:`fasta_index_paths` instead

- uses an existing index only if it passes :func:`index_problem` (a few small reads per record,
  never a scan of the genome);
- otherwise has pyfaidx build the index under a temporary name in the index's directory, syncs it
  to disk and renames it over the final name, so a reader sees the old index or the whole new one,
  and a failed or interrupted build leaves nothing behind.

Where the index lives: ``<fasta>.fai`` (and ``<fasta>.gzi``) beside the FASTA when its directory is
writable or a valid up-to-date index is already there; otherwise in the user cache directory,
named by the sha256 of the FASTA's absolute path (as the genome composition cache, see
:func:`kipoi_maxent.genome_composition.cache_file_candidates`), so a genome in a read-only
directory still works.
"""
from __future__ import annotations

import bisect
import logging
import os
import re
import secrets
import struct
import zlib
from collections.abc import Callable
from itertools import pairwise
from typing import NamedTuple

from kipoi_maxent import genome_composition
from kipoi_maxent.cache import dir_is_writable

__all__ = ["IndexRecord", "fasta_index_paths", "index_problem", "read_fai"]

logger = logging.getLogger(__name__)

_LINE_ENDING = b"\r\n"
#: Bytes read at a time when looking for the end of a line or of a run of blank lines.
_CHUNK = 1 << 16
_FIELD = re.compile(r"[0-9]+")
_BGZF_SUFFIXES = (".gz", ".bgz")  # as pyfaidx: these names are read as bgzip, all others as plain text
_BGZF_HEADER = struct.Struct("<4s6xH")  # magic + flags, XLEN
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"

_Reader = Callable[[int, int], bytes]


class IndexRecord(NamedTuple):
    """One line of a ``.fai``: a record's sequence is ``length`` bases from byte ``offset`` of the
    (uncompressed) FASTA, in lines of ``linebases`` bases taking ``linewidth`` bytes each (the
    line ending included)."""

    name: str
    length: int
    offset: int
    linebases: int
    linewidth: int

    @property
    def end(self) -> int:
        """Where the sequence's bytes end, after the line ending of its last line."""
        if not self.length:
            return self.offset
        lines, rest = divmod(self.length, self.linebases)
        return self.offset + lines * self.linewidth + (rest + self.linewidth - self.linebases if rest else 0)


# ---------------------------------------------------------------------------------------------
# Where the index is, and building it


def fasta_index_paths(fasta_path: str | os.PathLike[str]) -> tuple[str, str | None]:
    """Index files of a FASTA to pass to ``pyfaidx.Fasta(indexname=..., gzi_indexname=...)``,
    checked or (re)built.

    Parameters
    ----------
    fasta_path : str or os.PathLike
        A plain FASTA, or a bgzip-compressed one named ``*.gz`` or ``*.bgz`` (pyfaidx goes by the
        name).

    Returns
    -------
    fai : str
        The ``.fai``: ``<fasta>.fai``, or a file in the user cache directory when the FASTA's
        directory is not writable and holds no valid up-to-date index.
    gzi : str or None
        The ``.gzi`` beside ``fai``, for a bgzip FASTA; ``None`` for a plain one.

    Raises
    ------
    ValueError
        Neither the FASTA's directory nor the cache directory is writable, and no valid index
        exists; or pyfaidx finds two records of one name (its ``Duplicate key`` error).
    pyfaidx.FastaIndexingError, pyfaidx.UnsupportedCompressionFormat, OSError
        pyfaidx cannot index the FASTA (ragged lines, plain gzip, an unreadable file); the
        message is pyfaidx's own, the caller words it (:func:`kipoi_maxent.inputs._open_fasta`).

    Notes
    -----
    An existing index is used when it is not older than the FASTA and :func:`index_problem` finds
    nothing wrong; an invalid or stale one is rebuilt (logged, with the reason), never edited.
    """
    path = os.fspath(fasta_path)
    compressed = path.lower().endswith(_BGZF_SUFFIXES)
    beside = (f"{path}.fai", f"{path}.gzi" if compressed else None)
    problem = _existing_index_problem(path, *beside)
    if problem is None:
        return beside
    if dir_is_writable(os.path.dirname(os.path.abspath(path))):
        _log_rebuild(path, beside[0], problem)
        _build(path, *beside)
        return beside
    cached = (genome_composition.cache_file_candidates(path, suffix=".fai")[1],
              genome_composition.cache_file_candidates(path, suffix=".gzi")[1] if compressed else None)
    cached_problem = _existing_index_problem(path, *cached)
    if cached_problem is None:
        return cached
    try:
        os.makedirs(os.path.dirname(cached[0]), exist_ok=True)
    except OSError as error:
        raise ValueError(_unindexable(path, cached[0], error)) from None
    if cached_problem is _MISSING:
        logger.info("indexing %s in %s (its directory is not writable)", path, cached[0])
    else:
        _log_rebuild(path, cached[0], cached_problem)
    _build(path, *cached)
    return cached


#: :func:`_existing_index_problem` when there is no index at all (rebuilt without a log line).
_MISSING = "missing"


def _existing_index_problem(path: str, fai: str, gzi: str | None) -> str | None:
    """Why the index ``fai`` (+ ``gzi``) of ``path`` cannot be used (``_MISSING`` when it is not
    there), or ``None``."""
    if not os.path.isfile(fai) or (gzi is not None and not os.path.isfile(gzi)):
        return _MISSING
    try:
        modified = os.stat(path).st_mtime_ns
        stale = [name for name in (fai, gzi) if name is not None and os.stat(name).st_mtime_ns < modified]
        if stale:
            return f"{stale[0]} is older than the FASTA"
        return index_problem(path, fai, gzi)
    except OSError as error:  # an unreadable index, or FASTA: rebuilding says which
        return f"it cannot be read ({error.strerror or error})"


def _log_rebuild(path: str, fai: str, problem: str) -> None:
    if problem is not _MISSING:
        logger.info("rebuilding the index %s of FASTA %s: %s", fai, path, problem)


def _build(path: str, fai: str, gzi: str | None) -> None:
    """Have pyfaidx index ``path`` into temporary files beside ``fai``, then rename them onto
    ``fai`` (and ``gzi``): readers see the old index or the whole new one, never a part."""
    import pyfaidx

    directory = os.path.dirname(os.path.abspath(fai))
    token = f"{os.getpid()}.{secrets.token_hex(4)}"
    finals = [name for name in (gzi, fai) if name is not None]  # the .fai last: it completes the set
    temporaries = {final: os.path.join(directory, f".{os.path.basename(final)}.{token}.tmp") for final in finals}
    try:
        try:
            # pyfaidx creates the files itself (open(name, "w")): their mode follows the umask.
            pyfaidx.Faidx(path, indexname=temporaries[fai], gzi_indexname=temporaries.get(gzi)).close()
            for temporary in temporaries.values():
                _fsync(temporary)
            for final in finals:
                os.replace(temporaries[final], final)
        except BaseException:  # KeyboardInterrupt and SystemExit too: leave no temporary behind
            for temporary in temporaries.values():
                try:
                    os.unlink(temporary)
                except OSError:
                    pass
            raise
    except OSError as error:
        if isinstance(error, (pyfaidx.UnsupportedCompressionFormat, pyfaidx.FastaNotFoundError)) or \
                dir_is_writable(directory):
            raise
        raise ValueError(_unindexable(path, fai, error)) from None
    try:
        _fsync(directory)  # the renames
    except OSError:
        pass


def _fsync(name: str) -> None:
    descriptor = os.open(name, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _unindexable(path, index: str, error: OSError) -> str:
    return (f"cannot index FASTA {path}: neither its directory nor the cache directory "
            f"{os.path.dirname(index)} is writable ({_strerror(error)}); run `samtools faidx` on a "
            "copy in a writable directory, or set XDG_CACHE_HOME to a writable directory")


def _strerror(error: BaseException) -> str:
    """The operating system's words for ``error`` (pyfaidx re-raises write errors without them)."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror
        seen = seen.__cause__ or seen.__context__
    return str(error)


# ---------------------------------------------------------------------------------------------
# Checking an index


def read_fai(fai: str | os.PathLike[str]) -> list[IndexRecord] | str:
    """The records of a ``.fai``, or why it is not a well-formed one.

    Every line must hold a name and four non-negative integers (length, offset, linebases,
    linewidth), separated by tabs, and end with a line ending; names are unique, offsets strictly
    increasing, and ``linewidth > linebases >= 1`` unless the length is 0, with line endings of
    one or two bytes (``\\n``, ``\\r\\n``). (``linewidth == linebases`` is left for
    :func:`index_problem` to judge: pyfaidx writes it for a one-line last record without a line
    ending.)

    Returns
    -------
    list of IndexRecord, or str
        The records in file order, or the problem (for a log line).
    """
    with open(fai, "rb") as stream:
        data = stream.read()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return "it is not text"
    if not text:
        return "it is empty"
    if not text.endswith("\n"):
        return "its last line is cut short (no line ending)"
    records: list[IndexRecord] = []
    names: set[str] = set()
    for number, line in enumerate(text[:-1].split("\n"), start=1):
        fields = line.removesuffix("\r").split("\t")
        if len(fields) != 5 or not fields[0] or not all(_FIELD.fullmatch(f) for f in fields[1:]):
            return f"line {number} is not a name and four tab-separated non-negative integers"
        record = IndexRecord(fields[0], *map(int, fields[1:]))
        if record.name in names:
            return f"line {number}: record {record.name!r} is listed twice"
        if records and record.offset <= records[-1].offset:
            return f"line {number}: the offset of {record.name!r} is not after the previous record's"
        if record.length and not record.linebases + 2 >= record.linewidth >= record.linebases >= 1:
            return f"line {number}: {record.name!r} has {record.linebases} bases in lines of {record.linewidth} bytes"
        if record.length > record.linebases == record.linewidth:
            return f"line {number}: {record.name!r} has lines without line endings"
        names.add(record.name)
        records.append(record)
    return records


def index_problem(fasta_path: str | os.PathLike[str], fai: str | os.PathLike[str],
                  gzi: str | os.PathLike[str] | None = None) -> str | None:
    """Why ``fai`` (and ``gzi``) is not a valid index of ``fasta_path``, or ``None`` if it is.

    Reads the index and, per record, a few bytes of the FASTA where the index says things are:
    never the whole genome. File dates are not compared here (see :func:`fasta_index_paths`).

    Parameters
    ----------
    fasta_path : str or os.PathLike
        The FASTA, plain, or bgzip-compressed when ``gzi`` is given.
    fai : str or os.PathLike
        Its ``.fai``.
    gzi : str or os.PathLike, optional
        Its ``.gzi``, for a bgzip FASTA.

    Returns
    -------
    str or None
        The first problem found (for a log line), or ``None``.

    Notes
    -----
    Beyond :func:`read_fai`'s checks of the ``.fai`` itself, for a plain FASTA:

    - the first header is at the start of the file (after blank lines or ``;`` comment lines);
    - each record's header line, ``>`` + name (pyfaidx's name: the first word after ``>``; a
      description may follow), ends with the byte before the record's offset;
    - each record's sequence ends where the next record's header starts (after blank lines, which
      pyfaidx allows between records): ``length // linebases`` full lines of ``linewidth`` bytes,
      then a shorter last line with its line ending; the last record's last line may lack it;
    - a record longer than one line has a base at ``offset + linebases - 1``, then
      ``linewidth - linebases`` line-ending bytes (``\\n`` or ``\\r``), then a base;
    - the last record ends at the end of the file (or before blank lines only).

    A wrong length, offset, line width or name, a lost or cut-short line all break one of these.

    For a bgzip FASTA the check is weaker (each distant read decompresses a 64 KiB block): the
    ``.fai`` is checked as above (:func:`read_fai`), and each record's sequence must end early
    enough to leave room for the next record's header; the ``.gzi`` must be well formed; the first
    and last base of the last record must read through pyfaidx with these index files as bases;
    and, read through the ``.gzi``, the first record's header must start the file, the last
    record's header must follow the one before it and its sequence must end the file. A wrong
    field of a record in the middle of the file can therefore go unnoticed.
    """
    records = read_fai(fai)
    if isinstance(records, str):
        return records
    if gzi is None:
        with open(fasta_path, "rb") as stream:
            size = os.fstat(stream.fileno()).st_size

            def read(position: int, count: int) -> bytes:
                stream.seek(position)
                return stream.read(count)

            return _layout_problem(read, size, records, range(len(records)))
    for record, following in pairwise(records):  # no reading: room for the header between records
        if record.end + len(following.name.encode()) + 2 > following.offset:
            return f"the sequence of {record.name!r} runs into the header of {following.name!r}"
    blocks = _read_gzi(gzi)
    if isinstance(blocks, str):
        return blocks
    problem = _pyfaidx_read_problem(fasta_path, fai, gzi, records[-1])
    if problem is not None:
        return problem
    with open(fasta_path, "rb") as stream:
        try:
            text = _BgzfText(stream, blocks)
            return _layout_problem(text.read, text.size, records, sorted({max(len(records) - 2, 0), len(records) - 1}))
        except (ValueError, zlib.error, struct.error) as error:  # a .gzi that does not fit the file
            return f"the FASTA cannot be read through the .gzi ({error})"


def _layout_problem(read: _Reader, size: int, records: list[IndexRecord], checked) -> str | None:
    """Whether the FASTA's bytes are where ``records`` say, for the first header and the records
    ``checked`` (each with the header that follows it, or the end of the file)."""
    position = _after_preamble(read, records[0].offset)
    if position is None:
        return "the file does not start with blank lines, ';' comments and a header"
    problem = _header_problem(read, size, position, records[0])
    if problem is not None:
        return problem
    for i in checked:
        record = records[i]
        if i + 1 < len(records):
            following = records[i + 1]
            end = _sequence_end(read, size, record, last=False)
            if isinstance(end, str):
                return end
            position = _skip_line_endings(read, end, following.offset)
            problem = _header_problem(read, size, position, following)
        else:
            end = _sequence_end(read, size, record, last=True)
            if isinstance(end, str):
                return end
            problem = None if _skip_line_endings(read, end, size) == size else \
                f"the file goes on after the last record {record.name!r} ends (a record is missing from the index)"
        if problem is not None:
            return problem
    return None


def _after_preamble(read: _Reader, limit: int) -> int | None:
    """Where the first line that starts with ``>`` starts, if only blank and ``;`` lines come before
    it (pyfaidx skips those), within ``limit`` bytes."""
    position = 0
    while position < limit:
        if read(position, 1) == b">":
            return position
        line = _line(read, position, limit)
        if line is None or (line.strip() and not line.startswith(b";")):
            return None
        position += len(line)
    return None


def _header_problem(read: _Reader, size: int, position: int, record: IndexRecord) -> str | None:
    """Whether the header line of ``record`` starts at ``position`` and ends right before its
    sequence (at the end of the file for an empty last record without line ending)."""
    line = _line(read, position, record.offset)
    if line is None and record.offset == size and not record.length and size - position <= _CHUNK:
        line = read(position, size - position)
    if line is None or position + len(line) != record.offset or not line.startswith(b">"):
        return f"the header of {record.name!r} is not where the index says (record offsets or lengths are wrong)"
    words = line[1:].rstrip(b"\r\n").decode("utf-8", "replace").split()
    if not words or words[0] != record.name:
        return f"the header before the sequence of {record.name!r} names {' '.join(words[:1])!r}"
    return None


def _sequence_end(read: _Reader, size: int, record: IndexRecord, last: bool) -> int | str:
    """Where ``record``'s sequence ends (after its line ending), checking both ends of its first
    line and the end of its last line; or the problem."""
    if not record.length:
        return record.offset
    ending = record.linewidth - record.linebases
    if not ending and not last:
        return f"{record.name!r} has no line ending but is not the last record"
    if record.length > record.linebases:  # a base, the line ending, a base
        seen = read(record.offset + record.linebases - 1, ending + 2)
        if len(seen) != ending + 2 or seen[0] in _LINE_ENDING or seen[-1] in _LINE_ENDING \
                or seen[1:-1].strip(_LINE_ENDING):
            return f"the first line of {record.name!r} is not {record.linebases} bases and {ending} line-ending bytes"
    end = record.end
    seen = read(end - ending - 1, ending + 1)  # the last base, the line ending
    if last and end - ending == size:
        end, seen = size, seen[:1]  # the file ends without a line ending
    elif not ending or len(seen) != ending + 1 or seen[1:].strip(_LINE_ENDING):
        return f"the last line of {record.name!r} does not end where its length says"
    if not seen or seen[0] in _LINE_ENDING or seen[0] == ord(">"):
        return f"the last line of {record.name!r} is shorter than its length says"
    return end


def _line(read: _Reader, position: int, limit: int) -> bytes | None:
    """The bytes from ``position`` through the next ``\\n``, if that is before ``limit``."""
    parts = []
    while position < limit:
        chunk = read(position, min(_CHUNK, limit - position))
        if not chunk:
            return None
        cut = chunk.find(b"\n")
        if cut >= 0:
            parts.append(chunk[:cut + 1])
            return b"".join(parts)
        parts.append(chunk)
        position += len(chunk)
    return None


def _skip_line_endings(read: _Reader, position: int, limit: int) -> int:
    """The first position from ``position`` (up to ``limit``) that is not ``\\n`` or ``\\r``."""
    while position < limit:
        chunk = read(position, min(_CHUNK, limit - position))
        if not chunk:
            return position
        rest = chunk.lstrip(_LINE_ENDING)
        position += len(chunk) - len(rest)
        if rest:
            return position
    return position


# ---------------------------------------------------------------------------------------------
# bgzip


def _read_gzi(gzi) -> list[tuple[int, int]] | str:
    """``(compressed, uncompressed)`` start of every BGZF block the ``.gzi`` lists (the first
    block, at ``(0, 0)``, included), or why it is not a well-formed ``.gzi``."""
    with open(gzi, "rb") as stream:
        data = stream.read()
    if len(data) < 8:
        return "the .gzi is cut short"
    (count,) = struct.unpack_from("<Q", data)
    if len(data) != 8 + 16 * count:
        return f"the .gzi lists {count} blocks in {len(data)} bytes (it is cut short or too long)"
    blocks = [(0, 0)] + [struct.unpack_from("<QQ", data, 8 + 16 * i) for i in range(count)]
    if any(b[0] <= a[0] or b[1] < a[1] for a, b in pairwise(blocks)):  # empty blocks: cat of bgzip files
        return "the .gzi's block offsets do not increase"
    return blocks


def _pyfaidx_read_problem(fasta_path, fai, gzi, record: IndexRecord) -> str | None:
    """Whether pyfaidx, with these index files, reads the first and last base of ``record`` as bases."""
    if not record.length:
        return None
    import pyfaidx

    try:
        with pyfaidx.Faidx(os.fspath(fasta_path), indexname=os.fspath(fai), gzi_indexname=os.fspath(gzi),
                           as_raw=True, build_index=False, rebuild=False) as faidx:
            bases = faidx.fetch(record.name, 1, 1) + faidx.fetch(record.name, record.length, record.length)
    except Exception as error:  # noqa: BLE001 - whatever a wrong index makes pyfaidx or Biopython raise
        return f"pyfaidx cannot read the last record {record.name!r} with it ({type(error).__name__}: {error})"
    if len(bases) != 2 or not all(base.isalpha() or base in "*-" for base in bases):
        return f"pyfaidx reads {bases!r} as the first and last base of the last record {record.name!r}"
    return None


class _BgzfText:
    """Reads at any position of the uncompressed text of a BGZF file (SAM specification, 4.1),
    starting each at the block the ``.gzi`` lists before it."""

    def __init__(self, stream, blocks: list[tuple[int, int]]):
        self._stream = stream
        self._compressed = [c for c, _ in blocks]
        self._uncompressed = [u for _, u in blocks]
        self._cached: tuple[int, bytes, int] | None = None
        self.size = self._to_end(*blocks[-1])

    def _block(self, start: int) -> tuple[bytes, int]:
        """The text of the block at compressed offset ``start``, and where the next block starts."""
        if self._cached is not None and self._cached[0] == start:
            return self._cached[1], self._cached[2]
        self._stream.seek(start)
        header = self._stream.read(_BGZF_HEADER.size)
        if len(header) < _BGZF_HEADER.size:
            return b"", start  # end of file
        magic, extra_length = _BGZF_HEADER.unpack(header)
        extra = self._stream.read(extra_length)
        size = None
        i = 0
        while i + 4 <= len(extra):  # the BC subfield holds the block's size - 1
            length = struct.unpack_from("<H", extra, i + 2)[0]
            if extra[i:i + 2] == b"BC" and length == 2:
                size = struct.unpack_from("<H", extra, i + 4)[0] + 1
            i += 4 + length
        if magic != _BGZF_MAGIC or size is None:
            raise ValueError(f"no BGZF block at byte {start}")
        data_length = size - _BGZF_HEADER.size - extra_length - 8
        text = zlib.decompress(self._stream.read(data_length), -15) if data_length > 0 else b""
        self._cached = (start, text, start + size)
        return text, start + size

    def _to_end(self, start: int, position: int) -> int:
        """The text's length, counted from the block at ``start`` (text position ``position``)."""
        while True:
            text, following = self._block(start)
            if following == start:
                return position
            position, start = position + len(text), following

    def read(self, position: int, count: int) -> bytes:
        i = bisect.bisect_right(self._uncompressed, position) - 1
        start, block_position = self._compressed[i], self._uncompressed[i]
        parts, wanted = [], count
        while wanted > 0:
            text, following = self._block(start)
            if following == start:
                break
            piece = text[max(position - block_position, 0):][:wanted]
            parts.append(piece)
            wanted -= len(piece)
            block_position += len(text)
            start = following
        return b"".join(parts)
