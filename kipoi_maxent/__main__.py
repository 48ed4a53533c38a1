import sys

from kipoi_maxent.cli import main

sys.exit(main(prog="python -m kipoi_maxent"))
