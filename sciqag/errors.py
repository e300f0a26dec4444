"""The domain's errors; the tree and its root are drawn in schemas/errors.py."""

from schemas.errors import SciqagError

__all__ = ["EmbeddingsUnavailable", "ExtractionError", "FeedFormatError", "ModelOutputError", "SciqagError"]


class ExtractionError(SciqagError):
    kind = "extraction_failed"


class ModelOutputError(SciqagError):
    """The model's output could not be parsed or violates the expected shape."""

    kind = "unparseable_model_output"


class FeedFormatError(SciqagError):
    """A feed document that is not what its source kind promises (bad XML or JSON, an error response)."""

    kind = "malformed_feed"


class EmbeddingsUnavailable(SciqagError):
    """sentence-transformers or the bundled embedding model is not installed."""

    kind = "embeddings_unavailable"
