"""The streaming side's errors; the whole tree and its root are drawn in schemas/errors.py."""

from schemas.errors import SciqagError

__all__ = [
    "ConfigError",
    "EngineDead",
    "FeedConfigError",
    "KafkaAuthError",
    "LLMError",
    "RecordTooLarge",
    "SciqagError",
    "SourceError",
    "StoreError",
]


class SourceError(SciqagError):
    """A paper's PDF (or a feed document) that cannot be fetched or read; `kind` says why."""

    kind = "fetch_failed"


class RecordTooLarge(SciqagError):
    """A record this project would write is over a bound (its key, a field, the whole record against the producer's
    limit); `kind` says which: key_too_large, field_too_large, record_too_large."""

    kind = "record_too_large"


class LLMError(SciqagError):
    """The engine failed a request (not the model's output being wrong)."""

    kind = "llm_error"


class EngineDead(LLMError):
    """The engine itself is gone; every later request would fail too, so the worker must stop."""

    kind = "engine_dead"


class StoreError(SciqagError):
    """ClickHouse could not be reached or refused a statement."""

    kind = "store_error"


class ConfigError(SciqagError, ValueError):
    """Settings, flags or a config file that do not fit together."""

    kind = "config_error"


class KafkaAuthError(ConfigError):
    """The TLS/SASL settings do not fit together."""


class FeedConfigError(ConfigError):
    """A feeds.toml that cannot be used."""
