"""Default Kipoi dataloader of the nucleosome example model: kipoiseq's ``SeqIntervalDl``
(BED + FASTA -> one-hot A, C, G, T) followed by the model's input normalisation.

The network was trained on one-hot input with each channel centred and scaled as a
Bernoulli variable with the base frequency p of the whole S. cerevisiae genome,
``(x - p) / sqrt(p (1 - p))`` (Finnegan & Song's nucleosome network). Plain one-hot input
(kipoiseq's own dataloader) would give meaningless predictions, so the transform is
applied here; the numbers are those of ``model_specs/nucleosome_cnn.yaml``.
"""
import numpy as np
from kipoiseq.dataloaders import SeqIntervalDl

#: p of A, C, G, T over the 16 nuclear chromosomes of S. cerevisiae S288C (12,071,326 bp).
GENOME_BASE_FREQUENCIES = np.array([0.309012, 0.191670, 0.191304, 0.308015], dtype=np.float32)
#: sqrt(p (1 - p)), rounded as in the spec.
BERNOULLI_SCALE = np.array([0.462086, 0.393615, 0.393327, 0.461673], dtype=np.float32)


class BernoulliSeqIntervalDl(SeqIntervalDl):
    """``SeqIntervalDl`` whose one-hot ``inputs`` (alphabet ACGT on the last axis) are
    centred and scaled per channel; arguments as ``SeqIntervalDl``."""

    def __getitem__(self, idx):
        if list(self.input_transform.alphabet) != list("ACGT"):
            raise ValueError(
                f"alphabet {''.join(self.input_transform.alphabet)!r}: the normalisation is in A, C, G, T "
                "order; keep the default alphabet ACGT")
        item = super().__getitem__(idx)
        item["inputs"] = (item["inputs"] - GENOME_BASE_FREQUENCIES) / BERNOULLI_SCALE
        return item
