"""Reading a paper's PDF from where PaperSubmitted says it is: inline bytes, a file under the
configured roots, or http(s) with a size limit and a timeout."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urljoin, urlparse

from schemas import PaperSubmitted

from .errors import SourceError
from .settings import Settings


def path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise SourceError(kind="unsupported_uri", message=f"not a file location: {uri}")


def _inside(path: Path, roots: list[str]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(r).resolve()) for r in roots)


def read_file(uri: str, settings: Settings) -> bytes:
    path = path_from_uri(uri)
    roots = settings.file_roots or [os.getcwd()]
    if not _inside(path, roots):
        raise SourceError(
            kind="file_outside_roots", message=f"{path} is outside the allowed file roots ({', '.join(roots)})"
        )
    try:
        size = path.stat().st_size
        if size > settings.max_pdf_bytes:
            raise SourceError(
                kind="too_large", message=f"{path} is {size} bytes, over the limit of {settings.max_pdf_bytes}"
            )
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(kind="file_not_found", message=f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise SourceError(kind="not_a_file", message=f"{path} is a directory") from exc
    except PermissionError as exc:
        raise SourceError(kind="file_unreadable", message=f"cannot read {path}: permission denied") from exc


def _public_host(host: str) -> bool:
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    for info in infos:
        addr = ipaddress.ip_address(info[4][0])
        if addr.is_private or addr.is_loopback or addr.is_link_local or addr.is_reserved or addr.is_multicast:
            return False
    return True


@dataclass
class HttpResponse:
    url: str  # after redirects
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


async def check_host(url: str, allowed_hosts: frozenset[str] | set[str]) -> None:
    """SSRF rule: http(s) only, and to public addresses unless the host is explicitly allowed."""
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https"):
        raise SourceError(kind="unsupported_uri", message=f"only http(s) URLs are fetched: {url}")
    host = parsed.hostname or ""
    if host not in allowed_hosts and not await asyncio.to_thread(_public_host, host):
        raise SourceError(
            kind="host_not_allowed",
            message=f"{host} resolves to a private, loopback or link-local address "
            "(allow it with SCIQAG_ALLOWED_HOSTS or a feed's allow_hosts)",
        )


async def http_get(
    url: str,
    *,
    allowed_hosts: frozenset[str] | set[str],
    timeout_s: float,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    session=None,
    max_redirects: int = 5,
) -> HttpResponse:
    """GET with a size limit and a timeout; redirects are followed by hand so every hop passes the host rule."""
    import aiohttp

    own = session is None
    if own:
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s))
    try:
        for _ in range(max_redirects + 1):
            await check_host(url, allowed_hosts)
            async with session.get(
                url, headers=headers or {}, allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as resp:
                if resp.status in (301, 302, 303, 307, 308) and resp.headers.get("Location"):
                    url = urljoin(url, resp.headers["Location"])
                    continue
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > max_bytes:
                        raise SourceError(kind="too_large", message=f"{url} is over the limit of {max_bytes} bytes")
                return HttpResponse(url, resp.status, {k.lower(): v for k, v in resp.headers.items()}, bytes(body))
        raise SourceError(kind="too_many_redirects", message=f"more than {max_redirects} redirects from {url}")
    except TimeoutError as exc:
        raise SourceError(kind="fetch_timeout", message=f"GET {url} took longer than {timeout_s:.0f} s") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(kind="fetch_failed", message=f"GET {url} failed: {exc}") from exc
    finally:
        if own:
            await session.close()


async def fetch_http(uri: str, settings: Settings) -> bytes:
    resp = await http_get(
        uri,
        allowed_hosts=frozenset(settings.allowed_hosts),
        timeout_s=settings.fetch_timeout_s,
        max_bytes=settings.max_pdf_bytes,
    )
    if resp.status != 200:
        raise SourceError(kind="http_error", message=f"GET {uri} answered {resp.status}")
    return resp.body


async def load_pdf(paper: PaperSubmitted, settings: Settings) -> bytes:
    if paper.pdf_bytes is not None:
        if len(paper.pdf_bytes) > settings.max_inline_bytes:
            raise SourceError(
                kind="too_large",
                message=f"inline PDF of {len(paper.pdf_bytes)} bytes is over {settings.max_inline_bytes}",
            )
        return paper.pdf_bytes
    if not paper.pdf_uri:
        raise SourceError(kind="no_pdf", message="the record has neither pdf_uri nor pdf_bytes")
    scheme = urlparse(paper.pdf_uri).scheme
    if scheme in ("http", "https"):
        return await fetch_http(paper.pdf_uri, settings)
    if scheme in ("file", ""):
        return await asyncio.to_thread(read_file, paper.pdf_uri, settings)
    raise SourceError(kind="unsupported_uri", message=f"unsupported PDF location scheme {scheme!r}: {paper.pdf_uri}")
