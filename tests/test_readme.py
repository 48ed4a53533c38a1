"""The README's tested sections (issue 13): the workflow snippet of "Use it from a workflow" runs
as shown and gives one summary row per peak with its motif call, and the stderr shown in "What a
run prints" is what the command above it prints (numbers and paths aside).

After a deliberate change of what a run prints, rewrite that README block from a real run:

    .venv/bin/python tests/test_readme.py --update
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
EXAMPLE = REPO / "example_configs"
BIN = Path(sys.executable).parent
#: The environment of a user's shell: nothing set to quieten TensorFlow or Python.
ENV = {key: value for key, value in os.environ.items()
       if key not in ("TF_CPP_MIN_LOG_LEVEL", "PYTHONWARNINGS", "KIPOI_MAXENT_VERBOSE")}
#: What the README shows instead of this checkout's absolute path.
CHECKOUT = "/path/to/kipoi_maxent"
#: The example's files the workflow snippet reads (relative to the repository root).
SNIPPET_FILES = ("models/ctcf_cnn", "data/ctcf_peaks.bed", "data/ctcf_genome.fa", "data/ctcf_genome.fa.fai")


def block(name: str, text: str | None = None) -> re.Match:
    """The fenced block that follows ``<!-- tested by tests/test_readme.py: NAME -->``
    (group 1: its content)."""
    text = README.read_text() if text is None else text
    found = re.search(rf"<!-- tested by tests/test_readme\.py: {name} -->\n```[^\n]*\n(.*?)^```$", text, re.S | re.M)
    assert found, f"README.md has no block marked 'tested by tests/test_readme.py: {name}'"
    return found


# ---------------------------------------------------------------------------------------------
# "What a run prints"


def run_readme_command(output: Path) -> tuple[list[str], subprocess.CompletedProcess]:
    """Run the README's command from the repository root, with ``-o`` pointed at ``output``:
    ``(the command as run, the finished process)``."""
    from kipoi_maxent.genome_composition import cached_base_counts

    # a first run ever counts the genome's bases ("computed"); later ones read the cache, as shown
    cached_base_counts(REPO / "example_configs" / "data" / "ctcf_genome.fa")
    args = shlex.split(block("command").group(1).replace("\\\n", " "))
    assert args[0] == "kipoi-maxent" and "-o" in args, args
    args[0] = str(BIN / "kipoi-maxent")
    args[args.index("-o") + 1] = str(output)
    # an empty user cache: β comes from the pilot ("auto"), as on a first run, not from a cached choice
    env = {**ENV, "XDG_CACHE_HOME": str(output.parent / "cache")}
    return args, subprocess.run(args, capture_output=True, text=True, env=env, cwd=REPO)


def shown(stderr: str, output: Path) -> str:
    """A run's stderr as the README shows it: this checkout and the output directory by the
    names the README uses."""
    return stderr.replace(str(output), "out").replace(str(REPO), CHECKOUT)


def normalised(text: str) -> list[str]:
    """Lines with every number as ``#``; a progress line's timing-dependent parts dropped, and
    consecutive progress lines as one (a slower run logs one every 30 s)."""
    lines = []
    for line in text.splitlines():
        line = re.sub(r"\d+(?:[.,]\d+)*", "#", line)
        progress = " inputs done" in line
        if progress:
            line = re.sub(r" \(# converged\)|, ETA [^,]+|, # still sampling", "", line)
            line = re.sub(r"# (s|min|h) elapsed", "# s elapsed", line)
            if lines and lines[-1][0]:
                continue
        lines.append((progress, line))
    return [line for _, line in lines]


def test_what_a_run_prints_is_in_the_readme(tmp_path):
    args, result = run_readme_command(tmp_path / "out")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    actual = shown(result.stderr, tmp_path / "out")
    documented = block("stderr").group(1)
    assert normalised(actual) == normalised(documented), (
        "README.md's 'What a run prints' block no longer matches what the command prints; if the change is "
        f"intended, run `{sys.executable} tests/test_readme.py --update`.\n--- printed:\n{actual}"
        f"--- README:\n{documented}")
    assert (tmp_path / "out" / "summary.tsv").is_file()


def update_readme() -> str:
    """Rerun the README's command and rewrite the README's stderr block with what it printed."""
    import tempfile

    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "out"
        args, result = run_readme_command(output)
        if result.returncode != 0:
            raise SystemExit(f"{shlex.join(args)} failed:\n{result.stderr}")
        text = shown(result.stderr, output)
    readme = README.read_text()
    found = block("stderr", readme)
    README.write_text(readme[:found.start(1)] + text + readme[found.end(1):])
    return text


# ---------------------------------------------------------------------------------------------
# "Use it from a workflow"


def test_workflow_snippet_shards_runs_and_merges(tmp_path, monkeypatch, capsys):
    for name in SNIPPET_FILES:  # a copy of what it reads (a FASTA's composition cache is keyed on its path)
        target = tmp_path / "example_configs" / name
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if (EXAMPLE / name).is_dir() else shutil.copy)(EXAMPLE / name, target)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(block("workflow").group(1), "README.md (workflow)", "exec"), namespace)

    peaks = [line.split("\t") for line in (EXAMPLE / "data" / "ctcf_peaks.bed").read_text().splitlines()]
    sites = {line.split("\t")[3].replace("site", "peak"): [int(x) for x in line.split("\t")[1:3]]
             for line in (EXAMPLE / "data" / "ctcf_sites.bed").read_text().splitlines()}
    out = tmp_path / "workflow_out"
    # the shards: every peak once, in order; one finished run each
    results = namespace["results"]
    assert len(results) == 3
    assert [line for i in range(3) for line in (out / f"shard_{i}.bed").read_text().splitlines()] == \
        ["\t".join(peak) for peak in peaks]
    for i, result in enumerate(results):
        assert result.output.resolve() == out / f"shard_{i}"  # as given: relative to the working directory
        assert set(result.files) == {"summary.tsv", "motifs.bed", "motifs.meme", "consensus.meme",
                                     "consensus.png", "run.json", "execution.json"}
        assert all(path.is_file() and path.parent == result.output for path in result.files.values())
        assert result.record["status"] == "complete" and result.record["sampler"]["beta"] == 50
        assert result.record["inputs"]["n_inputs"] == 4
    # the merged table: one row per peak of the BED, in its order, with its motif call
    import pandas as pd

    merged = pd.read_csv(out / "summary.tsv", sep="\t")
    assert merged.equals(namespace["merged"])
    assert list(merged["name"]) == [peak[3] for peak in peaks]
    assert list(merged["chrom"]) == [peak[0] for peak in peaks]
    for row in merged.itertuples():
        assert row.end - row.start == 101 and row.motif_end - row.motif_start == 19
        assert row.start <= row.motif_start and row.motif_end <= row.end
        assert row.n_samples == 4 * 100  # 1000 steps, the first half discarded, 100 states kept per chain
    on_site = sum(min(row.motif_end, sites[row.name][1]) - max(row.motif_start, sites[row.name][0]) >= 10
                  for row in merged.itertuples())
    assert on_site >= 10, merged  # the calls land on the planted CTCF sites (12 of 12 when written)
    assert (merged["motif_match_name"] == "CTCF").sum() >= 8, merged  # 11 of 12 when written
    assert "peak_12" in capsys.readouterr().out  # the table it prints


def test_a_bad_option_is_a_value_error_as_the_readme_says(tmp_path):
    import kipoi_maxent

    with pytest.raises(ValueError) as error:
        kipoi_maxent.run(EXAMPLE / "models" / "ctcf_cnn", source="dir", output=tmp_path / "out", beta=-1,
                         intervals=EXAMPLE / "data" / "ctcf_peaks.bed", fasta=EXAMPLE / "data" / "ctcf_genome.fa")
    message = str(error.value)
    assert "\n" not in message
    assert f"`ValueError: {message.split(';')[0]}; …`" in README.read_text()
    assert not (tmp_path / "out").exists()
    with pytest.raises(ValueError, match=r"^unknown option\(s\) stepz; the options are the fields of "
                                         r"kipoi_maxent.RunOptions$"):
        kipoi_maxent.run(EXAMPLE / "models" / "ctcf_cnn", source="dir", output=tmp_path / "out", stepz=10,
                         intervals=EXAMPLE / "data" / "ctcf_peaks.bed", fasta=EXAMPLE / "data" / "ctcf_genome.fa")
    assert not (tmp_path / "out").exists()


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        raise SystemExit(__doc__)
    print(update_readme(), end="")
