"""Repeated aiokafka errors during a broker outage are held back, and counted when one is let through."""

import logging
import subprocess
import sys
from pathlib import Path

from processors.logs import RepeatFilter, quiet_repeated_kafka_logs


def _record(msg: str, *args, name: str = "aiokafka.conn", level: int = logging.ERROR) -> logging.LogRecord:
    return logging.LogRecord(name, level, __file__, 1, msg, args, None)


def test_a_repeated_message_passes_once_per_window_and_then_reports_how_many_were_held_back():
    now = [100.0]
    repeat = RepeatFilter(window_s=30, clock=lambda: now[0])
    passed = []
    for second in range(61):
        now[0] = 100.0 + second
        for _ in range(75):
            record = _record("Unable connect to node with id %s: %s", 111, "refused")
            if repeat.filter(record):
                passed.append(record.getMessage())
    assert len(passed) == 3  # at 0 s, 30 s and 60 s
    assert passed[0] == "Unable connect to node with id 111: refused"
    assert passed[1].endswith(f"({30 * 75 - 1} more like this in the last 30 s)")


def test_different_messages_and_levels_are_counted_apart():
    repeat = RepeatFilter(window_s=30, clock=lambda: 0.0)
    assert repeat.filter(_record("Unable to update metadata from %s", 111))
    assert repeat.filter(_record("Failed fetch messages from %s: %s", 111, "x"))
    assert repeat.filter(_record("Unable to update metadata from %s", 111, level=logging.WARNING))
    assert repeat.filter(_record("Unable to update metadata from %s", 111, name="aiokafka.client"))
    assert not repeat.filter(_record("Unable to update metadata from %s", 112))


def test_every_aiokafka_logger_gets_the_filter_once():
    quiet_repeated_kafka_logs()
    quiet_repeated_kafka_logs()
    conn = logging.getLogger("aiokafka.conn")
    assert sum(isinstance(f, RepeatFilter) for f in conn.filters) == 1
    assert not any(isinstance(f, RepeatFilter) for f in logging.getLogger("faust").filters)


def test_the_filter_needs_no_earlier_import_of_aiokafka():
    """`sciqag feed` installs it before its producer exists: the loggers are created by the function itself."""
    code = (
        "import logging, sys; from processors.logs import RepeatFilter, quiet_repeated_kafka_logs; "
        "assert 'aiokafka' not in sys.modules; quiet_repeated_kafka_logs(); "
        "print(any(isinstance(f, RepeatFilter) for f in logging.getLogger('aiokafka.conn').filters))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
