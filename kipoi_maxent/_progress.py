"""tqdm progress bars on stderr: lively on a terminal, sparse in log files."""
import sys

from tqdm.auto import tqdm


def progress_bar(*, total=None, desc: str, unit: str, enabled: bool, leave: bool = True) -> tqdm:
    interactive = sys.stderr.isatty()
    return tqdm(total=total, desc=desc, unit=unit, disable=not enabled, leave=leave,
                mininterval=0.2 if interactive else 30.0, file=sys.stderr, dynamic_ncols=interactive)
