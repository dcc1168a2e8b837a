# SPDX-License-Identifier: GPL-3.0-or-later
"""Helpers for the lemmy-ui and pict-rs stand-in contract tests.

The ``*_fixture`` generators are wrapped as fixtures by the test modules.
Containers run with ``--network host``, are named ``fsl-ct-<random>`` and are always
removed. Every wait is a poll on a condition with a deadline and a clear message.
"""
from __future__ import annotations

import http.client
import http.server
import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
STAND_INS = os.path.dirname(HERE)
REPO_ROOT = os.path.dirname(os.path.dirname(STAND_INS))
RUNTIME = "fediscale-standin/runtime:latest"
UI_VERSIONS = ("0.19.3", "0.19.4", "0.19.19", "0.19.20")
PICTRS_VERSION = "0.5.16"


def docker(*args: str, check: bool = True, timeout: float = 120, stdin: bytes | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], input=stdin.decode() if stdin else None, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc


def wait_for(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.05) -> Any:
    """Poll condition() until it returns a truthy value; fail naming what was awaited."""
    deadline = time.monotonic() + timeout
    last_exc: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-except
            last_exc = exc
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}" + (f" (last error: {last_exc})" if last_exc else ""))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def http_get(port: int, path: str, headers: dict[str, str] | None = None, method: str = "GET", body: bytes | None = None,
             host: str = "127.0.0.1", timeout: float = 30) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


# -- images ------------------------------------------------------------------

def _source_digest(directory: str) -> str:
    """The digest tests/stand_ins/build.sh labels an image with (same shell pipeline)."""
    script = "cd \"$1\" && find . -type f -not -path './build/*' -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12"
    out = subprocess.run(["bash", "-c", script, "digest", directory], capture_output=True, text=True, check=True,
                         env={**os.environ, "LC_ALL": "C"})
    return out.stdout.strip()


def ensure_image(directory: str, image: str, version: str) -> str:
    """Build <image>:<version> like build.sh when it is missing or older than its sources."""
    tag = f"{image}:{version}"
    if docker("image", "inspect", RUNTIME, check=False).returncode != 0:
        pytest.fail(f"{RUNTIME} is missing: run tests/lab/build_images.sh and tests/stand_ins/build.sh first")
    runtime_digest = _source_digest(os.path.join(STAND_INS, "runtime"))
    wanted = f"{_source_digest(os.path.join(STAND_INS, directory))}-{runtime_digest}"
    label = docker("image", "inspect", "-f", '{{ index .Config.Labels "org.fediscale.standin.source" }}', tag, check=False)
    if label.returncode == 0 and label.stdout.strip() == wanted:
        return tag
    pylib = os.path.join(STAND_INS, "build", "pylib")
    members = [directory] + (["build/pylib"] if os.path.isdir(pylib) else [])
    tar = subprocess.run(["tar", "-C", STAND_INS, "-c", *members], capture_output=True, check=True).stdout
    proc = subprocess.run(["docker", "build", "-q", "-f", f"{directory}/Dockerfile", "--build-arg", f"RUNTIME={RUNTIME}",
                           "--build-arg", f"VERSION={version}", "--label", f"org.fediscale.standin.source={wanted}",
                           "-t", tag, "-"], input=tar, capture_output=True, timeout=300, check=False)
    if proc.returncode != 0:
        pytest.fail(f"building {tag} failed: {proc.stderr.decode(errors='replace')}")
    return tag


# -- containers --------------------------------------------------------------

class Container:
    def __init__(self, name: str) -> None:
        self.name = name

    def logs(self) -> str:
        proc = docker("logs", self.name, check=False)
        return proc.stdout + proc.stderr

    def state(self) -> dict[str, Any]:
        return json.loads(docker("inspect", "-f", "{{ json .State }}", self.name).stdout)

    def running(self) -> bool:
        return bool(self.state().get("Running"))

    def wait_exit(self, timeout: float) -> int:
        wait_for(lambda: not self.running(), timeout, f"container {self.name} to exit; logs:\n{self.logs()}")
        return int(self.state()["ExitCode"])

    def signal(self, sig: str = "TERM") -> None:
        docker("kill", "-s", sig, self.name)

    def wait_port(self, port: int, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.running():
                raise AssertionError(f"container {self.name} exited early; logs:\n{self.logs()}")
            return port_open(port)
        wait_for(ready, timeout, f"{self.name} to listen on 127.0.0.1:{port}; logs:\n{self.logs()}")


class Containers:
    """Factory for throwaway containers; everything it started is removed at teardown."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def run(self, image: str, env: dict[str, str] | None = None, args: list[str] | None = None,
            volumes: list[str] | None = None, network: str = "host", extra: list[str] | None = None) -> Container:
        name = f"fsl-ct-{uuid.uuid4().hex[:10]}"
        self.names.append(name)
        cmd = ["run", "-d", "--name", name, "--network", network]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for volume in volumes or []:
            cmd += ["-v", volume]
        cmd += extra or []
        cmd += [image, *(args or [])]
        docker(*cmd)
        return Container(name)

    def cleanup(self) -> None:
        for name in self.names:
            docker("rm", "-f", "-v", name, check=False)


def containers_fixture() -> Iterator[Containers]:
    factory = Containers()
    try:
        yield factory
    finally:
        factory.cleanup()


def host_dir_fixture() -> Iterator[Callable[[], str]]:
    """Host directories for bind mounts, owned by the pict-rs uid 991 and removed afterwards."""
    made: list[str] = []

    def make() -> str:
        path = tempfile.mkdtemp(prefix="fsl-ct-")
        os.chmod(path, 0o755)
        os.chown(path, 991, 991)
        made.append(path)
        return path
    yield make
    for path in made:
        shutil.rmtree(path, ignore_errors=True)


# -- a scripted Lemmy backend --------------------------------------------------

def site_response(name: str = "Contract Site", version: str = "0.19.20", setup: bool | None = True) -> dict[str, Any]:
    local_site: dict[str, Any] = {"default_post_listing_type": "Local", "default_sort_type": "Active"}
    if setup is not None:
        local_site["site_setup"] = setup
    return {"version": version, "admins": [], "site_view": {"site": {"name": name}, "local_site": local_site}}


class FakeBackend:
    """A tiny HTTP server on loopback that answers what lemmy-ui asks of lemmy_server."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, dict[str, str]]] = []
        self.site: Any = site_response()
        self.site_status = 200
        self.site_raw: bytes | None = None  # non-JSON body when set
        self.posts: Any = {"posts": [{"post": {"id": 7, "name": "First contract post"}}]}
        self.comments: Any = {"comments": [{"comment": {"id": 3, "content": "A contract comment"}}]}
        self.hold = threading.Event()
        self.hold.set()  # cleared: /api/v3/site blocks until set again
        self.lock = threading.Lock()
        # Keep-alive: which connection (client port) carried each request, which connections ended,
        # the Keep-Alive hint to answer with, and whether to drop a request that arrives on a reused
        # connection without answering (a server closing an idle connection as the request comes in).
        self.connections: list[int] = []
        self.closed: list[int] = []
        self.keepalive_hint: str | None = None
        self.drop_reused = False
        backend = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            served = 0

            def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
                pass

            def finish(self) -> None:
                super().finish()
                with backend.lock:
                    backend.closed.append(int(self.client_address[1]))

            def do_GET(self) -> None:  # noqa: N802
                self.served += 1
                with backend.lock:
                    backend.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
                    backend.connections.append(int(self.client_address[1]))
                if backend.drop_reused and self.served > 1:
                    self.close_connection = True
                    return
                status, body = 404, b'{"error":"not_found"}'
                if self.path.startswith("/api/v3/site"):
                    backend.hold.wait(60)
                    status = backend.site_status
                    body = backend.site_raw if backend.site_raw is not None else json.dumps(backend.site).encode()
                elif self.path.startswith("/api/v3/post/list"):
                    status, body = 200, json.dumps(backend.posts).encode()
                elif self.path.startswith("/api/v3/comment/list"):
                    status, body = 200, json.dumps(backend.comments).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                if backend.keepalive_hint:
                    self.send_header("Keep-Alive", backend.keepalive_hint)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.requests.clear()
            self.connections.clear()
            self.closed.clear()
        self.keepalive_hint, self.drop_reused = None, False
        self.site, self.site_status, self.site_raw = site_response(), 200, None
        self.hold.set()

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _headers in self.requests]

    def close(self) -> None:
        self.hold.set()
        self.server.shutdown()
        self.server.server_close()


# -- moto S3 -------------------------------------------------------------------

def moto_s3_fixture() -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, with one bucket; stopped afterwards."""
    moto = os.path.join(REPO_ROOT, ".venv", "bin", "moto_server")
    if not os.path.exists(moto):
        pytest.fail(f"{moto} is missing: create the project venv (requirements.txt)")
    port = free_port()
    proc = subprocess.Popen(  # pylint: disable=consider-using-with
        [moto, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: port_open(port), 30, f"moto_server on 127.0.0.1:{port}")
        import boto3  # pylint: disable=import-outside-toplevel

        info = {"endpoint": f"http://127.0.0.1:{port}", "bucket": "pictrs-contract", "region": "us-east-1",
                "access_key": "contract-access", "secret_key": "contract-secret"}
        client = boto3.client("s3", endpoint_url=info["endpoint"], region_name=info["region"],
                              aws_access_key_id=info["access_key"], aws_secret_access_key=info["secret_key"])
        client.create_bucket(Bucket=info["bucket"])
        yield info
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def multipart(field: str, filename: str, content: bytes, ctype: str = "image/png") -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\n"
            f"Content-Type: {ctype}\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def png_bytes(width: int = 3, height: int = 2, seed: int = 0) -> bytes:
    import struct  # pylint: disable=import-outside-toplevel
    import zlib  # pylint: disable=import-outside-toplevel

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload) & 0xFFFFFFFF)

    raw = (b"\x00" + bytes([seed % 256, 40, 90]) * width) * height
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))
