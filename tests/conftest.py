import contextlib
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PDFS = SHARED / "pdfs"
SCAN = "phd__GOST_R_7.05-2008.pdf"  # the image-only scan among the real PDFs


def _runs_an_engine(item) -> bool:
    return "vllm_server" in getattr(item, "fixturenames", ()) or item.get_closest_marker("llm") is not None


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Tests that run a vLLM engine (the session's `vllm serve`, or an engine of their own: marker `llm`) go to one
    pytest-xdist worker, one after the other: the engine keeps both cores busy, and one `vllm serve` serves them
    all. The other tests run beside them in the second worker (`make test` runs `-n 2 --dist loadgroup`)."""
    if not config.pluginmanager.hasplugin("xdist"):  # `-p no:xdist`: the marker would be unknown, and is not needed
        return
    for item in items:
        if _runs_an_engine(item):
            item.add_marker(pytest.mark.xdist_group("llm"))


@pytest.hookimpl(trylast=True)  # after pytest-xdist named the groups
def pytest_collection_finish(session) -> None:
    """Grouping that silently stops working runs two engines at once on two cores (pytest-xdist issue #1386)."""
    if not session.config.getoption("loadgroup", default=False):
        return
    engines = [item for item in session.items if _runs_an_engine(item)]  # not by the mark: it may be missing too
    if engines and not all(item.nodeid.endswith("@llm") for item in engines):
        message = (
            "pytest-xdist did not group the tests that run a vLLM engine (--dist loadgroup): see the pytest pin "
            "in pyproject.toml"
        )
        print(f"\nERROR: {message}", file=sys.__stderr__, flush=True)  # a worker's exception reaches the run garbled
        pytest.exit(message, returncode=pytest.ExitCode.USAGE_ERROR)


# every process this test session starts inherits this mark (not SCIQAG_*: the fixture below clears those)
SESSION_MARK = "PYTEST_SCIQAG_SESSION"


def pytest_configure(config) -> None:
    os.environ.setdefault(SESSION_MARK, f"{os.getpid()}-{time.time_ns()}")  # pytest-xdist workers inherit it


def _processes_left(mark: str) -> list:
    """Processes that carry this session's mark and are still running, wherever they were reparented to: not this
    process, not a pytest-xdist worker of it (they end with it), not its own multiprocessing resource tracker."""
    import psutil

    me = os.getpid()
    left = []
    for proc in psutil.process_iter(["pid", "ppid", "cmdline", "status"]):
        info = proc.info
        if info["pid"] == me or info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            if proc.environ().get(SESSION_MARK) != mark:
                continue
        except (psutil.Error, OSError):
            continue
        cmdline = " ".join(info["cmdline"] or [])
        if info["ppid"] == me and ("execnet" in cmdline or "exec(eval(" in cmdline or "resource_tracker" in cmdline):
            continue
        left.append(proc)
    return left


@pytest.hookimpl(trylast=True)  # after the session fixtures and pytest-xdist's workers are torn down
def pytest_sessionfinish(session, exitstatus) -> None:
    """Nothing this session started may outlive it (issue 25: a spawned extraction process and its resource
    tracker were found with parent pid 1 half an hour after `make test`). The controller checks for everyone: a
    leftover is named, killed, and fails the run."""
    import psutil

    if hasattr(session.config, "workerinput"):
        return
    mark = os.environ.get(SESSION_MARK, "")
    deadline = time.monotonic() + 10  # what is being stopped right now (a reaper's last poll, a broker) may end
    left = _processes_left(mark)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _processes_left(mark)
    if not left:
        return
    lines = []
    for proc in left:
        with contextlib.suppress(psutil.Error):
            lines.append(f"  pid {proc.pid} (parent {proc.ppid()}): {' '.join(proc.cmdline())[:200]}")
            proc.kill()
    print("\nERROR: processes started by this test session were still running (killed now):", file=sys.__stderr__)
    print("\n".join(lines), file=sys.__stderr__, flush=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


def shared_pdfs() -> list[Path]:
    if not PDFS.is_dir():
        pytest.skip(f"{PDFS} is not here (it is beside the project in CI and developer checkouts)")
    return sorted(PDFS.glob("*.pdf"))


@pytest.fixture
def free_port() -> int:
    from processors.local.broker import free_port

    return free_port()


def sciqag_exe() -> str:
    exe = Path(sys.executable).parent / "sciqag"
    return str(exe) if exe.exists() else shutil.which("sciqag") or "sciqag"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    """Tests decide their own settings; a developer's SCIQAG_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("SCIQAG_") and name != "SCIQAG_CACHE_DIR":
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def vllm_server(tmp_path_factory):
    """A real `vllm serve` with the bundled model, started once for the tests that use the HTTP backend."""
    from processors.local.broker import free_port, stop_process
    from processors.local.model import prepare_bundled_model

    port = free_port()
    log_path = tmp_path_factory.mktemp("vllm") / "vllm.log"
    log = open(log_path, "w")
    cmd = [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        str(prepare_bundled_model()),
        "--served-model-name",
        "sciqag-llm",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--enforce-eager",
        "--max-model-len",
        "4096",
        "--gpu-memory-utilization",
        "0.2",
        "--structured-outputs-config",
        '{"backend": "xgrammar", "disable_any_whitespace": true}',
    ]
    env = {**os.environ, "VLLM_LOGGING_LEVEL": "WARNING"}
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        deadline = time.monotonic() + 400
        while True:
            if proc.poll() is not None:
                raise AssertionError("vllm serve exited:\n" + log_path.read_text()[-3000:])
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("vllm serve did not come up:\n" + log_path.read_text()[-3000:]) from None
                time.sleep(2)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop_process(proc, 60)
        log.close()
