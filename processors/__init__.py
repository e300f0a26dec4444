"""The stream processor: the pipeline's agents, the jobs and the `sciqag` command."""

import logging as _logging
import os as _os

# vLLM's EngineCore is a spawned process, and multiprocessing's spawn imports the parent's main module (the `sciqag`
# script, and so this package) in it before anything of vLLM. vLLM applies VLLM_LOGGING_LEVEL only once its engine
# starts; the warnings its modules log at import ("Triton is installed, but doesn't include CPU backend") would
# reach the child's stderr through logging's last-resort handler. Holding its logger at the level the parent chose
# (processors/logs.py sets the variable below --log-level DEBUG) keeps the child as quiet as the parent.
if _os.environ.get("VLLM_LOGGING_LEVEL", "").upper() in ("ERROR", "CRITICAL"):
    _logging.getLogger("vllm").setLevel(_os.environ["VLLM_LOGGING_LEVEL"].upper())
