"""The one progress printer (processors/progress.py): a live bar on a terminal with logs above it, plain lines
elsewhere."""

import io
import os
import sys
import textwrap

from processors.progress import Progress

from .e2e import run_under_a_terminal

SCRIPT = textwrap.dedent(
    """
    import logging, sys, time
    logging.basicConfig(level="WARNING", stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    from processors.progress import Progress
    bar = Progress(4, "papers")
    for done in range(5):
        bar.update(done, f"{done} scored, 0 failed")
        if done == 2:
            logging.getLogger("sciqag").warning("a dead letter: judge failed paper p-2")
            print("printed to stderr", file=sys.stderr)
        time.sleep(0.4)
    bar.close()
    print("the summary")
    """
)


def _under_a_terminal(code: str) -> str:
    env = {**os.environ, "TERM": "xterm", "COLUMNS": "100", "PYTHONPATH": os.getcwd()}
    exit_code, out = run_under_a_terminal([sys.executable, "-c", code], env, timeout_s=60)
    assert exit_code == 0, out
    return out


def test_on_a_terminal_the_bar_is_redrawn_in_place_and_logs_land_above_it_whole():
    out = _under_a_terminal(SCRIPT)
    frames = out.split("\r\x1b[2K")  # rich redraws the line in place: carriage return, erase line
    assert len([f for f in frames if "/4 papers" in f]) >= 4, out
    assert "4/4 papers (4 scored, 0 failed)" in out
    # the warning and the print are whole lines of their own, each right after an erase of the bar, before a redraw
    for text in ("WARNING sciqag: a dead letter: judge failed paper p-2", "printed to stderr"):
        (frame,) = [f for f in frames if text in f]
        assert frame.startswith(text + "\r\n"), repr(frame)
    assert out.rstrip().endswith("the summary")


def test_elsewhere_a_plain_line_when_the_numbers_change_and_one_at_the_end():
    stream = io.StringIO()
    bar = Progress(3, "papers", stream=stream, every_s=0)
    for done in (0, 0, 0, 1, 1, 2, 3):
        bar.update(done, f"{done} scored")
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split("] ")[1].rsplit(" ", 1)[0] for line in lines] == [f"{n}/3 papers ({n} scored)" for n in range(4)]
    assert "\r" not in stream.getvalue() and "\x1b" not in stream.getvalue()
