"""`sciqag review`: the review app (processors/review/) on uvicorn, over the same ClickHouse settings as the other
commands."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .common import Command, settings_from


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; any other needs a token)")
    p.add_argument("--port", type=int, default=8088, help="port (default 8088)")
    p.add_argument("--data-dir", type=Path, help="where embedded ClickHouse lives (SCIQAG_DATA_DIR)")
    p.add_argument("--log-level", help="WARNING, INFO (adds the access log, tokens redacted) or DEBUG")


def review(args) -> int:
    import uvicorn

    from ..errors import ConfigError
    from ..logs import configure_logging
    from ..review import create_app
    from ..review.security import TokenRedactingFilter, is_loopback

    settings = settings_from(args)
    if not is_loopback(args.host) and not settings.review_token:
        raise ConfigError(
            f"--host {args.host} is not the loopback: set SCIQAG_REVIEW_TOKEN (or SCIQAG_REVIEW_TOKEN_FILE) so that "
            "every request must bring the token"
        )
    configure_logging(settings.log_level_or("WARNING"))
    logging.getLogger("uvicorn.access").addFilter(TokenRedactingFilter())
    shown = f"[{args.host}]" if ":" in args.host else args.host
    how = "token required: open it once with ?token=<the token>" if settings.review_token else "loopback only, no token"
    print(f"sciqag review: http://{shown}:{args.port}/ ({how}); Ctrl-C stops it", file=sys.stderr, flush=True)
    config = uvicorn.Config(
        create_app(settings),
        host=args.host,
        port=args.port,
        log_config=None,  # our logging (configure_logging); the access log goes through the redacting filter
        log_level=settings.log_level_or("WARNING").lower(),
        access_log=True,
        server_header=False,
    )
    uvicorn.Server(config).run()
    return 0


COMMANDS = {
    "review": Command(
        _arguments,
        review,
        "A local web app to review the stored pairs: a filtered, sorted list; each pair with its scores and reasons, "
        "the paper text with the evidence highlighted, its near-duplicates; verdicts (accept, reject with a reason, "
        "an edited question and answer) stored in the verdicts table, which `export`, `dataset build` and `stats` "
        "honour. Binds to the loopback; any other address needs SCIQAG_REVIEW_TOKEN. Keys: a accept, r reject, "
        "n/j next.",
    ),
}
