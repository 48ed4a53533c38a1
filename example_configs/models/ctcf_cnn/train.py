"""Train the shipped CTCF example CNN (Finnegan & Song's CTCF architecture, METHOD.md §9).

Synthetic, self-contained and deterministic:

* positives: 101-bp i.i.d. uniform (50 % GC) background with one instance of the
  JASPAR CTCF matrix MA0139 (release pinned to JASPAR2024, i.e. MA0139.2, 15 bp),
  each position sampled from the matrix column probabilities (+1 pseudocount
  per cell), placed at a uniformly random position where it fits, reverse
  complemented half of the time;
* negatives: one Altschul-Erickson dinucleotide shuffle of each positive;
* independent train / validation / held-out test splits (negatives are shuffles
  of positives of the same split only).

Model (Keras 3 functional API; input (101, 4), one-hot A, C, G, T):
Conv1D(64, 24, relu) -> Flatten -> Dense(100, relu) -> Dropout(0.1) -> Dense(2, softmax).
Output index 1 = P(CTCF-bound). Trained as in the paper with Adadelta, 20 epochs,
batch 80. Keras 3's Adadelta default learning rate is 0.001 (Keras 1, which the
paper used, had lr=1.0), so the Keras-1 settings learning_rate=1.0, rho=0.95 are
set explicitly. The network overfits the 30k training set after a few epochs
(training accuracy -> 1, validation loss rising), so all 20 epochs are run but
the weights of the epoch with the lowest validation loss are kept (a standard
checkpoint-on-best; the paper does not say how it picked its final weights).

Outputs (next to this script): ``model.keras`` (saved uncompiled, so no optimizer
state ships) and ``training_report.json`` (held-out AUC, sizes, settings, versions).

Run:  python example_configs/models/ctcf_cnn/train.py
"""
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
SEED = 20240501
SEQ_LEN = 101
N_POS = {"train": 15000, "valid": 2500, "test": 2500}  # negatives: same number
EPOCHS = 20
BATCH_SIZE = 80
OPTIMIZER = {"name": "Adadelta", "learning_rate": 1.0, "rho": 0.95, "epsilon": 1e-7}


def _load_ctcf_motif():
    path = HERE.parent.parent / "ctcf_motif.py"
    spec = importlib.util.spec_from_file_location("ctcf_motif", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


cm = _load_ctcf_motif()


def make_split(n_pos, probs, rng):
    """Return (seqs, labels, motif_starts) with n_pos positives then n_pos shuffled negatives."""
    L = len(probs)
    pos, starts = [], []
    for _ in range(n_pos):
        bg = cm.random_sequence(SEQ_LEN, rng)
        site = cm.sample_instance(probs, rng)
        if rng.random() < 0.5:
            site = cm.reverse_complement(site)
        s = int(rng.integers(0, SEQ_LEN - L + 1))
        pos.append(bg[:s] + site + bg[s + L:])
        starts.append(s)
    neg = [cm.dinucleotide_shuffle(s, rng) for s in pos]
    labels = np.r_[np.ones(n_pos, int), np.zeros(n_pos, int)]
    return pos + neg, labels, np.array(starts)


def roc_auc(labels, scores):
    """Mann-Whitney AUC with average ranks for ties."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=float)
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=float)
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    n1, n0 = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2.0) / (n1 * n0))


def build_model(keras):
    inp = keras.Input(shape=(SEQ_LEN, 4), name="seq")
    x = keras.layers.Conv1D(64, 24, strides=1, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(100, activation="relu", name="dense_hidden")(x)
    x = keras.layers.Dropout(0.1, name="dropout")(x)
    out = keras.layers.Dense(2, activation="softmax", name="output")(x)
    return keras.Model(inp, out, name="ctcf_cnn")


def main():
    t0 = time.perf_counter()
    rng = np.random.default_rng(SEED)
    counts, matrix_id = cm.load_ctcf_counts(cm.JASPAR_RELEASE, cm.CTCF_MATRIX_ID)
    probs = cm.column_probabilities(counts, cm.PSEUDOCOUNT)
    data = {}
    for split, n in N_POS.items():
        seqs, y, _ = make_split(n, probs, rng)
        data[split] = (cm.one_hot(seqs), y)
    t_data = time.perf_counter() - t0
    print(f"data: {', '.join(f'{k}={len(v[1])}' for k, v in data.items())} ({t_data:.1f} s)")

    import tensorflow as tf
    import keras

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    model = build_model(keras)
    opt = keras.optimizers.Adadelta(learning_rate=OPTIMIZER["learning_rate"],
                                    rho=OPTIMIZER["rho"], epsilon=OPTIMIZER["epsilon"])
    model.compile(optimizer=opt, loss="categorical_crossentropy", metrics=["accuracy"])

    def onehot_labels(y):
        return np.eye(2, dtype=np.float32)[y]

    class KeepBest(keras.callbacks.Callback):
        """Remember the weights of the epoch with the lowest validation loss."""

        def __init__(self):
            super().__init__()
            self.best, self.best_epoch, self.weights = np.inf, None, None

        def on_epoch_end(self, epoch, logs=None):
            if logs["val_loss"] < self.best:
                self.best, self.best_epoch = logs["val_loss"], epoch + 1
                self.weights = self.model.get_weights()

    keep_best = KeepBest()
    x_tr, y_tr = data["train"]
    x_va, y_va = data["valid"]
    x_te, y_te = data["test"]
    t1 = time.perf_counter()
    hist = model.fit(x_tr, onehot_labels(y_tr), validation_data=(x_va, onehot_labels(y_va)),
                     epochs=EPOCHS, batch_size=BATCH_SIZE, shuffle=True, verbose=2,
                     callbacks=[keep_best])
    t_fit = time.perf_counter() - t1
    p_last = model.predict(x_te, batch_size=1000, verbose=0)[:, 1]
    auc_te_last = roc_auc(y_te, p_last)
    model.set_weights(keep_best.weights)
    print(f"kept epoch {keep_best.best_epoch} (val_loss {keep_best.best:.4f}); "
          f"test AUC at epoch {EPOCHS} would be {auc_te_last:.4f}")

    p_va = model.predict(x_va, batch_size=1000, verbose=0)[:, 1]
    p_te = model.predict(x_te, batch_size=1000, verbose=0)[:, 1]
    auc_va, auc_te = roc_auc(y_va, p_va), roc_auc(y_te, p_te)
    acc_te = float(((p_te > 0.5) == y_te.astype(bool)).mean())
    print(f"validation AUC {auc_va:.4f}; held-out test AUC {auc_te:.4f}, accuracy {acc_te:.4f}; "
          f"fit {t_fit:.1f} s")

    # ship an uncompiled copy (same weights): small file, no optimizer state
    export = build_model(keras)
    export.set_weights(model.get_weights())
    out_path = HERE / "model.keras"
    export.save(out_path)

    import pyjaspar
    report = {
        "test_auc": round(auc_te, 6),
        "test_accuracy": round(acc_te, 6),
        "valid_auc": round(auc_va, 6),
        "sizes": {k: {"positives": n, "negatives": n, "total": 2 * n} for k, n in N_POS.items()},
        "sequence_length": SEQ_LEN,
        "epochs": EPOCHS,
        "kept_epoch": keep_best.best_epoch,
        "kept_epoch_rule": "lowest validation loss over all epochs",
        "test_auc_last_epoch": round(auc_te_last, 6),
        "batch_size": BATCH_SIZE,
        "optimizer": OPTIMIZER,
        "loss": "categorical_crossentropy",
        "seed": SEED,
        "jaspar_release": cm.JASPAR_RELEASE,
        "jaspar_matrix": matrix_id,
        "pseudocount": cm.PSEUDOCOUNT,
        "negatives": "Altschul-Erickson dinucleotide shuffle of each positive",
        "one_hot_order": "ACGT",
        "output": "softmax over [unbound, bound]; index 1 = P(CTCF-bound)",
        "history": {k: [round(float(v), 5) for v in vals] for k, vals in hist.history.items()},
        "time_seconds": {"data": round(t_data, 1), "fit": round(t_fit, 1),
                         "total": round(time.perf_counter() - t0, 1)},
        "cpu_threads": os.cpu_count(),
        "model_file": out_path.name,
        "model_file_bytes": out_path.stat().st_size,
        "n_params": int(export.count_params()),
        "versions": {"python": platform.python_version(), "numpy": np.__version__,
                     "tensorflow": tf.__version__, "keras": keras.__version__,
                     "pyjaspar": getattr(pyjaspar, "__version__", "unknown")},
    }
    (HERE / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_path} ({report['model_file_bytes']} bytes) and training_report.json")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
