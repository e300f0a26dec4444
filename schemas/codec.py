"""JSON encode/decode at the topic boundary, with one reused encoder and decoder per type."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from .errors import SciqagError
from .records import RECORD_TYPES, SCHEMA_VERSION, QAScored, QAScoredCheck

T = TypeVar("T", bound=msgspec.Struct)

_encoder = msgspec.json.Encoder()
_decoders: dict[type, msgspec.json.Decoder] = {
    t: msgspec.json.Decoder(t) for t in (*RECORD_TYPES.values(), QAScoredCheck)
}
# types read as a view of another record: errors name the record
_RECORD_NAMES: dict[type, str] = {QAScoredCheck: QAScored.__name__}


class RecordError(SciqagError, ValueError):
    """A payload that is not a valid record of the expected type and version."""

    kind = "schema_violation"


def encode(record: msgspec.Struct) -> bytes:
    return _encoder.encode(record)


def decode(payload: bytes | None, record_type: type[T]) -> T:
    """Decode and validate `payload`; raise RecordError with a kind and a readable reason."""
    name = _RECORD_NAMES.get(record_type, record_type.__name__)
    if not payload:
        raise RecordError(kind="empty_payload", message=f"empty message where a {name} was expected")
    try:
        record = _decoders[record_type].decode(payload)
    except msgspec.ValidationError as exc:
        raise RecordError(kind="schema_violation", message=f"not a valid {name}: {exc}") from exc
    except msgspec.DecodeError as exc:
        raise RecordError(kind="undecodable", message=f"not JSON: {exc}") from exc
    except RecursionError:
        # msgspec stops at the interpreter's recursion limit (~1,000 levels), also inside unknown fields it skips
        raise RecordError(
            kind="too_deeply_nested", message=f"not a {name}: JSON nested deeper than this decoder reads"
        ) from None
    except Exception as exc:  # anything else a hostile payload can provoke: still a bad record, never a crash
        raise RecordError(kind="undecodable", message=f"not a {name}: {type(exc).__name__}: {str(exc)[:200]}") from exc
    version = getattr(record, "schema_version", None)
    if version != SCHEMA_VERSION:
        raise RecordError(
            kind="unsupported_schema_version",
            message=f"{name} schema_version {version} is not supported (this build reads {SCHEMA_VERSION})",
        )
    return record
