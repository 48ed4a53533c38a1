import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
sys.path.insert(0, str(Path(__file__).parent))  # tests/toy_models.py

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def ctcf_model():
    """The shipped example CTCF model (trained), resolved (the fast engines' tests share it)."""
    from kipoi_maxent.api import resolve_model

    return resolve_model(str(REPO / "example_configs" / "models" / "ctcf_cnn"), source="dir")
