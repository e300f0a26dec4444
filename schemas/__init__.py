"""Wire records, topic names, ClickHouse DDL and JSON Schema export. Imports nothing of the project."""

from .codec import RecordError, decode, encode
from .records import (
    RACAR_DIMENSIONS,
    SCHEMA_VERSION,
    DeadLetter,
    DimensionScore,
    Evidence,
    ExtractionSummary,
    PaperExtracted,
    PaperQuality,
    PaperRef,
    PaperSubmitted,
    QAGenerated,
    QAPair,
    QAScored,
    QAScoredCheck,
    Racar,
    Section,
)

__all__ = [
    "RACAR_DIMENSIONS",
    "SCHEMA_VERSION",
    "DeadLetter",
    "DimensionScore",
    "Evidence",
    "ExtractionSummary",
    "PaperExtracted",
    "PaperQuality",
    "PaperRef",
    "PaperSubmitted",
    "QAGenerated",
    "QAPair",
    "QAScored",
    "QAScoredCheck",
    "Racar",
    "RecordError",
    "Section",
    "decode",
    "encode",
]
