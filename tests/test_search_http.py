"""HttpSearch against a real HTTP server on 127.0.0.1, and its guard against request forgery.

Only 127.0.0.1 is ever contacted: the refusal tests replace `socket.create_connection` with a
recorder that fails the test if anything else is dialled, and simulated DNS answers come from
replacing the module's resolver seam, never from a network.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pytest
from tooltoken.tools import ConfigError, http_search
from tooltoken.tools.http_search import HttpSearch, check_address, guarded_get
from tooltoken.tools.search import SearchBackend, SearchError

pytestmark = pytest.mark.integration

RESULTS = [
    {"url": "https://en.wikipedia.org/wiki/War_and_Peace", "title": "War and Peace - Wikipedia",
     "content": "War and Peace is a novel by the Russian author Leo Tolstoy.", "engine": "wikipedia",
     "engines": ["wikipedia", "duckduckgo"], "score": 9.5},
    {"url": "https://example.org/tolstoy", "title": "Leo Tolstoy", "content": "Russian writer " * 40},
    {"title": "no url: skipped"},
    {"url": "https://example.org/third", "title": "Third", "content": "third result"},
]  # fmt: skip


class _Handler(BaseHTTPRequestHandler):
    seen: ClassVar[list[tuple[str, str]]] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        self.seen.append((self.path, self.headers.get("Host", "")))
        port = self.server.server_address[1]
        redirects = {
            "/redirect": "/search?q=redirected&format=json",
            "/redirect-abs": f"http://127.0.0.1:{port}/search?q=abs&format=json",
            "/redirect-private": "http://10.0.0.1/search?q=x&format=json",
            "/redirect-metadata": "http://169.254.169.254/latest/meta-data/",
            "/redirect-v6": f"http://[::1]:{port}/search?q=x&format=json",
            "/redirect-file": "file:///etc/passwd",
            "/redirect-loop": "/redirect-loop",
        }
        if url.path in redirects:
            self.send_response(302)
            self.send_header("Location", redirects[url.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif url.path == "/search":
            q = urllib.parse.parse_qs(url.query)
            body = json.dumps({"query": q.get("q", [""])[0], "format": q.get("format", [""])[0], "results": RESULTS})
            self._send(200, body.encode())
        elif url.path == "/big":
            self._send(200, b"x" * 50_000)
        elif url.path == "/big-chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for _ in range(20):
                self.wfile.write(b"1000\r\n" + b"y" * 4096 + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
        elif url.path == "/slow/search":
            time.sleep(1.5)
            self._send(200, b'{"results": []}')
        elif url.path == "/html/search":
            self._send(200, b"<html>not json</html>")
        elif url.path == "/error/search":
            self._send(500, b"oops")
        else:
            self._send(404, b"not found")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients that gave up are expected here
            super().handle_error(request, client_address)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = _Server(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture
def dialled(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every address a connection is opened to; anything but 127.0.0.1 fails the test at once."""
    real = socket.create_connection
    calls: list[str] = []

    def guard(address, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(address[0])
        if address[0] != "127.0.0.1":
            raise AssertionError(f"the test tried to connect to {address[0]}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(socket, "create_connection", guard)
    return calls


# --- a working search ---------------------------------------------------------------------


def test_search_through_a_real_server(server: str, dialled: list[str]) -> None:
    web = HttpSearch(server, allow_private=True, timeout=5)
    hits = web.search("war and peace", k=2)
    assert [h.id for h in hits] == ["https://en.wikipedia.org/wiki/War_and_Peace", "https://example.org/tolstoy"]
    top = hits[0]
    assert top.title == "War and Peace - Wikipedia" and top.score == 9.5
    assert top.snippet.startswith("War and Peace is a novel")
    assert top.location == top.id
    assert top.attribution == "web search via wikipedia, duckduckgo"
    assert len(hits[1].snippet) <= 302 and hits[1].snippet.endswith("…")  # cut to snippet_chars
    assert hits[1].score == 0.5  # no score from the server: 1 / rank
    assert isinstance(web, SearchBackend)
    assert web.get(top.id).text == top.snippet
    with pytest.raises(SearchError, match="no search result"):
        web.get("https://never.returned/")
    path, _ = _Handler.seen[-1]
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(path).query) == {"q": ["war and peace"], "format": ["json"]}
    assert set(dialled) == {"127.0.0.1"}


def test_extra_params_and_k(server: str) -> None:
    web = HttpSearch(server + "/", allow_private=["127.0.0.1"], params={"language": "en"})
    assert len(web.search("x", k=10)) == 3  # the result without a url is skipped
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(_Handler.seen[-1][0]).query)
    assert query["language"] == ["en"]


def test_redirects_are_followed_and_checked(server: str, dialled: list[str]) -> None:
    response = guarded_get(server + "/redirect", allow_private=True)
    assert response.status == 200 and json.loads(response.body)["query"] == "redirected"
    assert response.url.endswith("/search?q=redirected&format=json")
    assert guarded_get(server + "/redirect-abs", allow_private=["127.0.0.0/8"]).status == 200


# --- the guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/search",
        "http://127.1.2.3:8080/",
        "http://10.0.0.1/",
        "http://10.255.255.254:8888/search",
        "http://172.16.0.1/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://169.254.1.1/",
        "http://[::1]/",
        "http://[::1]:8888/search",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://240.0.0.1/",
    ],
)
def test_private_addresses_refused_without_the_flag(url: str, dialled: list[str]) -> None:
    with pytest.raises(SearchError, match="refused to connect"):
        guarded_get(url)
    assert dialled == []


def test_names_are_resolved_and_checked(monkeypatch: pytest.MonkeyPatch, dialled: list[str]) -> None:
    answers = {
        "intranet.test": ["10.0.0.5"],
        "localhost": ["127.0.0.1"],
        "mixed.test": ["93.184.216.34", "192.168.0.10"],  # one bad answer spoils the name
        "metadata.google.internal": ["169.254.169.254"],
        "v6.test": ["::1"],
    }
    monkeypatch.setattr(http_search, "_resolve", lambda host, port: [_info(a, port) for a in answers[host]])
    for host in answers:
        with pytest.raises(SearchError, match="refused to connect"):
            guarded_get(f"http://{host}/search")
    assert dialled == []


def test_the_checked_address_is_the_one_dialled(
    server: str, monkeypatch: pytest.MonkeyPatch, dialled: list[str]
) -> None:
    """DNS rebinding: the name is resolved once and the connection goes to that address, with
    the name kept in the Host header."""
    port = int(server.rsplit(":", 1)[1])
    answers = iter([["127.0.0.1"], ["10.0.0.9"]])  # a second lookup would say something else
    monkeypatch.setattr(http_search, "_resolve", lambda host, p: [_info(a, p) for a in next(answers)])
    web = HttpSearch(f"http://searx.test:{port}", allow_private=["127.0.0.1"])
    assert web.search("rebinding")[0].id.startswith("https://")
    assert _Handler.seen[-1][1] == f"searx.test:{port}"
    assert dialled == ["127.0.0.1"]


def test_redirect_to_private_address_refused(server: str, dialled: list[str]) -> None:
    allowed = ["127.0.0.1"]  # the user's own server is allowed; nothing else private is
    with pytest.raises(SearchError, match=r"10\.0\.0\.1 is a private address"):
        guarded_get(server + "/redirect-private", allow_private=allowed)
    with pytest.raises(SearchError, match=r"::1 is a loopback address"):
        guarded_get(server + "/redirect-v6", allow_private=allowed)
    with pytest.raises(SearchError, match="cloud metadata"):
        guarded_get(server + "/redirect-metadata", allow_private=True)  # refused even when allowed
    with pytest.raises(SearchError, match="only http and https"):
        guarded_get(server + "/redirect-file", allow_private=True)
    with pytest.raises(SearchError, match="too many redirects"):
        guarded_get(server + "/redirect-loop", allow_private=True, max_redirects=3)
    assert set(dialled) == {"127.0.0.1"}


def test_check_address_rules() -> None:
    ip = ipaddress.ip_address
    assert check_address(ip("93.184.216.34")) is None
    assert check_address(ip("2606:2800:220:1:248:1893:25c8:1946")) is None
    assert check_address(ip("127.0.0.1")) == "a loopback address"
    assert check_address(ip("127.0.0.1"), True) is None
    assert check_address(ip("127.0.0.1"), "127.0.0.1") is None
    assert check_address(ip("10.1.2.3"), ["10.0.0.0/8"]) is None
    assert check_address(ip("10.1.2.3"), ["192.168.0.0/16"]) == "a private address"
    assert check_address(ip("169.254.169.254"), True) == "a cloud metadata address"
    assert check_address(ip("fd00:ec2::254"), True) == "a cloud metadata address"
    assert check_address(ip("::ffff:169.254.169.254"), True) == "a cloud metadata address"


# --- limits and bad answers ---------------------------------------------------------------


def test_response_size_is_capped(server: str) -> None:
    with pytest.raises(SearchError, match="the limit is 10,000"):
        guarded_get(server + "/big", allow_private=True, max_bytes=10_000)  # by Content-Length
    with pytest.raises(SearchError, match="more than 10,000 bytes"):
        guarded_get(server + "/big-chunked", allow_private=True, max_bytes=10_000)  # while reading
    assert len(guarded_get(server + "/big", allow_private=True, max_bytes=50_000).body) == 50_000


def test_timeout(server: str) -> None:
    web = HttpSearch(server + "/slow", allow_private=True, timeout=0.3)
    with pytest.raises(SearchError, match="did not answer in time"):
        web.search("slow")


def test_bad_answers(server: str) -> None:
    with pytest.raises(SearchError, match="did not answer with SearxNG JSON"):
        HttpSearch(server + "/html", allow_private=True).search("x")
    with pytest.raises(SearchError, match="HTTP 500"):
        HttpSearch(server + "/error", allow_private=True).search("x")


def test_connection_refused_is_a_search_error() -> None:
    with socket.socket() as s:  # a free port on loopback that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SearchError, match="could not reach"):
        HttpSearch(f"http://127.0.0.1:{port}", allow_private=True, timeout=2).search("x")


def test_https_goes_through_tls_to_the_checked_address(server: str, dialled: list[str]) -> None:
    # the test server speaks plain HTTP, so the TLS handshake fails: cleanly, as a SearchError
    with pytest.raises(SearchError, match="could not reach 127.0.0.1"):
        guarded_get(server.replace("http://", "https://") + "/search", allow_private=True, timeout=5)
    assert dialled == ["127.0.0.1"]


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError):
        HttpSearch("ftp://example.org")
    with pytest.raises(ConfigError):
        HttpSearch("searx.example.org")
    with pytest.raises(ConfigError, match="allow_private entries"):
        HttpSearch("http://127.0.0.1", allow_private=["not an address"])


def _info(address: str, port: int) -> tuple:  # type: ignore[type-arg]
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    return (family, socket.SOCK_STREAM, 6, "", (address, port))
