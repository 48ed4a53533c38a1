"""Keeping stderr to the product's own lines.

TensorFlow prints C++ start-up lines (oneDNN, cudart, cpu_feature_guard, a ``cuInit`` error
that reads like a crash) while it is imported and while a model is loaded, before Python's
logging exists; ``TF_CPP_MIN_LOG_LEVEL`` does not catch all of them. So, unless verbose, the
process's file descriptor 2 points to ``/dev/null`` while a framework is imported and a model
loaded, and the loggers of Kipoi, TensorFlow and absl are raised to ERROR. Our own messages
go through the ``kipoi_maxent`` logger, whose handler writes to a copy of the original stderr.
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
import threading
import warnings

#: Show everything (``--verbose``, or ``KIPOI_MAXENT_VERBOSE=1``).
_state = {"verbose": os.environ.get("KIPOI_MAXENT_VERBOSE", "") not in ("", "0")}
_lock = threading.Lock()
#: Loggers of the libraries below us that talk at INFO on every model load.
NOISY_LOGGERS = ("kipoi", "kipoiseq", "kipoi_utils", "tensorflow", "absl", "h5py", "numba", "distributed",
                 "matplotlib", "PIL", "arviz", "arviz_base", "arviz_stats", "arviz_plots")


def verbose() -> bool:
    return _state["verbose"]


def set_verbose(value: bool) -> None:
    """Show (True) or hide the frameworks' own output from now on."""
    _state["verbose"] = bool(value)
    if not value:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    quiet_libraries()


def quiet_libraries() -> None:
    """Raise the libraries' loggers to ERROR (unless verbose)."""
    if verbose():
        return
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def framework_output_hidden():
    """Within the context, output written to file descriptor 2 by anything but our logger
    (C++ libraries, Python warnings) goes to ``/dev/null``, unless verbose. Nests; restores
    stderr on exit, however the context ends (so a traceback after it is seen)."""
    if verbose():
        yield
        return
    with _lock:
        sys.stderr.flush()
        saved = os.dup(2)
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        os.close(null)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        with _lock:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        quiet_libraries()  # libraries imported inside set their own levels at import


class OwnStderr:
    """Where our own lines go: ``sys.stderr`` when someone replaced it (a test, a notebook's
    capture), else a copy of file descriptor 2 made before any framework output was hidden."""

    def __init__(self):
        self._copy = None
        #: Called before a line is written: clears a progress status line drawn in place.
        self.before_line = None

    def stream(self):
        if sys.stderr is not sys.__stderr__ or sys.__stderr__ is None:
            return sys.stderr
        if self._copy is None:
            self._copy = os.fdopen(os.dup(sys.__stderr__.fileno()), "w", buffering=1, encoding="utf-8",
                                   errors="replace")
        return self._copy

    def isatty(self) -> bool:
        stream = self.stream()
        return bool(getattr(stream, "isatty", lambda: False)())


#: The one place our lines are written (the logger's handler and the progress display).
OWN_STDERR = OwnStderr()


class OwnStderrHandler(logging.StreamHandler):
    """A logging handler writing to :data:`OWN_STDERR`."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return OWN_STDERR.stream()

    @stream.setter
    def stream(self, value):  # StreamHandler.__init__ assigns it
        pass

    def emit(self, record):
        if OWN_STDERR.before_line is not None:
            OWN_STDERR.before_line()
        super().emit(record)


@contextlib.contextmanager
def messages_held(logger_name: str = "kipoi_maxent"):
    """Hold the messages of ``logger_name`` (and its children) while the context runs: they are
    shown when it ends normally and dropped when it raises, so a refused input or option is one
    line on stderr (the error), not that line after a few lines of progress."""
    logger = logging.getLogger(logger_name)
    held: list[logging.LogRecord] = []

    class Holder(logging.Handler):
        def emit(self, record):
            held.append(record)

    handlers, propagate = logger.handlers[:], logger.propagate
    holder = Holder(level=logging.NOTSET)
    logger.handlers[:] = [holder]
    logger.propagate = False
    try:
        yield
    except BaseException:
        logger.handlers[:], logger.propagate = handlers, propagate
        raise
    logger.handlers[:], logger.propagate = handlers, propagate
    for record in held:
        logger.handle(record)
