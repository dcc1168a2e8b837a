# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: HTTP routes (API, nodeinfo, ActivityPub, inboxes, feeds, pict-rs proxy)."""
from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import LemmyProcess, LemmyRunner, PgDatabase, free_port

AP_ACCEPTS = ["application/activity+json", 'application/ld+json; profile="https://www.w3.org/ns/activitystreams"']
PICTRS_KEY = "pictrs-api-key-for-tests"


class FakePictrs:
    """A recording pict-rs double on 127.0.0.1 (the stand-ins run with host networking)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def _reply(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _record(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                fake.requests.append({"method": self.command, "path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": self.rfile.read(length) if length else b""})

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                self._record()
                if self.path == "/healthz":
                    self._reply(200, b"", "text/plain")
                elif self.path.startswith("/image/original/") or self.path.startswith("/image/process."):
                    self._reply(200, b"\x89PNG-bytes-of-" + self.path.encode(), "image/png")
                else:
                    self._reply(404, b"", "text/plain")

            def do_POST(self) -> None:  # noqa: N802 - http.server API
                self._record()
                body = {"msg": "ok", "files": [{"file": f"upload{len(fake.requests)}.png", "delete_token": "tok"}]}
                self._reply(201, json.dumps(body).encode(), "application/json")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def last(self) -> dict[str, Any]:
        return self.requests[-1]


@pytest.fixture(scope="module")
def pictrs_double() -> Iterator[FakePictrs]:
    fake = FakePictrs()
    try:
        yield fake
    finally:
        fake.httpd.shutdown()
        fake.httpd.server_close()


@pytest.fixture(scope="module")
def servers(lemmy_module: LemmyRunner, pictrs_double: FakePictrs) -> dict[str, LemmyProcess]:
    """0.19.20 (which migrates the shared database) and 0.19.3 serving side by side, both with pict-rs configured."""
    pictrs = f'  pictrs: {{\n    url: "http://127.0.0.1:{pictrs_double.port}/"\n    api_key: "{PICTRS_KEY}"\n  }}\n'
    args = ["--disable-scheduled-tasks", "--disable-activity-sending"]
    new = lemmy_module.start("0.19.20", args, extra_extra=pictrs)
    new.wait_ready()
    old = lemmy_module.start("0.19.3", args, extra_extra=pictrs)
    old.wait_ready()
    return {"new": new, "old": old}


def test_site_response_has_what_lemmy_ui_needs(servers: dict[str, LemmyProcess]) -> None:
    """GET /api/v3/site: GetSiteResponse with version, site_view.site/local_site(site_setup)/rate limit/counts, lists."""
    reply = servers["new"].get("/api/v3/site")
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    site = reply.json()
    assert site["version"] == "0.19.20"
    view = site["site_view"]
    assert view["site"]["id"] and view["site"]["name"] == "Contract Test"
    assert view["site"]["actor_id"] == "https://lemmy.test/"
    assert view["local_site"]["site_setup"] is True
    assert view["local_site_rate_limit"]["message"] == 180
    assert "users" in view["counts"]
    for key in ("admins", "all_languages", "discussion_languages", "taglines", "custom_emojis", "blocked_urls"):
        assert site[key] == [], key


def test_post_and_comment_lists(servers: dict[str, LemmyProcess]) -> None:
    """GET /api/v3/post/list and /api/v3/comment/list answer the lists lemmy-ui renders."""
    proc = servers["new"]
    assert proc.get("/api/v3/post/list?type_=Local&limit=20&sort=Active").json() == {"posts": []}
    assert proc.get("/api/v3/comment/list?type_=Local").json() == {"comments": []}


def test_nodeinfo_from_0_19_4(servers: dict[str, LemmyProcess]) -> None:
    """0.19.4+: /nodeinfo/2.1 (cached 1 h), redirects from 2.0.json/2.1.json and /version, /.well-known/nodeinfo links it."""
    proc = servers["new"]
    reply = proc.get("/nodeinfo/2.1")
    assert reply.status == 200 and "max-age=3600" in reply.headers["cache-control"]
    info = reply.json()
    assert info["software"]["name"] == "lemmy" and info["software"]["version"] == "0.19.20"
    for path in ("/nodeinfo/2.0.json", "/nodeinfo/2.1.json", "/version"):
        redirect = proc.get(path)
        assert redirect.status in (301, 302, 307, 308) and redirect.headers["location"] == "/nodeinfo/2.1", path
    links = proc.get("/.well-known/nodeinfo").json()["links"]
    assert links[0]["href"] == "https://lemmy.test/nodeinfo/2.1"


def test_nodeinfo_before_0_19_4(servers: dict[str, LemmyProcess]) -> None:
    """0.19.3: nodeinfo is /nodeinfo/2.0.json (no 2.1) and /version redirects there."""
    proc = servers["old"]
    info = proc.get("/nodeinfo/2.0.json").json()
    assert info["software"] == {"name": "lemmy", "version": "0.19.3"}
    assert proc.get("/nodeinfo/2.1").status == 404
    assert proc.get("/version").headers["location"] == "/nodeinfo/2.0.json"
    assert proc.get("/.well-known/nodeinfo").json()["links"][0]["href"] == "https://lemmy.test/nodeinfo/2.0.json"


@pytest.mark.parametrize("accept", AP_ACCEPTS, ids=["activity+json", "ld+json"])
@pytest.mark.parametrize("path,kind", [("/c/main", "Group"), ("/u/admin", "Person"), ("/post/7", "Page"), ("/", "Application")])
def test_activitypub_objects(servers: dict[str, LemmyProcess], accept: str, path: str, kind: str) -> None:
    """ActivityPub GETs with an AP Accept header answer application/activity+json objects with https://<hostname> ids."""
    reply = servers["new"].get(path, headers={"Accept": accept})
    assert reply.status == 200 and reply.headers["content-type"] == "application/activity+json"
    obj = reply.json()
    assert obj["type"] == kind and obj["id"] == f"https://lemmy.test{path}"


def test_activitypub_paths_without_ap_accept_are_not_served(servers: dict[str, LemmyProcess]) -> None:
    """ActivityPub: /c/x etc. without an AP Accept header are not lemmy_server's (nginx sends them to lemmy-ui)."""
    assert servers["new"].get("/c/main", headers={"Accept": "text/html"}).status == 404


@pytest.mark.parametrize("inbox", ["/inbox", "/c/main/inbox", "/u/admin/inbox"])
def test_inbox_post_is_recorded(servers: dict[str, LemmyProcess], postgres_module: PgDatabase, inbox: str) -> None:
    """Inboxes: POST an activity -> 200, recorded in received_activity (duplicates ignored); garbage -> 400."""
    ap_id = f"https://remote.test/activities/{inbox.replace('/', '-')}"
    body = json.dumps({"id": ap_id, "type": "Create", "actor": "https://remote.test/u/x"}).encode()
    headers = {"Content-Type": "application/activity+json"}
    assert servers["new"].get(inbox, method="POST", body=body, headers=headers).status == 200
    assert servers["new"].get(inbox, method="POST", body=body, headers=headers).status == 200
    assert postgres_module.query("SELECT standin_inbox FROM received_activity WHERE ap_id = %s", (ap_id,)) == [(inbox,)]
    assert servers["new"].get(inbox, method="POST", body=b"not json", headers=headers).status == 400


def test_feeds_and_sitemap(servers: dict[str, LemmyProcess]) -> None:
    """/feeds/*.xml answer RSS and /sitemap.xml a sitemap (both backend routes)."""
    feed = servers["new"].get("/feeds/local.xml")
    assert feed.status == 200 and feed.headers["content-type"] == "application/rss+xml" and b"<rss" in feed.body
    sitemap = servers["new"].get("/sitemap.xml")
    assert sitemap.status == 200 and b"<urlset" in sitemap.body


def test_process_header_and_whoami(servers: dict[str, LemmyProcess]) -> None:
    """Diagnostics: X-Standin-Process names host/container/pid; /api/v3/standin/whoami echoes it and the keyed IP."""
    proc = servers["new"]
    reply = proc.get("/api/v3/standin/whoami", headers={"X-Forwarded-For": "203.0.113.9"})
    container_id = proc.container.inspect("{{.Id}}")[:12]
    assert container_id in reply.headers["x-standin-process"]
    assert reply.json()["process"] == reply.headers["x-standin-process"]
    assert reply.json()["ip"] == "203.0.113.9"
    assert servers["old"].get("/nodeinfo/2.0.json").headers["x-standin-process"] != reply.headers["x-standin-process"]


def test_http_1_1_keep_alive(servers: dict[str, LemmyProcess]) -> None:
    """HTTP/1.1 keep-alive: several requests on one connection."""
    conn = http.client.HTTPConnection("127.0.0.1", servers["new"].port, timeout=30)
    try:
        conn.request("GET", "/nodeinfo/2.1")
        first = conn.getresponse()
        first.read()
        sock = conn.sock
        assert first.version == 11 and not first.will_close
        conn.request("GET", "/api/v3/post/list")
        second = conn.getresponse()
        assert second.status == 200 and second.read()
        assert conn.sock is sock, "the connection was not reused"
    finally:
        conn.close()


def test_pictrs_proxy_routes_with_api_key(servers: dict[str, LemmyProcess], pictrs_double: FakePictrs,
                                          postgres_module: PgDatabase) -> None:
    """/pictrs/* is proxied to pictrs.url (healthz, upload recorded in local_image, original, thumbnail) with x-api-token."""
    proc = servers["new"]
    assert proc.get("/pictrs/healthz").status == 200
    assert pictrs_double.last()["path"] == "/healthz"
    assert pictrs_double.last()["headers"].get("x-api-token") == PICTRS_KEY
    upload = proc.get("/pictrs/image", method="POST", body=b"--b\r\nimage\r\n--b--\r\n",
                      headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert upload.status == 201, upload
    alias = upload.json()["files"][0]["file"]
    assert pictrs_double.last()["path"] == "/image" and pictrs_double.last()["body"] == b"--b\r\nimage\r\n--b--\r\n"
    assert postgres_module.query("SELECT count(*) FROM local_image WHERE pictrs_alias = %s", (alias,))[0][0] == 1
    original = proc.get(f"/pictrs/image/{alias}")
    assert original.status == 200 and original.headers["content-type"] == "image/png"
    assert pictrs_double.last()["path"] == f"/image/original/{alias}"
    proc.get(f"/pictrs/image/{alias}?thumbnail=256&format=webp")
    assert pictrs_double.last()["path"] == f"/image/process.webp?src={alias}&thumbnail=256"


def test_pictrs_upload_of_0_19_3_fails_on_renamed_table(servers: dict[str, LemmyProcess], postgres_module: PgDatabase) -> None:
    """Mixed versions: 0.19.3 records uploads in image_upload, which 0.19.4 renamed to local_image -> error answer."""
    before = postgres_module.query("SELECT count(*) FROM local_image")[0][0]
    reply = servers["old"].get("/pictrs/image", method="POST", body=b"x", headers={"Content-Type": "application/octet-stream"})
    assert reply.status == 400
    assert reply.json()["error"] == "unknown" and "image_upload" in reply.json()["message"]
    assert postgres_module.query("SELECT count(*) FROM local_image")[0][0] == before
