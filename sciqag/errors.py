"""One exception tree for the domain; `kind` is a short stable label used in metrics and the DLQ."""


class SciqagError(Exception):
    kind = "error"

    def __init__(self, message: str, *, kind: str | None = None) -> None:
        super().__init__(message)
        if kind:
            self.kind = kind

    def __reduce__(self):
        # keep `kind` when the error crosses a process boundary (extraction runs in a process pool)
        return (self.__class__, (str(self),), {"kind": self.kind})


class ExtractionError(SciqagError):
    kind = "extraction_failed"


class ModelOutputError(SciqagError):
    """The model's output could not be parsed or violates the expected shape."""

    kind = "unparseable_model_output"
