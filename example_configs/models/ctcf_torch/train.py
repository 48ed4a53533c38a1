"""Train the PyTorch CTCF example (``model.py``) on the Keras example's synthetic data.

The data are exactly those of ``../ctcf_cnn/train.py`` (imported from it, same seed, same
splits): 101-bp uniform backgrounds with one sampled JASPAR2024 MA0139.2 (CTCF) instance
(positives) and their dinucleotide shuffles (negatives). Training follows the Keras example
(Adadelta with Keras-1 settings learning_rate 1.0, rho 0.95, epsilon 1e-7; batch 80;
cross-entropy on the logits), for fewer epochs: the Keras run's validation loss is lowest at
epoch 4 and rises after, so EPOCHS epochs are run and the weights of the epoch with the lowest
validation loss are kept. Seeded, deterministic algorithms.

Outputs (next to this script): ``model.pth`` (the ``state_dict``, plain tensors: loads with
``torch.load``'s default ``weights_only=True``, which Kipoi 0.8.6 calls) and
``training_report.json`` (held-out AUC, settings, versions).

Run:  python example_configs/models/ctcf_torch/train.py
"""
import copy
import importlib.util
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
EPOCHS = 5


def _load_by_path(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


keras_example = _load_by_path("ctcf_cnn_train", HERE.parent / "ctcf_cnn" / "train.py")
network = _load_by_path("ctcf_torch_model", HERE / "model.py")


def make_data():
    """The Keras example's splits: {split: (x (n, 4, 101) float32, labels (n,) int)}."""
    cm = keras_example.cm
    rng = np.random.default_rng(keras_example.SEED)
    counts, matrix_id = cm.load_ctcf_counts(cm.JASPAR_RELEASE, cm.CTCF_MATRIX_ID)
    probs = cm.column_probabilities(counts, cm.PSEUDOCOUNT)
    data = {}
    for split, n in keras_example.N_POS.items():  # same order and rng as the Keras script
        seqs, labels, _ = keras_example.make_split(n, probs, rng)
        data[split] = (np.ascontiguousarray(cm.one_hot(seqs).transpose(0, 2, 1), dtype=np.float32), labels)
    return data, matrix_id


def predict_bound(model, x):
    """P(CTCF-bound) (n,) of inputs (n, 4, 101), eval mode."""
    model.eval()
    with torch.inference_mode():
        return np.concatenate([model(torch.from_numpy(x[i:i + 1000]))[:, 1].numpy() for i in range(0, len(x), 1000)])


def mean_loss(logits_model, x, labels):
    logits_model.eval()
    with torch.inference_mode():
        logits = torch.cat([logits_model(torch.from_numpy(x[i:i + 1000])) for i in range(0, len(x), 1000)])
        return float(torch.nn.functional.cross_entropy(logits, torch.from_numpy(labels)))


def main():
    t0 = time.perf_counter()
    data, matrix_id = make_data()
    t_data = time.perf_counter() - t0
    print(f"data: {', '.join(f'{k}={len(v[1])}' for k, v in data.items())} ({t_data:.1f} s)")

    torch.manual_seed(keras_example.SEED)
    torch.use_deterministic_algorithms(True)
    model = network.CtcfCnn()
    logits_model = torch.nn.Sequential(*list(model.children())[:-1])  # same modules, no softmax
    settings = keras_example.OPTIMIZER
    optimizer = torch.optim.Adadelta(model.parameters(), lr=settings["learning_rate"], rho=settings["rho"],
                                     eps=settings["epsilon"])
    x_tr, y_tr = data["train"]
    x_va, y_va = data["valid"]
    x_te, y_te = data["test"]
    x_train, y_train = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    shuffle = torch.Generator().manual_seed(keras_example.SEED)
    history = {"loss": [], "val_loss": [], "val_auc": []}
    best = (np.inf, None, None)  # (validation loss, epoch, state_dict)
    t1 = time.perf_counter()
    for epoch in range(1, EPOCHS + 1):
        logits_model.train()
        order = torch.randperm(len(x_train), generator=shuffle)
        total = 0.0
        for start in range(0, len(order), keras_example.BATCH_SIZE):
            batch = order[start:start + keras_example.BATCH_SIZE]
            optimizer.zero_grad()
            loss = torch.nn.functional.cross_entropy(logits_model(x_train[batch]), y_train[batch])
            loss.backward()
            optimizer.step()
            total += float(loss) * len(batch)
        val_loss = mean_loss(logits_model, x_va, y_va)
        val_auc = keras_example.roc_auc(y_va, predict_bound(model, x_va))
        history["loss"].append(round(total / len(order), 5))
        history["val_loss"].append(round(val_loss, 5))
        history["val_auc"].append(round(val_auc, 5))
        print(f"epoch {epoch}: loss {total / len(order):.4f}, val_loss {val_loss:.4f}, val AUC {val_auc:.4f} "
              f"({time.perf_counter() - t1:.0f} s)")
        if val_loss < best[0]:
            best = (val_loss, epoch, copy.deepcopy(model.state_dict()))
    t_fit = time.perf_counter() - t1
    model.load_state_dict(best[2])

    auc_va = keras_example.roc_auc(y_va, predict_bound(model, x_va))
    p_te = predict_bound(model, x_te)
    auc_te = keras_example.roc_auc(y_te, p_te)
    acc_te = float(((p_te > 0.5) == y_te.astype(bool)).mean())
    print(f"kept epoch {best[1]}; validation AUC {auc_va:.4f}; held-out test AUC {auc_te:.4f}, "
          f"accuracy {acc_te:.4f}; fit {t_fit:.1f} s")

    out_path = HERE / "model.pth"
    torch.save(model.state_dict(), out_path)
    report = {
        "test_auc": round(auc_te, 6),
        "test_accuracy": round(acc_te, 6),
        "valid_auc": round(auc_va, 6),
        "data": "the Keras example's splits (../ctcf_cnn/train.py make_split, same seed)",
        "sizes": {k: {"positives": n, "negatives": n, "total": 2 * n} for k, n in keras_example.N_POS.items()},
        "sequence_length": network.SEQ_LEN,
        "input_layout": "(4, L): one-hot channels first, A, C, G, T",
        "epochs": EPOCHS,
        "kept_epoch": best[1],
        "kept_epoch_rule": "lowest validation loss over all epochs",
        "batch_size": keras_example.BATCH_SIZE,
        "optimizer": settings,
        "loss": "cross-entropy on the logits (the model's softmax left out in training)",
        "seed": keras_example.SEED,
        "jaspar_matrix": matrix_id,
        "output": "softmax over [unbound, bound]; index 1 = P(CTCF-bound)",
        "history": history,
        "time_seconds": {"data": round(t_data, 1), "fit": round(t_fit, 1),
                         "total": round(time.perf_counter() - t0, 1)},
        "cpu_threads": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "model_file": out_path.name,
        "model_file_bytes": out_path.stat().st_size,
        "n_params": int(sum(p.numel() for p in model.parameters())),
        "versions": {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__},
    }
    (HERE / "training_report.json").write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out_path} ({report['model_file_bytes']} bytes) and training_report.json")
    return report


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
