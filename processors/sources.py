"""Reading a paper's PDF from where PaperSubmitted says it is: inline bytes, a regular file under the configured
roots, or http(s) with a size limit and one total deadline, to public addresses only (the SSRF rule below)."""

from __future__ import annotations

import asyncio
import contextvars
import ipaddress
import os
import socket
import stat
import weakref
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import ParseResult, unquote, urljoin, urlparse

from schemas import PaperSubmitted

from .errors import SourceError
from .settings import Settings


def _short(uri: str) -> str:
    return uri if len(uri) <= 300 else f"{uri[:300]}...[{len(uri)} chars]"


def parse_uri(uri: str) -> ParseResult:
    """urlparse, with what it refuses (`http://[1.1.1.1]/`, a bad port) as an `unsupported_uri` SourceError."""
    try:
        parsed = urlparse(uri)
        parsed.port  # noqa: B018 -- raises for a port that is not a number or out of range
        return parsed
    except ValueError as exc:
        raise SourceError(kind="unsupported_uri", message=f"not a usable location ({exc}): {_short(uri)}") from None


def path_from_uri(uri: str) -> Path:
    parsed = parse_uri(uri)
    if parsed.scheme == "file":
        path = unquote(parsed.path)
    elif parsed.scheme == "":
        path = uri
    else:
        raise SourceError(kind="unsupported_uri", message=f"not a file location: {_short(uri)}")
    if "\x00" in path:
        raise SourceError(kind="bad_path", message=f"the file path holds a NUL byte: {_short(uri)!r}")
    return Path(path)


def _inside(path: Path, roots: list[str]) -> bool:
    resolved = path.resolve()
    return any(resolved.is_relative_to(Path(r).resolve()) for r in roots)


def _regular_file(path: Path, mode: int) -> None:
    if stat.S_ISDIR(mode):
        raise SourceError(kind="not_a_file", message=f"{path} is a directory")
    if not stat.S_ISREG(mode):
        # a FIFO would block open() and read() until someone writes to it; a device never ends
        raise SourceError(kind="not_a_regular_file", message=f"{path} is not a regular file (a FIFO, socket or device)")


def read_file(uri: str, settings: Settings) -> bytes:
    """A regular file under the roots; anything else is refused before it is opened, and it is opened non-blocking,
    so a FIFO swapped in after the check cannot block either (a hung mount is bounded by load_pdf's deadline)."""
    path = path_from_uri(uri)
    roots = settings.file_roots or [os.getcwd()]
    if not _inside(path, roots):
        raise SourceError(
            kind="file_outside_roots", message=f"{path} is outside the allowed file roots ({', '.join(roots)})"
        )
    try:
        _regular_file(path, os.stat(path).st_mode)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        try:
            info = os.fstat(fd)
            _regular_file(path, info.st_mode)
            if info.st_size > settings.max_pdf_bytes:
                raise SourceError(
                    kind="too_large",
                    message=f"{path} is {info.st_size} bytes, over the limit of {settings.max_pdf_bytes}",
                )
            data = bytearray()
            while chunk := os.read(fd, 1 << 20):
                data += chunk
                if len(data) > settings.max_pdf_bytes:  # it grew while being read
                    raise SourceError(kind="too_large", message=f"{path} is over the limit of {settings.max_pdf_bytes}")
            return bytes(data)
        finally:
            os.close(fd)
    except FileNotFoundError as exc:
        raise SourceError(kind="file_not_found", message=f"no such file: {path}") from exc
    except IsADirectoryError as exc:
        raise SourceError(kind="not_a_file", message=f"{path} is a directory") from exc
    except PermissionError as exc:
        raise SourceError(kind="file_unreadable", message=f"cannot read {path}: permission denied") from exc
    except OSError as exc:  # ENAMETOOLONG, ELOOP, EIO, ...
        raise SourceError(kind="file_unreadable", message=f"cannot read {path}: {exc.strerror or exc}") from exc


# -- the SSRF rule --------------------------------------------------------------------------------------------------
# An address is fetched from only if ipaddress calls it global, it is not multicast, and it is in none of the ranges
# below (which Python 3.11's is_global lets through); an IPv4-mapped (::ffff:a.b.c.d), 6to4 (2002::/16) or NAT64
# (64:ff9b::/96) IPv6 address is judged by the IPv4 address inside it.
_NOT_PUBLIC = [
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "100.64.0.0/10",  # shared address space (carrier-grade NAT; cloud metadata services such as 100.100.100.200)
        "192.0.0.0/24",  # IETF protocol assignments
        "192.88.99.0/24",  # 6to4 relay anycast
        "198.18.0.0/15",
        "240.0.0.0/4",
        "255.255.255.255/32",
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",
        "2001::/23",
        "2001:db8::/32",
        "fec0::/10",  # site-local (deprecated, still routed by some stacks)
    )
]


def public_address(addr: ipaddress.IPv4Address | ipaddress.IPv6Address | str) -> bool:
    """The address rule of the SSRF check (README "Guarantees")."""
    if isinstance(addr, str):
        addr = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        inner = addr.ipv4_mapped or addr.sixtofour
        if inner is None and addr in _NAT64:
            inner = ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
        if inner is not None:
            return public_address(inner)
        if addr.teredo is not None:
            return False
    if not addr.is_global or addr.is_multicast:
        return False
    return not any(addr in net for net in _NOT_PUBLIC if net.version == addr.version)


_NAT64 = ipaddress.ip_network("64:ff9b::/96")
# hosts exempt from the rule for the fetch running in this context (SCIQAG_ALLOWED_HOSTS, a feed's allow_hosts)
_ALLOWED_HOSTS: contextvars.ContextVar[frozenset[str]] = contextvars.ContextVar("allowed_hosts", default=frozenset())


def _not_allowed(host: str, addresses: list[str]) -> SourceError:
    return SourceError(
        kind="host_not_allowed",
        message=f"{host} resolves to a non-public address ({', '.join(addresses[:4])}): loopback, private, "
        "link-local, shared, reserved or multicast (allow it with SCIQAG_ALLOWED_HOSTS or a feed's allow_hosts)",
    )


class CheckedResolver:
    """An aiohttp resolver that resolves a host once and returns its addresses only when every one is public (or the
    host is allowed): aiohttp connects to exactly the addresses returned, so there is no second lookup for a DNS
    rebinding to answer. IP literals do not reach a resolver; check_host judges those."""

    def __init__(self, inner=None) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET):
        if self._inner is None:
            import aiohttp

            self._inner = aiohttp.ThreadedResolver()
        try:
            infos = await self._inner.resolve(host, port, family)
        except OSError as exc:
            raise SourceError(kind="fetch_failed", message=f"cannot resolve {host}: {exc}") from exc
        if host in _ALLOWED_HOSTS.get():
            return infos
        bad = [info["host"] for info in infos if not public_address(info["host"])]
        if bad or not infos:
            raise _not_allowed(host, bad)
        return infos

    async def close(self) -> None:
        if self._inner is not None:
            await self._inner.close()


_CHECKED_SESSIONS: weakref.WeakSet = weakref.WeakSet()


def checked_session(*, resolver=None, **kwargs):
    """An aiohttp.ClientSession whose every connection goes through CheckedResolver (no DNS cache: each new
    connection is resolved and checked once). http_get makes one when it is given none; a caller that keeps a
    session (the feed ingester) makes it here."""
    import aiohttp

    connector = aiohttp.TCPConnector(resolver=CheckedResolver(resolver), use_dns_cache=False)
    session = aiohttp.ClientSession(connector=connector, **kwargs)
    _CHECKED_SESSIONS.add(session)
    return session


def _public_host(host: str) -> bool:
    """The rule on a separate lookup: only for sessions not made by checked_session (a lookup window remains)."""
    try:
        infos = socket.getaddrinfo(host, None)
    except socket.gaierror:
        return False
    return bool(infos) and all(public_address(info[4][0]) for info in infos)


@dataclass
class HttpResponse:
    url: str  # after redirects
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes


async def check_host(url: str, allowed_hosts: frozenset[str] | set[str], *, resolve: bool = True) -> None:
    """SSRF rule: http(s) only, and to public addresses unless the host is explicitly allowed. An IP literal is
    judged here; a name is judged here only with resolve=True, else by CheckedResolver when connecting."""
    parsed = parse_uri(url)
    if parsed.scheme not in ("http", "https"):
        raise SourceError(kind="unsupported_uri", message=f"only http(s) URLs are fetched: {_short(url)}")
    host = parsed.hostname or ""
    if not host:
        raise SourceError(kind="unsupported_uri", message=f"no host in {_short(url)}")
    if host in allowed_hosts:
        return
    try:
        literal = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        literal = None
    if literal is not None:
        if not public_address(literal):
            raise _not_allowed(host, [host])
    elif resolve and not await asyncio.to_thread(_public_host, host):
        raise _not_allowed(host, [])


async def http_get(
    url: str,
    *,
    allowed_hosts: frozenset[str] | set[str],
    timeout_s: float,
    max_bytes: int,
    headers: dict[str, str] | None = None,
    session=None,
    max_redirects: int = 5,
    resolver=None,
) -> HttpResponse:
    """GET with a size limit and one deadline of timeout_s for the whole fetch (resolution, every redirect, the
    body); redirects are followed by hand so every hop passes the host rule. resolver: the name lookup under the
    check (tests), for the session made here."""
    import aiohttp

    own = session is None
    if own:
        session = checked_session(resolver=resolver, timeout=aiohttp.ClientTimeout(total=timeout_s))
    checked = session in _CHECKED_SESSIONS
    allowed = _ALLOWED_HOSTS.set(frozenset(allowed_hosts))
    first = url
    try:
        async with asyncio.timeout(timeout_s):
            for _ in range(max_redirects + 1):
                await check_host(url, allowed_hosts, resolve=not checked)
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
                            raise SourceError(
                                kind="too_large", message=f"{_short(url)} is over the limit of {max_bytes} bytes"
                            )
                    return HttpResponse(url, resp.status, {k.lower(): v for k, v in resp.headers.items()}, bytes(body))
            raise SourceError(
                kind="too_many_redirects", message=f"more than {max_redirects} redirects from {_short(url)}"
            )
    except TimeoutError as exc:
        where = _short(first) if url == first else f"{_short(first)} (redirected to {_short(url)})"
        raise SourceError(kind="fetch_timeout", message=f"GET {where} took longer than {timeout_s:g} s in all") from exc
    except aiohttp.ClientError as exc:
        raise SourceError(kind="fetch_failed", message=f"GET {_short(url)} failed: {exc}") from exc
    except ValueError as exc:  # yarl/aiohttp refusing a URL (an odd Location) that urlparse took
        raise SourceError(kind="unsupported_uri", message=f"GET {_short(url)}: {exc}") from exc
    finally:
        _ALLOWED_HOSTS.reset(allowed)
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
        raise SourceError(kind="http_error", message=f"GET {_short(uri)} answered {resp.status}")
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
    scheme = parse_uri(paper.pdf_uri).scheme
    if scheme in ("http", "https"):
        return await fetch_http(paper.pdf_uri, settings)
    if scheme in ("file", ""):
        try:  # a hung mount blocks the read's thread, not the stage: the paper is refused after the deadline
            return await asyncio.wait_for(
                asyncio.to_thread(read_file, paper.pdf_uri, settings), timeout=settings.fetch_timeout_s
            )
        except TimeoutError:
            raise SourceError(
                kind="read_timeout",
                message=f"reading {_short(paper.pdf_uri)} took longer than {settings.fetch_timeout_s:g} s",
            ) from None
    raise SourceError(
        kind="unsupported_uri", message=f"unsupported PDF location scheme {scheme!r}: {_short(paper.pdf_uri)}"
    )
