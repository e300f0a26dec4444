"""Logging for every command: one format, third-party loggers held at WARNING, aiokafka's reconnect storms folded."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable


def configure_logging(level: str) -> None:
    # vLLM reads its level at import; keep its per-layer warnings out of a normal run
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "INFO" if level.upper() in ("INFO", "DEBUG") else "ERROR")
    os.environ.setdefault("TQDM_DISABLE", "1")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    for noisy in ("vllm", "aiokafka", "faust", "mode", "transformers", "httpx"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level.upper())))


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
