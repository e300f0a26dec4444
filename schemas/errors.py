"""The root of the project's one exception tree.

Every error the project raises on purpose derives from `SciqagError`, whose `kind` is a short stable label: the
dead letter's `error_kind` and the metrics' `reason`. A class sets its default kind; a raise site may pass a more
precise one (`SourceError("...", kind="file_not_found")`). The message always comes first.

    SciqagError                         schemas/errors.py
    ├── RecordError                     schemas/codec.py: a payload that is not a valid record
    ├── ExtractionError                 sciqag/errors.py: a PDF that gives no usable text
    ├── ModelOutputError                sciqag/errors.py: LLM output that cannot be parsed
    ├── FeedFormatError                 sciqag/errors.py: a feed document that cannot be read
    ├── EmbeddingsUnavailable           sciqag/errors.py: no sentence-embedding model here
    ├── SourceError                     processors/errors.py: a PDF that cannot be fetched or read
    ├── RecordTooLarge                  processors/errors.py: a key, field or record over its bound
    ├── LLMError                        processors/errors.py: the engine failed a request
    │   └── EngineDead                  processors/errors.py: the engine itself is gone
    ├── StoreError                      processors/errors.py: ClickHouse away or refusing
    └── ConfigError (also ValueError)   processors/errors.py: settings or a config file that do not fit
        ├── KafkaAuthError
        └── FeedConfigError
"""

from __future__ import annotations


class SciqagError(Exception):
    kind = "error"

    def __init__(self, message: str = "", *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind:
            self.kind = kind

    def __reduce__(self):
        # keep `kind` when the error crosses a process boundary (extraction runs in a process pool)
        return (self.__class__, (str(self),), {"kind": self.kind})
