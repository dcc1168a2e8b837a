# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy-ui stand-in: server-side renders pages from a Lemmy backend and serves dist/.

It follows the observable contract of lemmy-ui 0.19 (see the contract section of
tests/stand_ins/README.md): the same environment variables, backend calls,
forwarded headers, status codes, static routes, cache headers and SIGTERM
behaviour. It renders plain HTML, not Lemmy's real pages.
"""
from __future__ import annotations

import html
import http.client
import http.server
import json
import os
import re
import selectors
import signal
import socket
import sys
import threading
import time
import urllib.parse
from http.cookies import CookieError, SimpleCookie
from typing import Any

DIST = os.path.abspath(os.environ.get("STANDIN_UI_DIST", "dist"))
EXIT_TIMEOUT = 8.0  # seconds before a stuck in-flight request is cut (lemmy-ui exit_timeout)
EXIT_CODE = 143  # what lemmy-ui's process reports after SIGTERM
BACKEND_TIMEOUT = 300.0  # lemmy-ui sets none; this only stops threads from leaking forever
KEEPALIVE_TIMEOUT = 5.0  # Node's default keep-alive timeout

# First path segments that lemmy-ui 0.19 routes; anything else renders its 404 page.
KNOWN_ROUTES = frozenset({
    "", "login", "login_reset", "signup", "communities", "create_post", "create_community",
    "create_private_message", "inbox", "settings", "modlog", "setup", "admin", "reports",
    "registration_applications", "search", "instances", "legal", "password_change",
    "verify_email", "post", "comment", "c", "u", "saved", "home", "activitypub",
})
COMMENT_SORTS = {"Hot": "Hot", "Active": "Hot", "New": "New", "Old": "Old", "Controversial": "Controversial"}
CONTENT_TYPES = {
    ".js": "application/javascript; charset=utf-8", ".css": "text/css; charset=utf-8", ".svg": "image/svg+xml",
    ".png": "image/png", ".json": "application/json; charset=utf-8", ".txt": "text/plain; charset=utf-8",
    ".woff2": "font/woff2", ".ico": "image/x-icon",
}
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")
STATIC_RE = re.compile(r"^/static/([^/]+)/(.+)$")


def read_hash() -> tuple[str, str]:
    """Read the asset hash and UI version from dist/js/server.js, as a deployment would."""
    with open(os.path.join(DIST, "js", "server.js"), encoding="utf-8") as handle:
        text = handle.read()
    hashes = set(re.findall(r'"/static/([0-9a-f]+)', text))
    version = re.search(r'UI_VERSION = "([^"]+)"', text)
    if len(hashes) != 1 or not version:
        raise SystemExit(f"lemmy-ui stand-in: {DIST}/js/server.js must name exactly one /static/<hash> and the version")
    return hashes.pop(), version.group(1)


ASSET_HASH, UI_VERSION = read_hash()


def split_host(value: str, default_port: int) -> tuple[str, int]:
    """Split "host:port" (or "[v6]:port") into its parts."""
    host, sep, port = value.rpartition(":")
    if not sep or "]" in port:
        host, port = value, str(default_port)
    return host.strip("[]"), int(port)


def env_settings() -> dict[str, Any]:
    external = os.environ.get("LEMMY_UI_LEMMY_EXTERNAL_HOST", "0.0.0.0:8536")
    https = os.environ.get("LEMMY_UI_HTTPS", "false") == "true"
    return {
        "listen": split_host(os.environ.get("LEMMY_UI_HOST", "0.0.0.0:1234"), 1234),
        "internal": os.environ.get("LEMMY_UI_LEMMY_INTERNAL_HOST", "0.0.0.0:8536"),
        "external": external,
        "https": https,
        "extra_themes": os.path.abspath(os.environ.get("LEMMY_UI_EXTRA_THEMES_FOLDER", "./extra_themes")),
        "custom_header": os.environ.get("LEMMY_UI_CUSTOM_HTML_HEADER", ""),
    }


SETTINGS = env_settings()


class Shutdown:
    """Counts requests in flight so SIGTERM can wait for them."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.active = 0
        self.stopping = False

    def enter(self) -> None:
        with self.cond:
            self.active += 1

    def leave(self) -> None:
        with self.cond:
            self.active -= 1
            self.cond.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.cond:
            while self.active > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.cond.wait(left)
        return True


STATE = Shutdown()


class BackendError(Exception):
    """The backend could not be reached or did not answer JSON."""

    def __init__(self, message: str, status: int = 0, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class IdleConnection:
    """One pooled keep-alive connection and when it stops being reusable."""

    def __init__(self, conn: http.client.HTTPConnection, expires: float) -> None:
        self.conn = conn
        self.expires = expires


class KeepAlivePool:
    """Idle keep-alive connections to one origin, reused the way Node's fetch (undici) does.

    - Connections are kept after every complete answer without ``Connection: close`` and handed
      to the next backend call, oldest connection first (undici's Pool takes the first free client).
    - An idle connection expires after 4 s, or after the server's ``Keep-Alive: timeout=N`` hint
      minus 2 s, at most 600 s (undici's keepAliveTimeout, -Threshold and -MaxTimeout defaults).
    - A watcher drops idle connections the server closed, as Node's event loop does when it gets to
      the socket's end event: once per loop turn, and a loop busy rendering pages turns every few
      milliseconds (EVENT_LOOP_TURN). A call that takes an idle connection before that happens sends
      on a dead socket and fails ("other side closed"): undici does not retry it.
    """

    EVENT_LOOP_TURN = 0.01

    DEFAULT_TIMEOUT = 4.0
    THRESHOLD = 2.0
    MAX_TIMEOUT = 600.0
    HINT_RE = re.compile(r"timeout\s*=\s*(\d+)", re.IGNORECASE)

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.lock = threading.Lock()
        self.idle: dict[int, IdleConnection] = {}  # insertion order = connection age
        self.selector = selectors.DefaultSelector()
        self.serial = 0
        self.stats = {"opened": 0, "reused": 0, "closed_by_peer": 0, "expired": 0}
        threading.Thread(target=self._watch, name="keepalive-watcher", daemon=True).start()

    def _watch(self) -> None:
        while True:
            with self.lock:
                empty = not self.idle
            if empty:
                time.sleep(0.05)
                continue
            time.sleep(self.EVENT_LOOP_TURN)
            try:
                events = self.selector.select(timeout=0)
            except OSError:  # a socket went away between register and select
                continue
            now = time.monotonic()
            with self.lock:
                for key, _mask in events:
                    if self.idle.pop(key.data, None) is not None:
                        self.stats["closed_by_peer"] += 1
                        self._discard(key.fileobj)
                for serial, idle in list(self.idle.items()):
                    if idle.expires <= now:
                        del self.idle[serial]
                        self.stats["expired"] += 1
                        self._discard(idle.conn.sock)
                        idle.conn.close()

    def _discard(self, sock: Any) -> None:
        try:
            self.selector.unregister(sock)
        except (KeyError, ValueError, OSError):
            pass
        try:
            sock.close()
        except OSError:
            pass

    def checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        """An idle connection (reused=True) or a new one."""
        now = time.monotonic()
        with self.lock:
            for serial, idle in list(self.idle.items()):
                del self.idle[serial]
                try:
                    self.selector.unregister(idle.conn.sock)
                except (KeyError, ValueError, OSError):
                    pass
                if idle.expires <= now:
                    self.stats["expired"] += 1
                    idle.conn.close()
                    continue
                self.stats["reused"] += 1
                return idle.conn, True
            self.stats["opened"] += 1
        return http.client.HTTPConnection(self.host, self.port, timeout=BACKEND_TIMEOUT), False

    def checkin(self, conn: http.client.HTTPConnection, resp: http.client.HTTPResponse) -> None:
        """Keep the connection for the next call, unless the answer ends it."""
        timeout = self.DEFAULT_TIMEOUT
        hint = self.HINT_RE.search(resp.getheader("Keep-Alive") or "")
        if hint:
            timeout = min(int(hint.group(1)) - self.THRESHOLD, self.MAX_TIMEOUT)
        if resp.will_close or conn.sock is None or timeout <= 0:
            conn.close()
            return
        with self.lock:
            self.serial += 1
            self.idle[self.serial] = IdleConnection(conn, time.monotonic() + timeout)
            self.selector.register(conn.sock, selectors.EVENT_READ, self.serial)


POOLS: dict[tuple[str, int], KeepAlivePool] = {}
POOLS_LOCK = threading.Lock()


def backend_pool() -> KeepAlivePool:
    host, port = split_host(SETTINGS["internal"], 80)
    with POOLS_LOCK:
        if (host, port) not in POOLS:
            POOLS[(host, port)] = KeepAlivePool(host, port)
        return POOLS[(host, port)]


def backend_get(path: str, headers: dict[str, str]) -> Any:
    pool = backend_pool()
    conn, reused = pool.checkout()
    try:
        conn.request("GET", path, headers={"Accept": "application/json", **headers})
        resp = conn.getresponse()
        raw = resp.read()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        # What Node prints for a keep-alive socket the server closed under the request.
        cause = "SocketError: other side closed" if reused else f"{type(exc).__name__}: {exc}"
        raise BackendError(f"GET {path}: TypeError: fetch failed ({cause})") from exc
    pool.checkin(conn, resp)
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise BackendError(f"GET {path}: status {resp.status}, body is not JSON", resp.status) from exc
    if resp.status != 200:
        raise BackendError(f"GET {path}: status {resp.status}", resp.status, body)
    return body


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def script_json(value: Any) -> str:
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def page(path: str, title: str, body: str, site_res: Any = None, route_data: Any = None, theme: str = "undefined") -> str:
    """The SSR HTML shell: every asset reference that real lemmy-ui pages carry."""
    static = f"/static/{ASSET_HASH}"
    scheme = "https" if SETTINGS["https"] else "http"
    backend_version = site_res.get("version", "") if isinstance(site_res, dict) else ""
    iso = {
        "path": path,
        "site_res": site_res,
        "routeData": route_data or {},
        "lemmy_external_host": SETTINGS["external"],
    }
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{esc(title)}</title>
<meta property="og:url" content="{esc(f"{scheme}://{SETTINGS['external']}{path}")}">
<link rel="manifest" href="/manifest.webmanifest">
<link rel="icon" type="image/svg+xml" href="{static}/assets/icons/favicon.svg">
<link rel="apple-touch-icon" href="{static}/assets/icons/apple-touch-icon.png">
<link rel="stylesheet" href="{static}/styles/styles.css">
<link rel="stylesheet" href="/css/themes/litely.css" media="(prefers-color-scheme: light)">
<link rel="stylesheet" href="/css/themes/darkly.css" media="(prefers-color-scheme: dark)">
<link rel="stylesheet" id="app-theme" href="/css/themes/{esc(theme)}.css">
<link rel="stylesheet" href="/css/code-themes/atom-one-light.css">
<link rel="preload" as="image" href="{static}/assets/symbols.svg">
{SETTINGS["custom_header"]}
<script>window.isoData = {script_json(iso)};</script>
<script defer src="{static}/js/client.js"></script>
</head>
<body>
<div id="root">
{body}
<footer><span class="ui-version">UI: {esc(UI_VERSION)}</span> <span class="backend-version">BE: {esc(backend_version)}</span></footer>
</div>
</body>
</html>
"""


def site_name(site_res: Any) -> str:
    try:
        return str(site_res["site_view"]["site"].get("name", ""))
    except (KeyError, TypeError, AttributeError):
        return ""


def error_page(path: str, message: str, site_res: Any = None) -> str:
    return page(path, "Error!", f"<main><h1>Error!</h1><p class=\"error\">{esc(message)}</p></main>", site_res)


def not_found_page(path: str, site_res: Any) -> str:
    name = site_name(site_res)
    body = "<main><h1>404</h1><p>Couldn't find that page.</p></main>"
    return page(path, f"Not Found - {name}", body, site_res)


def list_path(site_res: dict[str, Any], query: dict[str, list[str]]) -> tuple[str, str]:
    """The second backend call of the front page, with the site defaults (facts §6)."""
    local_site = site_res["site_view"]["local_site"]
    type_ = query.get("listingType", [local_site.get("default_post_listing_type") or "Local"])[0]
    sort = query.get("sort", [local_site.get("default_sort_type") or "Active"])[0]
    if query.get("dataType", [""])[0] == "Comment":
        params = {"type_": type_, "limit": "20", "sort": COMMENT_SORTS.get(sort, "Hot"), "saved_only": "false"}
        return "comments", "/api/v3/comment/list?" + urllib.parse.urlencode(params)
    params = {"type_": type_, "limit": "20", "sort": sort, "saved_only": "false", "show_hidden": "false"}
    return "posts", "/api/v3/post/list?" + urllib.parse.urlencode(params)


def render_list(kind: str, data: Any) -> str:
    items = []
    for entry in (data or {}).get(kind) or []:
        if kind == "posts":
            post = entry.get("post", {})
            items.append(f'<li class="post"><a href="/post/{esc(post.get("id", ""))}">{esc(post.get("name", ""))}</a></li>')
        else:
            comment = entry.get("comment", {})
            items.append(f'<li class="comment">{esc(comment.get("content", ""))}</li>')
    return f'<ul class="{kind}">' + "".join(items) + "</ul>"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lemmy-ui-standin"
    timeout = KEEPALIVE_TIMEOUT

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        """No access log, like lemmy-ui."""

    # -- plumbing -----------------------------------------------------------
    def send(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if STATE.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_html(self, status: int, text: str, headers: dict[str, str] | None = None) -> None:
        self.send(status, text.encode(), "text/html; charset=utf-8", headers)

    def send_file(self, path: str, cache: str) -> None:
        with open(path, "rb") as handle:
            body = handle.read()
        ctype = CONTENT_TYPES.get(os.path.splitext(path)[1], "application/octet-stream")
        self.send(200, body, ctype, {"Cache-Control": cache})

    def dispatch(self) -> None:
        STATE.enter()
        try:
            self.route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            STATE.leave()

    def do_GET(self) -> None:  # noqa: N802 (http.server naming)
        self.dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self.dispatch()

    def do_POST(self) -> None:  # noqa: N802
        STATE.enter()
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            self.send(404, f"Cannot POST {self.path}".encode(), "text/html; charset=utf-8")
        finally:
            STATE.leave()

    # -- routes -------------------------------------------------------------
    def route(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(url.path) or "/"
        query = urllib.parse.parse_qs(url.query)
        static = STATIC_RE.match(path)
        if static and static.group(1) == ASSET_HASH:
            target = self.dist_path(static.group(2))
            if target:
                self.send_file(target, "public, max-age=86400, immutable")
                return
        if path.startswith("/css/themes/") and path.endswith(".css"):
            self.theme(path[len("/css/themes/"):-len(".css")])
            return
        if path.startswith("/css/code-themes/"):
            name = path[len("/css/code-themes/"):]
            target = self.dist_path(f"assets/css/code-themes/{name}") if NAME_RE.match(name) else None
            if target:
                self.send_file(target, "public, max-age=86400")
            else:
                self.send(404, b"Not Found", "text/plain; charset=utf-8")
            return
        if path == "/css/themelist":
            self.send(200, json.dumps(self.theme_names()).encode(), "application/json; charset=utf-8")
            return
        if path == "/robots.txt":
            body = b"User-Agent: *\nDisallow: /login\nDisallow: /settings\nDisallow: /create_community\n" \
                   b"Disallow: /create_post\nDisallow: /create_private_message\nDisallow: /inbox\n" \
                   b"Disallow: /setup\nDisallow: /admin\nDisallow: /password_change\nDisallow: /search/\nDisallow: /modlog\n"
            self.send(200, body, "text/plain; charset=utf-8", {"Cache-Control": "public, max-age=86400"})
            return
        if path == "/manifest.webmanifest":
            manifest = {
                "name": "Lemmy", "short_name": "Lemmy", "start_url": "/", "display": "standalone",
                "icons": [{"src": f"/static/{ASSET_HASH}/assets/icons/icon-96x96.png", "sizes": "96x96", "type": "image/png"}],
            }
            self.send(200, json.dumps(manifest).encode(), "application/manifest+json; charset=utf-8",
                      {"Cache-Control": "public, max-age=86400"})
            return
        if path == "/service-worker.js":
            self.send_file(os.path.join(DIST, "service-worker.js"), "public, max-age=86400")
            return
        self.render(path, query)

    @staticmethod
    def dist_path(rel: str) -> str | None:
        target = os.path.realpath(os.path.join(DIST, rel))
        if not target.startswith(DIST + os.sep) or not os.path.isfile(target):
            return None
        return target

    @staticmethod
    def theme_names() -> list[str]:
        names: list[str] = []
        for folder in (SETTINGS["extra_themes"], os.path.join(DIST, "assets", "css", "themes")):
            if os.path.isdir(folder):
                names += sorted(n[:-4] for n in os.listdir(folder) if n.endswith(".css"))
        return names

    def theme(self, name: str) -> None:
        """Extra themes first, then the built-in ones, else litely with 200 (facts §6)."""
        candidates = []
        if NAME_RE.match(name):
            candidates = [os.path.join(SETTINGS["extra_themes"], f"{name}.css"),
                          os.path.join(DIST, "assets", "css", "themes", f"{name}.css")]
        candidates.append(os.path.join(DIST, "assets", "css", "themes", "litely.css"))
        for candidate in candidates:
            if os.path.isfile(candidate):
                self.send_file(candidate, "public, max-age=86400")
                return

    def forwarded_headers(self) -> tuple[dict[str, str], bool]:
        headers = {}
        for name in ("host", "x-real-ip", "x-forwarded-for"):
            value = self.headers.get(name)
            if value is not None:
                headers[name] = value
        jwt = None
        try:
            cookie = SimpleCookie(self.headers.get("Cookie", ""))
            if "jwt" in cookie:
                jwt = cookie["jwt"].value
        except CookieError:
            jwt = None
        if jwt:
            headers["Authorization"] = f"Bearer {jwt}"
        return headers, bool(jwt)

    def render(self, path: str, query: dict[str, list[str]]) -> None:
        headers, logged_in = self.forwarded_headers()
        cache = {"Cache-Control": "private" if logged_in else "public, max-age=60", "Vary": "Cookie, Accept, Accept-Language"}
        try:
            site_res = backend_get("/api/v3/site", headers)
        except BackendError as exc:
            sys.stderr.write(f"lemmy-ui: backend {SETTINGS['internal']}: {exc}\n")
            self.send_html(500, error_page(path, str(exc)), cache)
            return
        site_view = site_res.get("site_view") if isinstance(site_res, dict) else None
        if not isinstance(site_view, dict) or not isinstance(site_view.get("site"), dict) \
                or not isinstance(site_view.get("local_site"), dict):
            self.send_html(500, "Server error")
            return
        if not site_view["local_site"].get("site_setup") and path != "/setup":
            self.send(302, b"Found. Redirecting to /setup", "text/plain; charset=utf-8", {"Location": "/setup"})
            return
        theme = site_view["local_site"].get("default_theme") or "undefined"
        segment = path.strip("/").split("/", 1)[0]
        if segment not in KNOWN_ROUTES:
            self.send_html(404, not_found_page(path, site_res), cache)
            return
        route_data: dict[str, Any] = {}
        body = f'<main><h1 class="site-name">{esc(site_name(site_res))}</h1>'
        if path == "/":
            kind, call = list_path(site_res, query)
            try:
                route_data[kind] = backend_get(call, headers)
            except BackendError as exc:
                if isinstance(exc.body, dict) and exc.body.get("error") == "couldnt_find_object":
                    self.send_html(404, not_found_page(path, site_res), cache)
                elif isinstance(site_res.get("admins"), list):
                    self.send_html(500, error_page(path, str(exc), site_res), cache)
                else:
                    self.send_html(500, "Server error")
                return
            body += render_list(kind, route_data[kind])
        body += "</main>"
        self.send_html(200, page(path, site_name(site_res), body, site_res, route_data, theme), cache)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Server6(Server):
    address_family = socket.AF_INET6


def main() -> int:
    host, port = SETTINGS["listen"]
    server = (Server6 if ":" in host else Server)((host, port), Handler)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    print(f"Lemmy-ui v{UI_VERSION} (static hash {ASSET_HASH}) started listening on http://{host}:{port}", flush=True)
    stop.wait()
    # Close the listener at once, let in-flight requests finish, cut them after 8 s.
    STATE.stopping = True
    server.shutdown()
    server.socket.close()
    finished = STATE.wait_idle(EXIT_TIMEOUT)
    print("Interrupted, shutting down" if finished else "Forced exit after timeout", flush=True)
    sys.stdout.flush()
    os._exit(EXIT_CODE)


if __name__ == "__main__":
    sys.exit(main())
