"""Reading a paper's PDF from where PaperSubmitted says it is: inline bytes, a file under the
configured roots, or http(s) with a size limit and a timeout."""
from __future__ import annotations

import asyncio
import ipaddress
import os
import socket
from pathlib import Path
from urllib.parse import unquote, urlparse

from schemas import PaperSubmitted

from .settings import Settings


class SourceError(Exception):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def path_from_uri(uri: str) -> Path:
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme == "":
        return Path(uri)
    raise SourceError("unsupported_uri", f"not a file location: {uri}")


def _inside(path: Path, roots: list[str]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(r).resolve()) for r in roots)


def read_file(uri: str, settings: Settings) -> bytes:
    path = path_from_uri(uri)
    roots = settings.file_roots or [os.getcwd()]
    if not _inside(path, roots):
        raise SourceError("file_outside_roots", f"{path} is outside the allowed file roots ({', '.join(roots)})")
    try:
        size = path.stat().st_size
        if size > settings.max_pdf_bytes:
            raise SourceError("too_large", f"{path} is {size} bytes, over the limit of {settings.max_pdf_bytes}")
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError("file_not_found", f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise SourceError("not_a_file", f"{path} is a directory") from exc
    except PermissionError as exc:
        raise SourceError("file_unreadable", f"cannot read {path}: permission denied") from exc


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


async def fetch_http(uri: str, settings: Settings, allowed_hosts: frozenset[str] = frozenset()) -> bytes:
    import aiohttp

    host = urlparse(uri).hostname or ""
    if host not in allowed_hosts and not await asyncio.to_thread(_public_host, host):
        raise SourceError("host_not_allowed", f"{host} resolves to a private, loopback or link-local address")
    timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout_s)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            async with session.get(uri, allow_redirects=False) as resp:
                if resp.status != 200:
                    raise SourceError("http_error", f"GET {uri} answered {resp.status}")
                body = bytearray()
                async for chunk in resp.content.iter_chunked(65536):
                    body += chunk
                    if len(body) > settings.max_pdf_bytes:
                        raise SourceError("too_large", f"{uri} is over the limit of {settings.max_pdf_bytes} bytes")
                return bytes(body)
    except asyncio.TimeoutError as exc:
        raise SourceError("fetch_timeout", f"GET {uri} took longer than {settings.fetch_timeout_s:.0f} s") from exc
    except aiohttp.ClientError as exc:
        raise SourceError("fetch_failed", f"GET {uri} failed: {exc}") from exc


async def load_pdf(paper: PaperSubmitted, settings: Settings) -> bytes:
    if paper.pdf_bytes is not None:
        if len(paper.pdf_bytes) > settings.max_inline_bytes:
            raise SourceError("too_large", f"inline PDF of {len(paper.pdf_bytes)} bytes is over {settings.max_inline_bytes}")
        return paper.pdf_bytes
    if not paper.pdf_uri:
        raise SourceError("no_pdf", "the record has neither pdf_uri nor pdf_bytes")
    scheme = urlparse(paper.pdf_uri).scheme
    if scheme in ("http", "https"):
        return await fetch_http(paper.pdf_uri, settings)
    if scheme in ("file", ""):
        return await asyncio.to_thread(read_file, paper.pdf_uri, settings)
    raise SourceError("unsupported_uri", f"unsupported PDF location scheme {scheme!r}: {paper.pdf_uri}")
