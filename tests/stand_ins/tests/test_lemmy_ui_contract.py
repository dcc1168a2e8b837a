# SPDX-License-Identifier: GPL-3.0-or-later
"""Contract tests of the lemmy-ui stand-in image (facts §6), against real containers."""
from __future__ import annotations

import hashlib
import http.client
import json
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from _ui_pictrs_helpers import (
    UI_VERSIONS,
    Container,
    Containers,
    FakeBackend,
    containers_fixture,
    docker,
    ensure_image,
    free_port,
    http_get,
    port_open,
    site_response,
    wait_for,
)

REAL_HASHES = {"0.19.19": "0799f19b", "0.19.20": "18ec4ba2"}  # facts §6
POST_LIST = "/api/v3/post/list?type_=Local&limit=20&sort=Active&saved_only=false&show_hidden=false"


@pytest.fixture(scope="module")
def ui_images() -> dict[str, str]:
    return {v: ensure_image("lemmy_ui", "fediscale-standin/lemmy-ui", v) for v in UI_VERSIONS}


@pytest.fixture(scope="module")
def module_containers() -> Iterator[Containers]:
    yield from containers_fixture()


@pytest.fixture
def docker_run() -> Iterator[Containers]:
    yield from containers_fixture()


@pytest.fixture(scope="module")
def backend() -> Iterator[FakeBackend]:
    server = FakeBackend()
    yield server
    server.close()


@pytest.fixture
def fresh_backend(backend: FakeBackend) -> Iterator[FakeBackend]:
    backend.reset()
    yield backend
    backend.reset()


def start_ui(factory: Containers, image: str, backend_address: str, **env: str) -> tuple[Container, int]:
    port = free_port()
    container = factory.run(image, env={"LEMMY_UI_HOST": f"127.0.0.1:{port}", "LEMMY_UI_LEMMY_INTERNAL_HOST": backend_address, **env})
    container.wait_port(port)
    return container, port


@pytest.fixture(scope="module")
def ui_per_version(module_containers: Containers, ui_images: dict[str, str], backend: FakeBackend) -> dict[str, tuple[Container, int]]:
    """One UI container per version against the fake backend, started together."""
    started = {}
    for version, image in ui_images.items():
        port = free_port()
        started[version] = (module_containers.run(image, env={"LEMMY_UI_HOST": f"127.0.0.1:{port}",
                                                              "LEMMY_UI_LEMMY_INTERNAL_HOST": backend.address}), port)
    for container, port in started.values():
        container.wait_port(port)
    return started


@pytest.fixture(scope="module")
def ui(ui_per_version: dict[str, tuple[Container, int]]) -> int:
    """The port of the 0.19.20 UI."""
    return ui_per_version["0.19.20"][1]


@pytest.fixture(scope="module")
def ui_dists(ui_images: dict[str, str]) -> Iterator[dict[str, str]]:
    """Each version's /app/dist copied out of its image, as the deployment does."""
    with tempfile.TemporaryDirectory() as tmp:
        dists = {}
        for version, image in ui_images.items():
            name = f"fsl-ct-cp-{os.urandom(5).hex()}"
            docker("create", "--name", name, image)
            try:
                dists[version] = os.path.join(tmp, version)
                docker("cp", f"{name}:/app/dist", dists[version])
            finally:
                docker("rm", "-f", name, check=False)
        yield dists


def read_text(path: str) -> str:
    with open(path, encoding="utf-8") as handle:
        return handle.read()


def tree_digest(root: str) -> dict[str, str]:
    out = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as handle:
                out[os.path.relpath(path, root)] = hashlib.sha256(handle.read()).hexdigest()
    return out


def own_hash(dist: str) -> str:
    found = set(re.findall(r'"/static/([0-9a-f]+)', read_text(os.path.join(dist, "js", "server.js"))))
    assert len(found) == 1, found
    return found.pop()


def html_hashes(text: str) -> set[str]:
    return set(re.findall(r"/static/([0-9a-f]+)/", text))


# -- rendering -----------------------------------------------------------------

def test_ui_renders_front_page_from_backend(ui: int, fresh_backend: FakeBackend) -> None:
    fresh_backend.site = site_response(name="Contract Site", version="0.19.20-backend")
    status, headers, body = http_get(ui, "/")
    text = body.decode()
    assert status == 200, text
    assert headers["content-type"].startswith("text/html")
    assert "<title>Contract Site</title>" in text
    assert "BE: 0.19.20-backend" in text and "UI: 0.19.20" in text
    assert "First contract post" in text
    assert fresh_backend.paths() == ["/api/v3/site", POST_LIST]
    assert headers["cache-control"] == "public, max-age=60"


def test_ui_front_page_comment_view_calls_comment_list(ui: int, fresh_backend: FakeBackend) -> None:
    status, _headers, body = http_get(ui, "/?dataType=Comment")
    assert status == 200
    assert "A contract comment" in body.decode()
    paths = fresh_backend.paths()
    assert paths[0] == "/api/v3/site"
    assert paths[1].startswith("/api/v3/comment/list?") and "type_=Local" in paths[1] and "limit=20" in paths[1]


def test_ui_forwards_client_ip_and_jwt_to_backend(ui: int, fresh_backend: FakeBackend) -> None:
    status, headers, _body = http_get(ui, "/", headers={"X-Real-IP": "198.51.100.7", "X-Forwarded-For": "198.51.100.7, 10.0.0.1",
                                                        "Cookie": "jwt=tok123", "Host": "lemmy.example.org"})
    assert status == 200
    assert headers["cache-control"] == "private"
    assert len(fresh_backend.requests) == 2
    for _path, sent in fresh_backend.requests:
        assert sent["x-real-ip"] == "198.51.100.7"
        assert sent["x-forwarded-for"] == "198.51.100.7, 10.0.0.1"
        assert sent["authorization"] == "Bearer tok123"
        assert sent["host"] == "lemmy.example.org"  # lemmy-ui forwards Host too (set-forwarded-headers.ts)


@pytest.mark.parametrize("path", ["/post/1", "/c/x", "/u/someone", "/communities"])
def test_ui_catch_all_renders_any_route(ui: int, fresh_backend: FakeBackend, path: str) -> None:
    status, _headers, body = http_get(ui, path)
    assert status == 200
    assert "<title>Contract Site</title>" in body.decode()
    assert fresh_backend.paths()[0] == "/api/v3/site"


def test_ui_unknown_route_renders_404_page(ui: int, fresh_backend: FakeBackend) -> None:
    status, headers, body = http_get(ui, "/no/such/page")
    assert status == 404
    assert headers["content-type"].startswith("text/html") and "<html" in body.decode()
    assert fresh_backend.paths() == ["/api/v3/site"]


@pytest.mark.parametrize("setup", [False, None], ids=["site_setup_false", "site_setup_missing"])
def test_ui_redirects_to_setup_when_site_not_set_up(ui: int, fresh_backend: FakeBackend, setup: bool | None) -> None:
    fresh_backend.site = site_response(setup=setup)
    status, headers, _body = http_get(ui, "/")
    assert status == 302
    assert headers["location"] == "/setup"


def test_ui_missing_site_is_plain_server_error(ui: int, fresh_backend: FakeBackend) -> None:
    fresh_backend.site = {"version": "0.19.20", "admins": [], "site_view": {"local_site": {"site_setup": True}}}
    status, _headers, body = http_get(ui, "/")
    assert status == 500
    assert body == b"Server error"


@pytest.mark.parametrize("mode", ["status_404", "not_json"])
def test_ui_backend_error_gives_500_error_page(ui: int, fresh_backend: FakeBackend, mode: str) -> None:
    if mode == "status_404":
        fresh_backend.site_status = 404
    else:
        fresh_backend.site_raw = b"<html>not json</html>"
    status, headers, body = http_get(ui, "/")
    assert status == 500
    assert headers["content-type"].startswith("text/html")
    assert "<html" in body.decode() and "Error" in body.decode()


def test_ui_backend_down_gives_500_error_page(docker_run: Containers, ui_images: dict[str, str]) -> None:
    closed = free_port()  # nothing listens there
    _container, port = start_ui(docker_run, ui_images["0.19.20"], f"127.0.0.1:{closed}")
    status, headers, body = http_get(port, "/")
    assert status == 500
    assert headers["content-type"].startswith("text/html") and "<html" in body.decode()


def test_ui_renders_against_lemmy_server_standin(docker_run: Containers, ui_images: dict[str, str], lemmy: Any) -> None:
    """End to end with the lemmy_server stand-in (its own database from the shared `postgres` fixture)."""
    if docker("image", "inspect", "fediscale-standin/lemmy:0.19.20", check=False).returncode != 0:
        pytest.skip("fediscale-standin/lemmy:0.19.20 is not built (tests/stand_ins/build.sh)")
    backend_proc = lemmy.start("0.19.20", ["--disable-scheduled-tasks", "--disable-activity-sending"])
    backend_proc.wait_ready()
    _container, port = start_ui(docker_run, ui_images["0.19.20"], f"127.0.0.1:{backend_proc.port}")
    status, _headers, body = http_get(port, "/", headers={"X-Forwarded-For": "203.0.113.9"})
    text = body.decode()
    assert status == 200, text
    assert "<title>Contract Test</title>" in text
    assert "BE: 0.19.20" in text


# -- static assets and the per-version hash ---------------------------------------

def test_ui_server_js_names_exactly_one_static_hash_per_version(ui_dists: dict[str, str]) -> None:
    hashes = {}
    for version, dist in ui_dists.items():
        found = set(re.findall(r'"/static/([0-9a-f]+)', read_text(os.path.join(dist, "js", "server.js"))))
        assert len(found) == 1, f"{version}: {found}"
        hashes[version] = found.pop()
        assert re.fullmatch(r"[0-9a-f]{8}", hashes[version])
    for version, real in REAL_HASHES.items():
        assert hashes[version] == real
    assert len(set(hashes.values())) == len(UI_VERSIONS), hashes


@pytest.mark.parametrize("version", UI_VERSIONS)
def test_ui_serves_own_static_hash_and_404s_other_hashes(ui_per_version: dict[str, tuple[Container, int]], ui_dists: dict[str, str],
                                                         fresh_backend: FakeBackend, version: str) -> None:
    port = ui_per_version[version][1]
    own = own_hash(ui_dists[version])
    status, _headers, body = http_get(port, "/")
    assert status == 200
    text = body.decode()
    assert html_hashes(text) == {own}
    for ref in ("js/client.js", "styles/styles.css"):
        assert f"/static/{own}/{ref}" in text
    icon = re.search(rf"/static/{own}/assets/icons/[^\"]+", text)
    assert icon, text
    assert 'href="/css/themes/litely.css"' in text
    for path in (f"/static/{own}/js/client.js", f"/static/{own}/styles/styles.css", icon.group(0)):
        status, headers, body = http_get(port, path)
        assert status == 200, path
        assert headers["cache-control"] == "public, max-age=86400, immutable"
        with open(os.path.join(ui_dists[version], path.split("/", 3)[3]), "rb") as handle:
            assert body == handle.read(), path
    for other in {h for v, h in REAL_HASHES.items() if h != own} | {"0000abcd"}:
        status, headers, body = http_get(port, f"/static/{other}/js/client.js")
        assert status == 404
        assert headers["content-type"].startswith("text/html") and b"<html" in body


def test_ui_versions_ship_different_files(ui_dists: dict[str, str]) -> None:
    trees = {version: tree_digest(dist) for version, dist in ui_dists.items()}
    for rel in trees["0.19.20"]:
        contents = {tree.get(rel) for tree in trees.values()}
        assert len(contents) == len(UI_VERSIONS), f"dist/{rel} is the same in two versions"


def test_ui_unhashed_routes(ui: int, fresh_backend: FakeBackend) -> None:
    status, headers, litely = http_get(ui, "/css/themes/litely.css")
    assert status == 200 and headers["content-type"].startswith("text/css") and b"litely" in litely
    status, _headers, darkly = http_get(ui, "/css/themes/darkly.css")
    assert status == 200 and b"darkly" in darkly
    status, _headers, unknown = http_get(ui, "/css/themes/no-such-theme.css")
    assert status == 200 and unknown == litely
    status, _headers, code = http_get(ui, "/css/code-themes/atom-one-dark.css")
    assert status == 200 and b"atom-one-dark" in code
    for path, ctype in (("/robots.txt", "text/plain"), ("/manifest.webmanifest", "application/manifest+json"),
                        ("/service-worker.js", "application/javascript")):
        status, headers, body = http_get(ui, path)
        assert status == 200 and headers["content-type"].startswith(ctype) and body, path
    assert fresh_backend.paths() == []


# -- environment and image layout ---------------------------------------------------

def test_ui_env_external_host_and_https(docker_run: Containers, ui_images: dict[str, str], backend: FakeBackend) -> None:
    backend.reset()
    _container, port = start_ui(docker_run, ui_images["0.19.20"], backend.address,
                                LEMMY_UI_LEMMY_EXTERNAL_HOST="lemmy.example.org", LEMMY_UI_HTTPS="true")
    text = http_get(port, "/post/1")[2].decode()
    iso = json.loads(re.search(r"window\.isoData = (.*?);</script>", text).group(1))
    assert iso["lemmy_external_host"] == "lemmy.example.org"
    assert 'content="https://lemmy.example.org/post/1"' in text


def test_ui_https_must_be_literal_true(docker_run: Containers, ui_images: dict[str, str], backend: FakeBackend) -> None:
    backend.reset()
    _container, port = start_ui(docker_run, ui_images["0.19.20"], backend.address,
                                LEMMY_UI_LEMMY_EXTERNAL_HOST="lemmy.example.org", LEMMY_UI_HTTPS="1")
    assert 'content="http://lemmy.example.org/"' in http_get(port, "/")[2].decode()


def test_ui_env_defaults_listen_1234_and_backend_8536(docker_run: Containers, ui_images: dict[str, str]) -> None:
    """Without env the UI listens on 0.0.0.0:1234 and asks 0.0.0.0:8536 (own network namespace, so no port clash)."""
    container = docker_run.run(ui_images["0.19.20"], network="bridge")
    address = docker("inspect", "-f", "{{ .NetworkSettings.IPAddress }}", container.name).stdout.strip()
    assert address, "the default bridge network gave the container no address"
    wait_for(lambda: port_open(1234, address), 20, f"UI on {address}:1234; logs:\n{container.logs()}")
    status, _headers, _body = http_get(1234, "/", host=address)
    assert status == 500  # nothing listens on the default backend address inside the container
    assert "0.0.0.0:8536" in container.logs()


def test_ui_image_layout(ui_images: dict[str, str], ui_per_version: dict[str, tuple[Container, int]], ui_dists: dict[str, str]) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{ json .Config }}", ui_images["0.19.20"]).stdout)
    assert config["User"] == "node"
    assert config["WorkingDir"] == "/app"
    assert "1234/tcp" in config["ExposedPorts"]
    container = ui_per_version["0.19.20"][0]
    assert docker("exec", container.name, "id", "-u").stdout.strip() == "1000"
    listing = set(tree_digest(ui_dists["0.19.20"]))
    for needed in ("js/client.js", "js/server.js", "styles/styles.css", "service-worker.js", "assets/css/themes/litely.css",
                   "assets/css/themes/darkly.css"):
        assert needed in listing
    assert any(p.startswith("assets/icons/") for p in listing)
    assert any(p.startswith("assets/css/code-themes/") and p.endswith(".css") for p in listing)
    # A real dist/ is about 680 files and 10+ MB, ~620 of them in js/ (facts §0).
    chunks = [p for p in listing if re.fullmatch(r"js/[0-9]+\.client\.js", p)]
    size = sum(os.path.getsize(os.path.join(ui_dists["0.19.20"], p)) for p in listing)
    assert len(listing) >= 600 and len(chunks) >= 500 and size >= 8_000_000, (len(listing), len(chunks), size)


# -- concurrency and SIGTERM -----------------------------------------------------------

def test_ui_serves_concurrent_keepalive_load(ui: int, fresh_backend: FakeBackend) -> None:
    def client(_n: int) -> list[int]:
        conn = http.client.HTTPConnection("127.0.0.1", ui, timeout=30)
        statuses = []
        try:
            for _request in range(10):
                conn.request("GET", "/")
                resp = conn.getresponse()
                resp.read()
                assert not resp.will_close, "the UI closed a keep-alive connection"
                statuses.append(resp.status)
        finally:
            conn.close()
        return statuses

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = [s for batch in pool.map(client, range(20)) for s in batch]
    assert results == [200] * 200


def test_ui_is_light_on_memory(ui: int, ui_per_version: dict[str, tuple[Container, int]], fresh_backend: FakeBackend) -> None:
    """After serving requests, the UI process stays far below real lemmy-ui's 130-220 MB."""
    for _request in range(20):
        assert http_get(ui, "/")[0] == 200
    status = docker("exec", ui_per_version["0.19.20"][0].name, "cat", "/proc/1/status").stdout
    rss_kib = int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1))
    assert rss_kib < 100 * 1024, f"VmRSS {rss_kib} KiB"


def test_ui_sigterm_idle_exits_143(docker_run: Containers, ui_images: dict[str, str], backend: FakeBackend) -> None:
    """Idle means no request in flight: an open keep-alive connection (as nginx keeps) must not delay the exit."""
    container, port = start_ui(docker_run, ui_images["0.19.20"], backend.address)
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        idle.request("GET", "/robots.txt")
        resp = idle.getresponse()
        resp.read()
        assert resp.status == 200 and not resp.will_close
        container.signal("TERM")
        assert container.wait_exit(5) == 143
    finally:
        idle.close()


def test_ui_sigterm_closes_listener_and_finishes_in_flight(docker_run: Containers, ui_images: dict[str, str],
                                                           fresh_backend: FakeBackend) -> None:
    container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    fresh_backend.hold.clear()
    result: dict[str, object] = {}

    def request() -> None:
        try:
            result["status"] = http_get(port, "/")[0]
        except OSError as exc:
            result["error"] = exc

    worker = threading.Thread(target=request)
    worker.start()
    wait_for(lambda: "/api/v3/site" in fresh_backend.paths(), 10, "the UI to call /api/v3/site")
    container.signal("TERM")
    wait_for(lambda: not port_open(port), 5, "the UI to close its listener after SIGTERM")
    assert container.running(), "the UI exited before finishing the request in flight"
    fresh_backend.hold.set()
    worker.join(30)
    assert result.get("status") == 200, result
    assert container.wait_exit(5) == 143


def test_ui_sigterm_cuts_stuck_request_after_8s(docker_run: Containers, ui_images: dict[str, str], fresh_backend: FakeBackend) -> None:
    container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    fresh_backend.hold.clear()
    outcome: dict[str, object] = {}

    def request() -> None:
        try:
            outcome["status"] = http_get(port, "/", timeout=60)[0]
        except (OSError, http.client.HTTPException) as exc:
            outcome["error"] = exc

    worker = threading.Thread(target=request)
    worker.start()
    wait_for(lambda: "/api/v3/site" in fresh_backend.paths(), 10, "the UI to call /api/v3/site")
    container.signal("TERM")
    code = container.wait_exit(20)
    worker.join(10)
    assert code == 143
    assert "error" in outcome and "status" not in outcome, outcome
    assert "Forced exit" in container.logs()


def test_ui_dist_generator_is_deterministic() -> None:
    """The dist generator is deterministic: the same version gives byte-identical files."""
    here = os.path.dirname(os.path.abspath(__file__))
    gen = os.path.join(os.path.dirname(here), "lemmy_ui", "gen_dist.py")
    outs = []
    for _run in range(2):
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["python3", gen, "--version", "0.19.4", "--out", tmp], check=True, capture_output=True)
            out = subprocess.run(["sh", "-c", "cd \"$1\" && find . -type f | sort | xargs sha256sum", "sh", tmp],
                                 check=True, capture_output=True, text=True).stdout
            outs.append(out)
    assert outs[0] == outs[1] and outs[0]


# -- server-side rendering keeps idle keep-alive connections, like Node's fetch (undici) ------------

def test_ui_ssr_reuses_idle_keepalive_connections(docker_run: Containers, ui_images: dict[str, str], fresh_backend: FakeBackend) -> None:
    """Renders one after the other share one backend connection: it is kept idle and reused."""
    _container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    for _render in range(3):
        assert http_get(port, "/")[0] == 200
    assert len(fresh_backend.connections) == 6  # /site and /post/list per render
    assert len(set(fresh_backend.connections)) == 1, f"each render should reuse the idle connection: {fresh_backend.connections}"
    assert fresh_backend.closed == []


def test_ui_ssr_closes_idle_connections_after_the_keepalive_timeout(docker_run: Containers, ui_images: dict[str, str],
                                                                    fresh_backend: FakeBackend) -> None:
    """Without a Keep-Alive hint an idle connection is closed by the client after undici's 4 s; the next render opens a new one."""
    _container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    assert http_get(port, "/")[0] == 200
    first = fresh_backend.connections[0]
    wait_for(lambda: first in fresh_backend.closed, 15, f"the UI to close its idle connection {first} after 4 s")
    assert http_get(port, "/")[0] == 200
    assert fresh_backend.connections[-1] != first


def test_ui_ssr_honours_the_servers_keepalive_hint(docker_run: Containers, ui_images: dict[str, str], fresh_backend: FakeBackend) -> None:
    """Keep-Alive: timeout=2 leaves nothing after undici's 2 s threshold: every call opens its own connection."""
    fresh_backend.keepalive_hint = "timeout=2"
    _container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    for _render in range(2):
        assert http_get(port, "/")[0] == 200
    assert len(fresh_backend.connections) == 4
    assert len(set(fresh_backend.connections)) == 4, f"no connection may be reused: {fresh_backend.connections}"


def test_ui_ssr_does_not_retry_on_a_reused_connection_the_server_closed(docker_run: Containers, ui_images: dict[str, str],
                                                                        fresh_backend: FakeBackend) -> None:
    """A reused connection that the server closes under the request fails the render with 500, never a second try."""
    _container, port = start_ui(docker_run, ui_images["0.19.20"], fresh_backend.address)
    assert http_get(port, "/")[0] == 200  # leaves one idle connection
    fresh_backend.drop_reused = True
    before = len(fresh_backend.requests)
    status, _headers, body = http_get(port, "/")
    assert status == 500
    assert "fetch failed" in body.decode() and "other side closed" in body.decode()
    assert len(fresh_backend.requests) == before + 1, "the failed call was sent again"
    fresh_backend.drop_reused = False
    assert http_get(port, "/")[0] == 200  # the next render opens a new connection


# -- the image's HEALTHCHECK, and why the lemmy_ui role overrides it --------------------------------

PROBE = "python3 /opt/standin/lemmy_ui/http_probe.py -ILfSs http://localhost:{port}/ > /dev/null || exit 1"


def health(container: Container) -> str:
    return str((container.state().get("Health") or {}).get("Status", "none"))


def test_ui_image_healthcheck_has_the_official_shape(ui_images: dict[str, str]) -> None:
    """The official image: HEALTHCHECK --interval=60s --start-period=10s --retries=2 --timeout=10s CMD curl -ILfSs http://localhost:1234/."""
    check = json.loads(docker("image", "inspect", "-f", "{{ json .Config.Healthcheck }}", ui_images["0.19.20"]).stdout)
    assert check["Test"] == ["CMD-SHELL", PROBE.format(port=1234)]
    assert (check["Interval"], check["StartPeriod"], check["Timeout"], check["Retries"]) == (60 * 10**9, 10 * 10**9, 10 * 10**9, 2)


def test_ui_healthcheck_with_host_networking_needs_each_process_port(docker_run: Containers, ui_images: dict[str, str],
                                                                     fresh_backend: FakeBackend) -> None:
    """Two UI processes with host networking on other ports than 1234: with the image's probe the one that
    serves fine turns unhealthy (it probes 1234); with the probe on its own port it turns healthy."""
    assert not port_open(1234), "port 1234 on this host is taken: the test needs it free to show the image's probe missing"
    fast = ["--health-interval", "1s", "--health-start-period", "1s", "--health-timeout", "10s"]
    image_probe_port, own_probe_port = free_port(), free_port()
    image_probe = docker_run.run(ui_images["0.19.20"], env={"LEMMY_UI_HOST": f"0.0.0.0:{image_probe_port}",
                                                            "LEMMY_UI_LEMMY_INTERNAL_HOST": fresh_backend.address}, extra=fast)
    own_probe = docker_run.run(ui_images["0.19.20"], env={"LEMMY_UI_HOST": f"0.0.0.0:{own_probe_port}",
                                                          "LEMMY_UI_LEMMY_INTERNAL_HOST": fresh_backend.address},
                               extra=fast + ["--health-cmd", PROBE.format(port=own_probe_port)])
    image_probe.wait_port(image_probe_port)
    own_probe.wait_port(own_probe_port)
    assert http_get(image_probe_port, "/", method="HEAD")[0] == 200  # it serves fine
    wait_for(lambda: health(own_probe) == "healthy", 30, f"{own_probe.name} (probe on {own_probe_port}) to be healthy")
    wait_for(lambda: health(image_probe) == "unhealthy", 30, f"{image_probe.name} (image probe on 1234) to be unhealthy")
    log = image_probe.state()["Health"]["Log"][-1]
    assert log["ExitCode"] == 1
