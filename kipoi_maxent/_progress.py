"""The one progress display of a run: inputs done (and converged), proposals per second, ETA.

On a terminal it is a status line redrawn in place; elsewhere (a log file, a cluster job) a
plain line every :data:`LOG_INTERVAL` seconds through the ``kipoi_maxent`` logger, so logs
hold no carriage returns or escape codes.
"""
from __future__ import annotations

import logging
import time

from kipoi_maxent._quiet import OWN_STDERR

logger = logging.getLogger("kipoi_maxent")

#: Seconds between status lines when stderr is not a terminal.
LOG_INTERVAL = 30.0
#: Seconds between redraws on a terminal.
REDRAW_INTERVAL = 0.5


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class Progress:
    """Counts of a run, shown as they change.

    Parameters
    ----------
    total : int, optional
        Inputs in the run (for the ETA), if known.
    enabled : bool
        False: show nothing (``--quiet``).
    label : str
        What is counted, e.g. ``"inputs"``.
    """

    def __init__(self, total: int | None = None, *, enabled: bool = True, label: str = "inputs"):
        self.total = total
        self.enabled = enabled
        self.label = label
        self.done = self.converged = self.running = 0
        self.proposals = 0
        self._started = time.monotonic()
        self._shown_at = 0.0
        self._terminal = enabled and OWN_STDERR.isatty()
        self._line_shown = False

    def update(self, *, done: int = 0, converged: int = 0, proposals: int = 0, running: int | None = None) -> None:
        """Add finished inputs (and how many of them converged) and proposals; set inputs running."""
        self.done += done
        self.converged += converged
        self.proposals += proposals
        if running is not None:
            self.running = running
        now = time.monotonic()
        if self.enabled and now - self._shown_at >= (REDRAW_INTERVAL if self._terminal else LOG_INTERVAL):
            self._show(now)

    def text(self, now: float | None = None) -> str:
        elapsed = max((now or time.monotonic()) - self._started, 1e-9)
        parts = [f"{self.done}{f'/{self.total}' if self.total else ''} {self.label} done"]
        if self.converged or self.done:
            parts[0] += f" ({self.converged} converged)"
        if self.running:
            parts.append(f"{self.running} still sampling")
        if self.proposals:
            parts.append(f"{self.proposals / elapsed:,.0f} proposals/s")
        if self.total and 0 < self.done < self.total:
            parts.append(f"ETA {_duration(elapsed / self.done * (self.total - self.done))}")
        parts.append(f"{_duration(elapsed)} elapsed")
        return ", ".join(parts)

    def _show(self, now: float) -> None:
        self._shown_at = now
        if self._terminal:
            stream = OWN_STDERR.stream()
            stream.write("\r\x1b[K" + self.text(now))
            stream.flush()
            self._line_shown = True
            OWN_STDERR.before_line = self.clear
        else:
            logger.info("%s", self.text(now))

    def clear(self) -> None:
        """Remove the status line from the terminal (before another line is written)."""
        if self._line_shown:
            stream = OWN_STDERR.stream()
            stream.write("\r\x1b[K")
            stream.flush()
            self._line_shown = False

    def close(self) -> None:
        """Clear the status line; nothing is left behind on the terminal or in the log."""
        self.clear()
        if OWN_STDERR.before_line == self.clear:
            OWN_STDERR.before_line = None
