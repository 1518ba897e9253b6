"""Web search through a SearxNG-compatible JSON API, guarded against server-side request forgery.

    >>> web = HttpSearch("https://searx.example.org", timeout=10)    # doctest: +SKIP
    >>> web.search("war and peace author", k=3)[0].id                 # doctest: +SKIP
    'https://en.wikipedia.org/wiki/War_and_Peace'

Requests go to `GET {url}/search?q=...&format=json`, the URL the user configured and nothing else;
hit ids are the result URLs. `get(id)` returns what the search results said about that URL
(title and snippet); it does not download the page.

The guard (`guarded_get`), for the first request and again for every redirect hop:
- only http and https, at most `max_redirects` hops, followed by hand;
- the host is resolved once, every address it resolves to must be allowed, and the connection
  is made to that checked address (the Host header and TLS name stay the host's), so a DNS
  answer that changes between check and connect cannot slip a private address in;
- refused: loopback, private, link-local, shared (CGNAT), reserved and other non-global
  addresses, unless `allow_private` is True or lists the address or its network (such as
  `["192.168.1.20"]` for a SearxNG on the LAN); cloud metadata endpoints, multicast and the
  unspecified address are refused always;
- the whole exchange has one deadline (`timeout`), and the body is cut off past `max_bytes`.
No proxy from the environment is used. Standard library only (http.client).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import socket
import ssl
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigError
from .search import Document, Hit, SearchError

__all__ = ["HttpSearch", "Response", "check_address", "guarded_get"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Always refused, whatever allow_private says: what a metadata service answers is credentials.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254", "fd20:ce::254")
)
_REDIRECTS = {301, 302, 303, 307, 308}
_USER_AGENT = "tooltoken-search/0.1"


@dataclass
class Response:
    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def check_address(ip: IPAddress, allow_private: bool | Iterable[str] = False) -> str | None:
    """Why `ip` may not be contacted, or None if it may."""
    allow_private = _allowed(allow_private)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_global:
        return None
    if allow_private is True:
        return None
    if allow_private and not isinstance(allow_private, bool):
        for entry in allow_private:
            if ip in ipaddress.ip_network(entry, strict=False):
                return None
    for attr, what in (("is_loopback", "loopback"), ("is_link_local", "link-local"), ("is_private", "private")):
        if getattr(ip, attr):
            return f"a {what} address"
    return "a reserved or non-public address"


def guarded_get(
    url: str,
    *,
    timeout: float = 10.0,
    max_bytes: int = 2_000_000,
    max_redirects: int = 5,
    allow_private: bool | Iterable[str] = False,
    headers: dict[str, str] | None = None,
) -> Response:
    """GET `url` under the guard in the module docstring; return the final response (any status
    but a redirect). Raises `SearchError` for a refused address, a timeout or an oversized body."""
    allow_private = _allowed(allow_private)
    deadline = time.monotonic() + timeout
    for _ in range(max_redirects + 1):
        response = _fetch_once(url, deadline, max_bytes, allow_private, headers or {})
        if response.status not in _REDIRECTS:
            return response
        location = response.headers.get("location")
        if not location:
            raise SearchError(f"{_host(url)} sent a redirect without a location")
        url = urllib.parse.urljoin(url, location)
    raise SearchError(f"too many redirects (more than {max_redirects})")


def _fetch_once(
    url: str, deadline: float, max_bytes: int, allow_private: bool | tuple[str, ...], headers: dict[str, str]
) -> Response:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise SearchError(f"refused {parts.scheme or 'schemeless'} URL: only http and https are allowed")
    host = parts.hostname
    if not host:
        raise SearchError(f"refused URL without a host: {url!r}")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise SearchError(f"refused URL with a bad port: {url!r}") from None
    address = _pick_address(host, port, allow_private, deadline)
    remaining = _remaining(deadline, host)
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            host, port, timeout=remaining, context=ssl.create_default_context()
        )
    else:
        conn = http.client.HTTPConnection(host, port, timeout=remaining)
    # connect to the address we checked, not whatever a second DNS lookup might return
    conn._create_connection = lambda _addr, timeout, source: socket.create_connection(  # type: ignore[attr-defined]
        (str(address), port), timeout, source
    )
    target = urllib.parse.urlunsplit(("", "", parts.path or "/", parts.query, ""))
    try:
        conn.request(
            "GET",
            target,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json", "Accept-Encoding": "identity", **headers},
        )
        sock = conn.sock  # kept: http.client may drop its own reference once the response is read
        resp = conn.getresponse()
        length = resp.getheader("content-length")
        if length and length.isdigit() and int(length) > max_bytes:
            raise SearchError(f"{host} sent {int(length):,} bytes; the limit is {max_bytes:,}")
        body = bytearray()
        while len(body) <= max_bytes:
            if sock is not None:
                sock.settimeout(_remaining(deadline, host))
            chunk = resp.read1(65536) if resp.status not in _REDIRECTS else b""
            if not chunk:
                break
            body += chunk
        if len(body) > max_bytes:
            raise SearchError(f"{host} sent more than {max_bytes:,} bytes; the limit is {max_bytes:,}")
        return Response(url, resp.status, {k.lower(): v for k, v in resp.getheaders()}, bytes(body))
    except TimeoutError:
        raise SearchError(f"{host} did not answer in time") from None
    except (OSError, http.client.HTTPException) as exc:
        raise SearchError(f"could not reach {host}: {exc}") from None
    finally:
        conn.close()


def _pick_address(host: str, port: int, allow_private: bool | tuple[str, ...], deadline: float) -> IPAddress:
    """Resolve `host`; every address must pass `check_address` (a name that answers with one
    public and one private address is refused), and the first is the one to connect to."""
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        _remaining(deadline, host)
        try:
            infos = _resolve(host, port)
        except (socket.gaierror, UnicodeError) as exc:
            raise SearchError(f"could not resolve {host}: {exc}") from None
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        if not addresses:
            raise SearchError(f"could not resolve {host}")
    for ip in addresses:
        why = check_address(ip, allow_private)
        if why is not None:
            hint = (
                ""
                if "metadata" in why or "multicast" in why or "unspecified" in why
                else (" (pass allow_private=True, or a list of allowed addresses, to reach it)")
            )
            raise SearchError(f"refused to connect to {host}: {ip} is {why}{hint}")
    return addresses[0]


def _resolve(host: str, port: int) -> list[Any]:
    # a seam for tests: they replace it to simulate DNS answers without any network
    return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)


def _allowed(allow_private: bool | str | Iterable[str]) -> bool | tuple[str, ...]:
    if isinstance(allow_private, bool):
        return allow_private
    if isinstance(allow_private, str):
        return (allow_private,)
    return tuple(allow_private)


def _remaining(deadline: float, host: str) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SearchError(f"{host} did not answer in time")
    return left


def _host(url: str) -> str:
    return urllib.parse.urlsplit(url).hostname or url


class HttpSearch:
    """A `SearchBackend` over a SearxNG-compatible server at `url` (see the module docstring).

    `params` adds query parameters (such as `{"categories": "general", "language": "en"}`).
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        max_bytes: int = 2_000_000,
        allow_private: bool | Iterable[str] = False,
        params: dict[str, str] | None = None,
        snippet_chars: int = 300,
    ) -> None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"HttpSearch: url must be an http(s) URL with a host, got {url!r}")
        allow_private = _allowed(allow_private)
        if not isinstance(allow_private, bool):
            for entry in allow_private:
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    raise ConfigError(
                        f"HttpSearch: allow_private entries are addresses or networks, got {entry!r}"
                    ) from None
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.allow_private = allow_private
        self.params = dict(params or {})
        self.snippet_chars = snippet_chars
        self._seen: dict[str, Hit] = {}

    def search(self, query: str, k: int = 5) -> list[Hit]:
        query_string = urllib.parse.urlencode({"q": query, "format": "json", **self.params})
        response = guarded_get(
            f"{self.url}/search?{query_string}",
            timeout=self.timeout,
            max_bytes=self.max_bytes,
            allow_private=self.allow_private,
        )
        if response.status != 200:
            raise SearchError(f"the search server answered HTTP {response.status}")
        try:
            data = json.loads(response.body.decode("utf-8"))
            results = data["results"]
            if not isinstance(results, list):
                raise TypeError
        except (UnicodeDecodeError, ValueError, KeyError, TypeError):
            raise SearchError("the search server did not answer with SearxNG JSON (is format=json enabled?)") from None
        hits: list[Hit] = []
        for n, item in enumerate(results):
            if len(hits) >= k:
                break
            if not isinstance(item, dict) or not isinstance(item.get("url"), str):
                continue
            snippet = " ".join(str(item.get("content") or "").split())
            if len(snippet) > self.snippet_chars:
                snippet = snippet[: self.snippet_chars].rsplit(" ", 1)[0] + " …"
            score = item.get("score")
            hit = Hit(
                id=item["url"],
                title=" ".join(str(item.get("title") or item["url"]).split()),
                snippet=snippet,
                score=float(score) if isinstance(score, (int, float)) else 1.0 / (n + 1),
                location=item["url"],
                attribution=_engines(item),
            )
            hits.append(hit)
            self._seen[hit.id] = hit
        return hits

    def get(self, id: str) -> Document:
        hit = self._seen.get(id)
        if hit is None:
            raise SearchError(f"no search result with id {id!r}; ids are the URLs that search returned")
        return Document(hit.id, hit.title, hit.snippet, hit.location, hit.attribution)


def _engines(item: dict[str, Any]) -> str:
    engines = item.get("engines") or ([item["engine"]] if item.get("engine") else [])
    return "web search via " + ", ".join(str(e) for e in engines) if engines else ""
