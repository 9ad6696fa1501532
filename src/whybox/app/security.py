"""The dashboard's door: who may talk to it and how much they may send (a pure ASGI middleware).

Every request passes, in this order:

1. **Host allow-list** (DNS rebinding): the ``Host`` header must name this server — a loopback name,
   the address it is bound to, or a name given with ``--allowed-host``.
2. **Token** (as Jupyter does it): a random token is made when none is given and printed in the
   start-up URL. A request carries it as ``Authorization: Bearer <token>``, an ``X-Whybox-Token``
   header, the HttpOnly ``SameSite=Strict`` cookie the page receives, or once as ``?token=`` on a GET
   (then moved into the cookie and, for pages, redirected away from the URL). Compared with
   :func:`hmac.compare_digest`.
3. **Origin** on every state-changing request (anything but GET/HEAD/OPTIONS): a browser's ``Origin``
   must be this server itself (or one given with ``--allowed-origin``); a request without ``Origin``
   (curl, scripts) is accepted only with the token in a header, never by cookie alone; a
   ``Sec-Fetch-Site: cross-site`` request is refused.
4. **Body size**, counted as the bytes arrive (chunked uploads too): the whole body is read into
   memory up to the limit before the application sees any of it; one byte more ends the request with
   413, so nothing is written to disk for an oversized request.

Every response carries ``Content-Security-Policy: frame-ancestors 'none'`` (no framing, no
click-jacking), ``X-Frame-Options: DENY``, ``X-Content-Type-Options: nosniff`` and
``Referrer-Policy: no-referrer``.
"""
from __future__ import annotations

import hmac
import json
import secrets
import socket
from http.cookies import SimpleCookie
from typing import Any, Awaitable, Callable, Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
COOKIE = "whybox_token"
TOKEN_HEADER = "x-whybox-token"
SECURITY_HEADERS = [
    (b"content-security-policy", b"frame-ancestors 'none'"),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def new_token() -> str:
    """A random token (as Jupyter makes one when none is configured)."""
    return secrets.token_urlsafe(24)


def split_host(value: str) -> str:
    """The host part of a ``Host`` header or URL netloc, lower-case, without port or IPv6 brackets."""
    v = value.strip().lower()
    if v.startswith("["):
        end = v.find("]")
        return v[1:end] if end > 0 else v
    if v.count(":") == 1:
        return v.split(":", 1)[0]
    return v


def allowed_hosts(bind: str, extra: Iterable[str] = ()) -> set[str]:
    """Host names this server answers to: loopback, the bound address (and, when bound to every
    interface, this machine's names), and ``extra``; ``"*"`` in extra allows any."""
    hosts = {h.lower() for h in LOOPBACK_HOSTS}
    b = split_host(bind)
    if b in ("0.0.0.0", "::", ""):
        for name in (socket.gethostname(), socket.getfqdn()):
            if name:
                hosts.add(name.lower())
    else:
        hosts.add(b)
    hosts.update(split_host(h) if h != "*" else "*" for h in extra)
    return hosts


Renderer = Callable[[dict[str, Any], int, str], Awaitable[None]]


class Guard:
    """ASGI middleware applying the checks in this module's docstring before ``app`` sees a request.

    render_error(scope, status, message) -> a Starlette response (JSON for /api, HTML for pages)."""

    def __init__(self, app: Any, *, token: str, hosts: set[str], origins: Iterable[str] = (),
                 upload_limit: int, body_limit: int = 1 << 20, upload_paths: Iterable[str] = ("/api/upload",),
                 render_error: Callable[[dict[str, Any], int, str], Any]):
        if not token:
            raise ValueError("the dashboard always needs a token")
        self.app, self.token = app, token
        self.hosts = hosts
        self.origins = {o.rstrip("/").lower() for o in origins}
        self.upload_limit, self.body_limit = int(upload_limit), int(body_limit)
        self.upload_paths = set(upload_paths)
        self.render_error = render_error

    # ------------------------------------------------------------------ checks
    def _match(self, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self.token.encode())

    def host_ok(self, host: str | None) -> bool:
        if not host:
            return False
        return "*" in self.hosts or split_host(host) in self.hosts

    def origin_ok(self, origin: str, host: str) -> bool:
        o = origin.strip().rstrip("/").lower()
        if o in self.origins:
            return True
        parts = urlsplit(o)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            return False                      # includes the opaque "null" origin
        return parts.netloc == host.strip().lower() and self.host_ok(parts.netloc)

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict[str, Any], receive: Callable, send: Callable) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers", []):
            headers[k.decode("latin-1").lower()] = v.decode("latin-1")
        method = scope["method"].upper()
        host = headers.get("host", "")
        if not self.host_ok(host):
            await self._reject(scope, receive, send, 400, f"this server does not answer to the host {host!r} "
                               "(start it with --allowed-host NAME to add a name)")
            return
        auth = headers.get("authorization", "")
        header_token = auth[7:].strip() if auth.lower().startswith("bearer ") else headers.get(TOKEN_HEADER)
        cookie_token = None
        if "cookie" in headers:
            c: SimpleCookie = SimpleCookie()
            try:
                c.load(headers["cookie"])
                cookie_token = c[COOKIE].value if COOKIE in c else None
            except Exception:  # noqa: BLE001 - a malformed cookie header is no token
                cookie_token = None
        query = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
        query_token = next((v for k, v in query if k == "token"), None) if method in SAFE_METHODS else None
        by_header, by_cookie, by_query = self._match(header_token), self._match(cookie_token), self._match(query_token)
        if not (by_header or by_cookie or by_query):
            await self._reject(scope, receive, send, 401, "this server needs its token: open the URL it printed at "
                               "start (…/?token=…), or send 'Authorization: Bearer <token>'")
            return
        if method not in SAFE_METHODS:
            origin = headers.get("origin")
            if headers.get("sec-fetch-site", "") == "cross-site":
                await self._reject(scope, receive, send, 403, "cross-site requests are refused")
                return
            if origin is not None:
                if not self.origin_ok(origin, host):
                    await self._reject(scope, receive, send, 403, f"requests from the page {origin!r} are refused: "
                                       "only this dashboard's own pages may change anything")
                    return
            elif not by_header:
                await self._reject(scope, receive, send, 403, "a request without an Origin header must carry the "
                                   "token in a header (Authorization: Bearer <token>)")
                return
        set_cookie = by_query and not by_cookie
        if by_query and method == "GET" and not scope["path"].startswith("/api"):
            # a page opened with ?token=: keep the token in the cookie, not in the address bar or history
            rest = urlencode([(k, v) for k, v in query if k != "token"])
            location = scope["path"] + (f"?{rest}" if rest else "")
            await self._send_plain(send, 303, b"", [(b"location", location.encode("latin-1"))], cookie=True)
            return

        limit = self.upload_limit if scope["path"] in self.upload_paths else self.body_limit
        replay = None
        if method not in SAFE_METHODS:
            declared = headers.get("content-length")
            if declared is not None and declared.strip().isdigit() and int(declared) > limit:
                await self._reject(scope, receive, send, 413, _too_large(int(declared), limit))
                return
            body = bytearray()
            more = True
            while more:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return
                body += msg.get("body", b"")
                more = msg.get("more_body", False)
                if len(body) > limit:
                    await self._reject(scope, receive, send, 413, _too_large(None, limit))
                    return
            replay = bytes(body)

        sent_body = False

        async def inner_receive() -> dict[str, Any]:
            nonlocal sent_body
            if replay is not None and not sent_body:
                sent_body = True
                return {"type": "http.request", "body": replay, "more_body": False}
            return await receive()

        async def inner_send(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                extra = list(SECURITY_HEADERS)
                if set_cookie:
                    extra.append((b"set-cookie", self._cookie()))
                msg = {**msg, "headers": list(msg.get("headers", [])) + extra}
            await send(msg)

        await self.app(scope, inner_receive if replay is not None else receive, inner_send)

    # ------------------------------------------------------------------ responses
    def _cookie(self) -> bytes:
        return f"{COOKIE}={self.token}; HttpOnly; SameSite=Strict; Path=/".encode("latin-1")

    async def _send_plain(self, send: Callable, status: int, body: bytes, headers: list, cookie: bool = False) -> None:
        hs = [(b"content-length", str(len(body)).encode())] + headers + list(SECURITY_HEADERS)
        if cookie:
            hs.append((b"set-cookie", self._cookie()))
        await send({"type": "http.response.start", "status": status, "headers": hs})
        await send({"type": "http.response.body", "body": body})

    async def _reject(self, scope: dict[str, Any], receive: Callable, send: Callable, status: int, message: str) -> None:
        resp = self.render_error(scope, status, message)
        if resp is None:
            body = json.dumps({"error": message}).encode()
            await self._send_plain(send, status, body, [(b"content-type", b"application/json")])
            return

        async def with_headers(msg: dict[str, Any]) -> None:
            if msg["type"] == "http.response.start":
                msg = {**msg, "headers": list(msg.get("headers", [])) + list(SECURITY_HEADERS)}
            await send(msg)
        await resp(scope, receive, with_headers)


def _too_large(size: int | None, limit: int) -> str:
    got = f"the request is {size / 2**20:.1f} MB; " if size is not None else "the request is larger than the limit; "
    return got + f"the limit is {limit / 2**20:g} MB (--max-upload-mb for uploads)"
