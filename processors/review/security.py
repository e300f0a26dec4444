"""What keeps the review app safe by default.

- Loopback only without a token: `sciqag review` refuses any other bind unless SCIQAG_REVIEW_TOKEN(_FILE) is set;
  without a token the Host header must name the loopback (a DNS-rebinding page cannot reach the app).
- With a token, every request brings it: `Authorization: Bearer <token>`, `X-Review-Token: <token>`, or the session
  cookie that `?token=<token>` on any page sets (the answer redirects to the same page without the token, so it
  stays out of the history and the Referer). The cookie holds an HMAC of the token, not the token.
- State-changing requests are POSTs: the Origin (else the Referer) must be this app's own, and the form must carry
  the CSRF token that matches the CSRF cookie (double submit; both SameSite=Strict).
- Every page has a Content-Security-Policy that allows scripts and styles from this app's /static only, so even an
  escaping mistake could not run a paper's `<script>`; the templates escape everything (Jinja2 autoescape).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from urllib.parse import urlencode

from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

SESSION_COOKIE = "sciqag_review_session"
CSRF_COOKIE = "sciqag_review_csrf"
CSRF_FIELD = "csrf"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1", "[::1]")
SAFE_METHODS = ("GET", "HEAD")
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def is_loopback(host: str) -> bool:
    if host.strip("[]") == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name other than localhost: whatever it resolves to, it is not known to be loopback
        return False


def _host_name(host_header: str) -> str:
    """The name in a Host header, without the port ([::1]:8088 -> [::1])."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.split(":", 1)[0]


def session_value(token: str) -> str:
    return hmac.new(token.encode(), b"sciqag-review-session", hashlib.sha256).hexdigest()


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class TokenRedactingFilter(logging.Filter):
    """Access-log lines (uvicorn.access) with any `token=` value in the path replaced by ***."""

    _TOKEN = re.compile(r"(token=)[^&\s]*", re.IGNORECASE)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(self._TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        return True


class ReviewSecurity(BaseHTTPMiddleware):
    """The token, the Host and Origin checks and the CSRF cookie, on every request (see the module docstring)."""

    def __init__(self, app, token: str = "") -> None:
        super().__init__(app)
        self.token = token
        self.session = session_value(token) if token else ""

    def _authenticated(self, request: Request) -> bool:
        auth = request.headers.get("authorization", "")
        given = auth[7:] if auth[:7].lower() == "bearer " else request.headers.get("x-review-token", "")
        if given and _same(given, self.token):
            return True
        cookie = request.cookies.get(SESSION_COOKIE, "")
        return bool(cookie) and _same(cookie, self.session)

    @staticmethod
    def _same_origin(request: Request) -> bool:
        own = f"{request.url.scheme}://{request.headers.get('host', '')}"
        origin = request.headers.get("origin")
        if origin is not None:
            return origin != "null" and _same(origin, own)
        referer = request.headers.get("referer", "")
        return referer == own or referer.startswith(own + "/")

    async def dispatch(self, request: Request, call_next) -> Response:
        response = await self._checked(request, call_next)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    async def _checked(self, request: Request, call_next) -> Response:
        if not self.token:
            if _host_name(request.headers.get("host", "")) not in LOOPBACK_NAMES:
                return PlainTextResponse("this review app answers on the loopback only\n", status_code=421)
        else:
            given = request.query_params.get("token")
            if given is not None and request.method in SAFE_METHODS:
                if not _same(given, self.token):
                    return PlainTextResponse("wrong token\n", status_code=401)
                rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
                response = RedirectResponse(request.url.path + (f"?{rest}" if rest else ""), status_code=303)
                response.set_cookie(SESSION_COOKIE, self.session, httponly=True, samesite="strict", path="/")
                return response
            if not self._authenticated(request):
                return PlainTextResponse(
                    "this review app needs its token: open any page with ?token=<the token> once, or send "
                    "Authorization: Bearer <the token>\n",
                    status_code=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        if request.method not in SAFE_METHODS and not self._same_origin(request):
            return PlainTextResponse("cross-site request refused (Origin/Referer is not this app)\n", status_code=403)
        csrf = request.cookies.get(CSRF_COOKIE, "")
        fresh = not csrf
        request.state.csrf = secrets.token_urlsafe(32) if fresh else csrf
        response = await call_next(request)
        if fresh:
            response.set_cookie(CSRF_COOKIE, request.state.csrf, httponly=True, samesite="strict", path="/")
        return response


def csrf_ok(request: Request, form_value: str | None) -> bool:
    """The double-submit check of a POST: the form's CSRF field equals the CSRF cookie."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and bool(form_value) and _same(str(form_value), cookie)
