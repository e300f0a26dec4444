import os
import shutil
import socket
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "data"
PDFS = SHARED / "pdfs"
SCAN = "phd__GOST_R_7.05-2008.pdf"  # the image-only scan among the real PDFs


def shared_pdfs() -> list[Path]:
    if not PDFS.is_dir():
        pytest.skip(f"{PDFS} is not here (it is beside the project in CI and developer checkouts)")
    return sorted(PDFS.glob("*.pdf"))


@pytest.fixture
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sciqag_exe() -> str:
    exe = Path(sys.executable).parent / "sciqag"
    return str(exe) if exe.exists() else shutil.which("sciqag") or "sciqag"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch):
    """Tests decide their own settings; a developer's SCIQAG_* variables must not leak in."""
    for name in list(os.environ):
        if name.startswith("SCIQAG_") and name != "SCIQAG_CACHE_DIR":
            monkeypatch.delenv(name)
