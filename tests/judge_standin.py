"""An OpenAI-compatible stand-in for a judge's LLM server: valid RACAR answers at once, and it exits (as a killed
server would) after a given number of answers. `python -m tests.judge_standin PORT MAX_ANSWERS`."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

DIMENSIONS = ("relevance", "agnosticism", "completeness", "accuracy", "reasonableness")
MODEL = "standin-judge"


class Handler(BaseHTTPRequestHandler):
    answered = 0
    limit = 0
    lock = threading.Lock()

    def log_message(self, *args) -> None:
        pass

    def _send(self, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def do_GET(self) -> None:
        self._send({"object": "list", "data": [{"id": MODEL, "object": "model", "max_model_len": 8192}]})

    def do_POST(self) -> None:
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        prompt = json.dumps(request["messages"])
        digest = hashlib.sha256(prompt.encode()).digest()
        scores = {
            d: {"score": 1 + digest[i] % 3, "reason": f"stand-in reason for {d}"} for i, d in enumerate(DIMENSIONS)
        }
        self._send(
            {
                "choices": [
                    {
                        "message": {"content": json.dumps({**scores, "correct_options": [1 + digest[9] % 4]})},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": len(prompt) // 4, "completion_tokens": 60},
            }
        )
        with Handler.lock:
            Handler.answered += 1
            if Handler.limit and Handler.answered >= Handler.limit:
                os._exit(0)  # gone, as a killed server is: later requests find nobody listening


if __name__ == "__main__":
    port, Handler.limit = int(sys.argv[1]), int(sys.argv[2])
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
