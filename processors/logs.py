"""Logging for every command: one format, third-party loggers held at WARNING, aiokafka's reconnect storms folded."""

from __future__ import annotations

import logging
import os
import sys
import time
import warnings
from collections.abc import Callable

# third-party loggers held at ERROR below DEBUG (libraries' own chatter: engine start-up, model loading, hub access)
THIRD_PARTY_LOGGERS = (
    "vllm",
    "transformers",
    "torch",
    "huggingface_hub",
    "sentence_transformers",
    "triton",
    "httpx",
    "httpcore",
    "urllib3",
    "filelock",
    "numba",
)
# our infrastructure's clients: their warnings (a broker down, a rebalance) matter to an operator
SERVICE_LOGGERS = ("aiokafka", "faust", "mode")
# environment for the libraries that read their verbosity at import, and for the child processes that inherit it
# (vLLM's EngineCore is a spawned process: none of this process's logging set-up reaches it)
QUIET_ENV = {
    "VLLM_LOGGING_LEVEL": "ERROR",  # vLLM's own logger (it applies it when the engine starts, here and in EngineCore)
    "TQDM_DISABLE": "1",  # tqdm bars of other libraries (ours is drawn by rich: processors/progress.py)
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "TRANSFORMERS_VERBOSITY": "error",
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "TORCH_CPP_LOG_LEVEL": "ERROR",  # c10's C++ warnings ("NUMA binding: Using MEMBIND policy ...")
    # the `warnings` module in child processes (torch's FutureWarnings in vLLM's EngineCore)
    "PYTHONWARNINGS": "ignore::FutureWarning,ignore::DeprecationWarning,ignore::UserWarning",
}
OUR_MODULES = r"(processors|sciqag|schemas|benchmarks|tests)(\.|$)"

_quiet = True


def third_party_quiet() -> bool:
    """Whether libraries' warnings and loading bars are hidden (every level but DEBUG)."""
    return _quiet


def configure_logging(level: str) -> None:
    """One format for every command. Below DEBUG the libraries are quiet: their warnings (the `warnings` module and
    their loggers below ERROR), their loading bars and their child processes' chatter are hidden; ours are not.
    Call it before vLLM, torch or transformers are imported (they read their settings from the environment)."""
    global _quiet
    level = level.upper()
    _quiet = level != "DEBUG"
    if _quiet:
        for name, value in QUIET_ENV.items():
            os.environ.setdefault(name, value)
        warnings.filterwarnings("ignore")
        warnings.filterwarnings("default", module=OUR_MODULES)  # inserted in front: ours are still shown
    else:
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "DEBUG")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    for name in THIRD_PARTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR if _quiet else logging.DEBUG)
    for name in SERVICE_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLevelName(level)))


class RepeatFilter(logging.Filter):
    """Lets a message through once per `window_s` seconds per (logger, level, format string).

    aiokafka logs every failed reconnect to a broker that is down at ERROR level: ~75 lines a second
    (measured with the broker cut off for 20 s). The first one shows at once; the rest are counted, and
    the next one let through says how many were held back.
    """

    def __init__(self, window_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self.window_s, self.clock = window_s, clock
        self._last: dict[tuple, tuple[float, int]] = {}  # key -> (when last let through, held back since)

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, record.levelno, str(record.msg))
        now = self.clock()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.window_s:
            self._last[key] = (last[0], last[1] + 1)
            return False
        if last is not None and last[1]:
            record.msg = f"{record.msg} ({last[1]} more like this in the last {now - last[0]:.0f} s)"
        self._last[key] = (now, 0)
        return True


def quiet_repeated_kafka_logs(window_s: float = 30.0) -> None:
    """Attach one RepeatFilter to every aiokafka logger (a filter on a parent does not see its children's records)."""
    import aiokafka  # noqa: F401  (imports its modules, which create the loggers)

    repeat = RepeatFilter(window_s)
    for name in list(logging.Logger.manager.loggerDict):
        if name == "aiokafka" or name.startswith("aiokafka."):
            logger = logging.getLogger(name)
            if not any(isinstance(f, RepeatFilter) for f in logger.filters):
                logger.addFilter(repeat)
