"""kipoi_maxent.plugin: built-ins are plugins; a third-party plugin adds a feature and a writer
and both show up in a real run's outputs."""
import json
from pathlib import Path

import numpy as np
import pytest

from kipoi_maxent import cli
from kipoi_maxent.features import Feature
from kipoi_maxent.plugin import impl
from kipoi_maxent.plugin.manager import describe, plugin_manager, register, unregister

EXAMPLE = Path(__file__).resolve().parent.parent / "example_configs"


class CpGPlugin:
    """Feature ``first_half_at`` (A/T count over the first half) and a writer of one line per input."""

    @impl
    def kipoi_maxent_features(self, length):
        coefficients = np.zeros((length, 4))
        coefficients[: length // 2, [0, 3]] = 1.0
        return [Feature("first_half_at", coefficients)]

    @impl
    def kipoi_maxent_writers(self):
        return [NameWriter()]


class NameWriter:
    name = "names"
    description = "names.txt: input names and their motif scores"

    def write(self, run):
        lines = [f"{row['name']}\t{row['motif_score']:.4f}\t{row['first_half_at_delta']:.4f}\n" for row in run.rows()]
        (run.outdir / "names.txt").write_text("".join(lines))
        return ["names.txt"]


@pytest.fixture
def plugin():
    register(CpGPlugin(), name="test_cpg")
    yield
    unregister("test_cpg")


def test_builtins_are_plugins():
    names = [name for name, _, _ in describe()]
    assert {"builtin.keras_backend", "builtin.pytorch_backend", "builtin.generic_backend",
            "builtin.features", "builtin.writers"} <= set(names)
    writers = [w.name for group in plugin_manager().hook.kipoi_maxent_writers() for w in group]
    assert {"summary", "motifs", "importance", "report"} <= set(writers)


def test_plugin_feature_and_writer_in_a_run(plugin, tmp_path, capsys):
    assert cli.main(["plugins"]) == 0
    listing = capsys.readouterr().out
    assert "test_cpg" in listing and "first_half_at" in listing and "names.txt" in listing

    code = cli.main(["sample", str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir",
                     "--sequences", str(EXAMPLE / "data" / "ctcf_bound_10.fa"), "--beta", "50", "--chains", "4",
                     "--steps", "200", "--thin", "10", "--features", "gc,first_half_at", "--dummies", "20",
                     "--writers", "summary,names", "--no-annotation", "--quiet", "-o", str(tmp_path)])
    assert code == 0
    header = (tmp_path / "summary.tsv").read_text().splitlines()[0].split("\t")
    assert "first_half_at_delta" in header and "gc_delta" in header
    names = (tmp_path / "names.txt").read_text().splitlines()
    assert len(names) == 10 and all(len(line.split("\t")) == 3 for line in names)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [
        "execution.json", "names.txt", "run.json", "summary.tsv"]
    assert set(json.loads((tmp_path / "run.json").read_text())["outputs"]) == {"names.txt", "summary.tsv"}
    assert json.loads((tmp_path / "run.json").read_text())["analysis"]["features"] == ["gc", "first_half_at"]


def test_unknown_writer_lists_available(tmp_path, capsys):
    code = cli.main(["sample", str(EXAMPLE / "models" / "ctcf_cnn"), "--source", "dir",
                     "--sequences", str(EXAMPLE / "data" / "ctcf_bound_10.fa"), "--writers", "nope",
                     "--quiet", "-o", str(tmp_path)])
    assert code == 2
    assert "unknown writer(s) nope; available: summary, motifs" in capsys.readouterr().err
