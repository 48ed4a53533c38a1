#!/usr/bin/env bash
# One-command set-up and run on a fresh Debian/Ubuntu machine (Python >= 3.10):
#   bash run.sh demo   # install everything, run the CTCF example, say where the outputs are
#   bash run.sh test   # install everything, run the test suite (extra args go to pytest)
#   bash run.sh bench  # install everything, run the engine benchmarks (extra args go to it)
#   bash run.sh replicate  # install everything, regenerate docs/replication.md (~80 min; extra args go to it)
# Set-up: system packages (bedtools, python3-venv; chromium for the tests) via apt when missing and running as root,
# a virtual environment in .venv (override with VENV=...), the package with all its
# dependencies. Repeated runs skip what is already installed.
set -euo pipefail
cd "$(dirname "$0")"
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
task=${1:-}
case "$task" in demo|test|bench|replicate) shift ;; *) echo "usage: bash run.sh demo|test|bench|replicate [args]" >&2; exit 2 ;; esac

say() { echo "run.sh: $*" >&2; }

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null || {
  say "needs Python >= 3.10 as '$PYTHON' (set PYTHON=/path/to/python3)"; exit 1; }

# system packages: bedtools (pybedtools runs it), python3-venv (Debian/Ubuntu split venv out)
missing=()
command -v bedtools >/dev/null 2>&1 || missing+=(bedtools)
"$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1 || missing+=("python3-venv")
# chromium: the test suite renders report.html headless
[ "$task" = test ] && ! command -v chromium >/dev/null 2>&1 && missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    say "missing system packages: ${missing[*]}; install them first, e.g. sudo apt-get install ${missing[*]}"
    exit 1
  fi
fi

# the virtual environment and the package (editable), reinstalled when pyproject.toml changes
stamp="$VENV/.kipoi_maxent-installed"
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -x "$VENV/bin/python" ]; then
  say "creating virtual environment $VENV"
  "$PYTHON" -m venv "$VENV"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  say "installing kipoi_maxent and its dependencies into $VENV (first time: a few minutes)"
  "$VENV/bin/python" -m pip install -q --upgrade pip "setuptools<81" wheel
  "$VENV/bin/python" -m pip install -q -e ".[test,bench]"  # torch pinned to the 2.13.0 CPU build
  echo "$want" > "$stamp"
fi

export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2} PYTHONWARNINGS=${PYTHONWARNINGS:-ignore}
case "$task" in
  demo)
    out=demo_output/ctcf
    say "running the CTCF example (12 peaks; beta and run length chosen automatically): kipoi maxent sample --config example_configs/ctcf.yaml -o $out"
    start=$(date +%s)
    "$VENV/bin/kipoi" maxent sample --config example_configs/ctcf.yaml -o "$out"
    say "done in $(( $(date +%s) - start )) s; outputs in $(pwd)/$out:"
    ls -l "$out" >&2
    say "open $out/report.html in a browser; load $out/motifs.bed and $out/importance.bw in IGV with the genome example_configs/data/ctcf_genome.fa"
    ;;
  test)
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  bench)
    exec "$VENV/bin/python" benchmarks/bench_engines.py "$@"
    ;;
  replicate)
    exec "$VENV/bin/python" docs/replicate.py "$@"
    ;;
esac
