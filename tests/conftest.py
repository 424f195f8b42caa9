"""Shared test set-up: one torch thread (tests often run beside other work), offline hub."""

import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from hypothesis import settings  # noqa: E402

torch.set_num_threads(1)
# Tests never write into the checkout: no .hypothesis/ example database there.
settings.register_profile("dreamline", database=None)
settings.load_profile("dreamline")

pytest_plugins = ["model_files"]  # the session-scoped `model_files` fixture: tiny models on disk
