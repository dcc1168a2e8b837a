# SPDX-License-Identifier: GPL-3.0-or-later
"""Shared fixtures for the stand-in contract tests.

* ``postgres``: a fresh database (own role and password) in a throwaway PostgreSQL 15 cluster
  that listens on 127.0.0.1 (and on the docker0 gateway, for bridge-network containers).
  One cluster per pytest(-xdist) worker, removed at the end of the session.
* ``run_container`` / ``containers``: start docker containers (default ``--network host``) named
  ``fsl-ct-<random>``; every container is force-removed when the test ends, pass or fail.
* ``wait_until``, ``free_port``, ``http_request``: polling and HTTP helpers (no fixed sleeps).
"""
from __future__ import annotations

import contextlib
import dataclasses
import http.client
import ipaddress
import json
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

PG_BIN = os.environ.get("STANDIN_PG_BIN", "/usr/lib/postgresql/15/bin")
NAME_PREFIX = "fsl-ct-"


# --------------------------------------------------------------------------- generic helpers

def wait_until(condition: Callable[[], Any], timeout: float, what: str, step: float = 0.1) -> Any:
    """Poll condition() until it returns something truthy; fail with a message naming `what`."""
    deadline = time.monotonic() + timeout
    last_exc: BaseException | None = None
    while True:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # pylint: disable=broad-except
            last_exc = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_exc!r})" if last_exc else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(step)


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class HttpReply:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def http_request(port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None, body: bytes | None = None,
                 host: str = "127.0.0.1", timeout: float = 30) -> HttpReply:
    """One HTTP/1.1 request; header names in the reply are lower-case."""
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        data = resp.read()
        return HttpReply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, data)
    finally:
        conn.close()


def docker_cli(*args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed with {proc.returncode}: {proc.stderr.strip()}")
    return proc


def require_image(image: str) -> None:
    if docker_cli("image", "inspect", image, check=False).returncode != 0:
        raise AssertionError(f"image {image} is missing: build the stand-ins first with `bash tests/stand_ins/build.sh`")


# --------------------------------------------------------------------------- PostgreSQL

def _as_postgres(cmd: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _bridge_gateway() -> str | None:
    """The host's address on docker's default bridge (the gateway, or else the subnet's first host)."""
    proc = docker_cli("network", "inspect", "bridge", "-f", "{{json .IPAM.Config}}", check=False)
    try:
        config = json.loads(proc.stdout or "[]") or []
    except ValueError:
        return None
    for item in config:
        if item.get("Gateway"):
            return str(item["Gateway"])
        if item.get("Subnet") and ":" not in item["Subnet"]:
            return str(next(ipaddress.ip_network(item["Subnet"]).hosts()))
    return None


@dataclasses.dataclass
class PgCluster:
    port: int
    password: str
    datadir: str
    bridge_host: str | None

    def connect(self, dbname: str = "postgres") -> Any:
        conn = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", password=self.password, dbname=dbname)
        conn.autocommit = True
        return conn


@dataclasses.dataclass
class PgDatabase:
    """A fresh database owned by its own role. Reachable from `--network host` containers at host:port."""

    host: str
    port: int
    user: str
    password: str
    dbname: str
    bridge_host: str | None = None

    @property
    def uri(self) -> str:
        return f"postgres://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}"

    def connect(self) -> Any:
        conn = psycopg2.connect(host=self.host, port=self.port, user=self.user, password=self.password, dbname=self.dbname)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.query(sql, params)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """A throwaway PostgreSQL cluster for this test session (or xdist worker)."""
    if not os.path.exists(os.path.join(PG_BIN, "initdb")):
        raise AssertionError(f"PostgreSQL binaries not found in {PG_BIN} (set STANDIN_PG_BIN)")
    root = tempfile.mkdtemp(prefix="fsl-ct-pg-")
    os.chmod(root, 0o755)
    datadir = os.path.join(root, "data")
    password = secrets.token_hex(12)
    pwfile = os.path.join(root, "pw")
    with open(pwfile, "w", encoding="utf-8") as handle:
        handle.write(password + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        shutil.chown(pwfile, "postgres", "postgres")
    subprocess.run(_as_postgres([f"{PG_BIN}/initdb", "-D", datadir, "-U", "postgres", "--auth=scram-sha-256",
                                 f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync"]), check=True, capture_output=True)
    gateway = _bridge_gateway()
    with open(os.path.join(datadir, "pg_hba.conf"), "a", encoding="utf-8") as handle:
        if gateway:
            handle.write("host all all 172.16.0.0/12 scram-sha-256\n")
    listen = "127.0.0.1" + (f",{gateway}" if gateway else "")
    port = free_port()
    options = (f"-c listen_addresses={listen} -c port={port} -c unix_socket_directories={root} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=32MB")
    subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", datadir, "-l", os.path.join(root, "log"), "-o", options, "-w", "start"]),
                   check=True, capture_output=True)
    cluster = PgCluster(port=port, password=password, datadir=datadir, bridge_host=gateway)
    try:
        wait_until(lambda: cluster.connect().close() or True, 30, "the test PostgreSQL cluster to accept connections")
        yield cluster
    finally:
        subprocess.run(_as_postgres([f"{PG_BIN}/pg_ctl", "-D", datadir, "-m", "immediate", "-w", "stop"]), check=False, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def _fresh_database(cluster: PgCluster) -> Iterator[PgDatabase]:
    name = "ct_" + uuid.uuid4().hex[:12]
    password = secrets.token_hex(10)
    admin = cluster.connect()
    try:
        with admin.cursor() as cur:
            cur.execute(f"CREATE ROLE {name} LOGIN PASSWORD %s", (password,))
            cur.execute(f"CREATE DATABASE {name} OWNER {name}")
    finally:
        admin.close()
    try:
        yield PgDatabase(host="127.0.0.1", port=cluster.port, user=name, password=password, dbname=name, bridge_host=cluster.bridge_host)
    finally:
        admin = cluster.connect()
        try:
            with admin.cursor() as cur:
                cur.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                cur.execute(f"DROP ROLE IF EXISTS {name}")
        finally:
            admin.close()


@pytest.fixture
def postgres(pg_cluster: PgCluster) -> Iterator[PgDatabase]:
    """A fresh, empty database and role (host/port/user/password/dbname, .uri); dropped after the test."""
    with _fresh_database(pg_cluster) as db:
        yield db


@pytest.fixture(scope="module")
def postgres_module(pg_cluster: PgCluster) -> Iterator[PgDatabase]:
    """Like `postgres`, shared by the tests of one module."""
    with _fresh_database(pg_cluster) as db:
        yield db


# --------------------------------------------------------------------------- containers

@dataclasses.dataclass
class Container:
    name: str

    def inspect(self, fmt: str) -> str:
        return docker_cli("inspect", "-f", fmt, self.name).stdout.strip()

    def running(self) -> bool:
        return self.inspect("{{.State.Running}}") == "true"

    def exit_code(self) -> int | None:
        """The exit code once the container has stopped, else None."""
        if self.running():
            return None
        return int(self.inspect("{{.State.ExitCode}}"))

    def wait_exit(self, timeout: float = 60) -> int:
        """Block until the container exits (docker wait); returns its exit code."""
        try:
            proc = docker_cli("wait", self.name, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"timed out after {timeout:g} s waiting for container {self.name} to exit:\n{self.output()}") from None
        return int(proc.stdout.strip().splitlines()[-1])

    def logs(self) -> tuple[str, str]:
        proc = docker_cli("logs", self.name, check=False)
        return proc.stdout, proc.stderr

    def output(self) -> str:
        out, err = self.logs()
        return out + err

    def signal(self, sig: str) -> None:
        docker_cli("kill", "-s", sig, self.name)

    def exec(self, *cmd: str) -> subprocess.CompletedProcess[str]:
        return docker_cli("exec", self.name, *cmd, check=False)


class Containers:
    """Starts containers and removes every one of them at teardown."""

    def __init__(self) -> None:
        self.created: list[str] = []

    def run(self, image: str, args: list[str] | tuple[str, ...] = (), env: dict[str, str] | None = None,
            volumes: list[str] | None = None, network: str = "host", user: str | None = None,
            extra: list[str] | None = None) -> Container:
        """`docker run -d` the image with argv `args`; returns at once (the container may still be starting)."""
        require_image(image)
        name = f"{NAME_PREFIX}{uuid.uuid4().hex[:10]}"
        cmd = ["run", "-d", "--name", name, "--network", network, "--label", "org.fediscale.contract-test=1"]
        if user:
            cmd += ["--user", user]
        for key, value in (env or {}).items():
            cmd += ["-e", f"{key}={value}"]
        for volume in volumes or []:
            cmd += ["-v", volume]
        cmd += extra or []
        self.created.append(name)
        docker_cli(*cmd, image, *args)
        return Container(name)

    def run_to_exit(self, image: str, args: list[str] | tuple[str, ...] = (), timeout: float = 60, **kwargs: Any) -> tuple[int, str, str]:
        """Run a container to completion; returns (exit code, stdout, stderr)."""
        container = self.run(image, args, **kwargs)
        code = container.wait_exit(timeout)
        out, err = container.logs()
        return code, out, err

    def cleanup(self) -> None:
        for name in self.created:
            docker_cli("rm", "-f", "-v", name, check=False)
        self.created.clear()


@pytest.fixture
def containers() -> Iterator[Containers]:
    helper = Containers()
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture(scope="module")
def containers_module() -> Iterator[Containers]:
    """Like `containers`, removed at the end of the module."""
    helper = Containers()
    try:
        yield helper
    finally:
        helper.cleanup()


@pytest.fixture
def run_container(containers: Containers) -> Callable[..., Container]:
    """Shortcut for `containers.run(image, args, env=..., volumes=..., network="host")`."""
    return containers.run


@contextlib.contextmanager
def _config_dir() -> Iterator[str]:
    path = tempfile.mkdtemp(prefix="fsl-ct-cfg-")
    os.chmod(path, 0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def tmp_config_dir() -> Iterator[str]:
    """A directory for config files that containers mount (readable by uid 1000)."""
    with _config_dir() as path:
        yield path


@pytest.fixture(scope="module")
def tmp_config_dir_module() -> Iterator[str]:
    with _config_dir() as path:
        yield path


# --------------------------------------------------------------------------- lemmy_server stand-in

LEMMY_IMAGE = os.environ.get("STANDIN_LEMMY_IMAGE", "fediscale-standin/lemmy")
LEMMY_VERSIONS = ("0.19.3", "0.19.4", "0.19.19", "0.19.20")
LEMMY_HOSTNAME = "lemmy.test"


@dataclasses.dataclass
class LemmyProcess:
    container: Container
    port: int
    version: str

    def get(self, path: str, headers: dict[str, str] | None = None, method: str = "GET", body: bytes | None = None) -> HttpReply:
        return http_request(self.port, path, method=method, headers=headers, body=body)

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the real routes answer (the startup server answers 503 to everything)."""
        def ready() -> bool:
            try:
                if self.get("/.well-known/nodeinfo").status == 200:
                    return True
            except OSError:
                pass
            if not self.container.running():
                raise AssertionError(f"{self.container.name} exited with {self.container.exit_code()}:\n{self.container.output()}")
            return False
        try:
            wait_until(ready, timeout, f"lemmy_server {self.version} on port {self.port} to serve")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n--- container output ---\n{self.container.output()}") from None

    def stop(self, sig: str = "TERM", timeout: float = 60) -> int:
        self.container.signal(sig)
        return self.container.wait_exit(timeout)


class LemmyRunner:
    """Writes lemmy_server configs and starts stand-in containers against one test database."""

    def __init__(self, containers: Containers, db: PgDatabase, cfg_dir: str) -> None:
        self.containers = containers
        self.db = db
        self.cfg_dir = cfg_dir

    def config(self, port: int, body: str | None = None, extra: str = "", setup: bool = True) -> str:
        """A config file (real hjson syntax: comments, quoteless strings, no commas)."""
        if body is None:
            setup_block = ("  setup: {\n    admin_username: admin\n    admin_password: correct-horse-battery\n"
                           "    site_name: Contract Test\n  }\n") if setup else ""
            body = ("{\n  # contract test config\n  hostname: " + LEMMY_HOSTNAME + "\n  port: " + str(port) + "\n"
                    "  bind: 127.0.0.1\n  database: {\n    uri: \"" + self.db.uri + "\"\n  }\n"
                    "  worker_count: 0  // unknown top-level keys are ignored\n" + setup_block + extra + "}\n")
        path = os.path.join(self.cfg_dir, f"lemmy-{uuid.uuid4().hex[:8]}.hjson")
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(body)
        if os.geteuid() == 0:
            os.chown(path, 1000, 1000)
            os.chmod(path, 0o600)
        else:
            os.chmod(path, 0o644)
        return path

    def start(self, version: str = "0.19.20", args: tuple[str, ...] | list[str] = (), port: int | None = None,
              config_path: str | None = None, env: dict[str, str] | None = None, migration_seconds: float = 0.3,
              scheduler_period: float = 2, sender_period: float = 0.3, mount: str = "/config/config.hjson",
              network: str = "host", extra_extra: str = "", setup: bool = True) -> LemmyProcess:
        port = port or free_port()
        config_path = config_path or self.config(port, extra=extra_extra, setup=setup)
        full_env = {"STANDIN_MIGRATION_SECONDS": str(migration_seconds), "STANDIN_SCHEDULER_PERIOD_SECONDS": str(scheduler_period),
                    "STANDIN_SENDER_PERIOD_SECONDS": str(sender_period)}
        full_env.update(env or {})
        container = self.containers.run(f"{LEMMY_IMAGE}:{version}", list(args), env=full_env, volumes=[f"{config_path}:{mount}:ro"],
                                        network=network)
        return LemmyProcess(container, port, version)

    def run_to_exit(self, version: str = "0.19.20", args: tuple[str, ...] | list[str] = (), config_path: str | None = None,
                    env: dict[str, str] | None = None, timeout: float = 60, mount: str = "/config/config.hjson") -> tuple[int, str, str]:
        proc = self.start(version, args, config_path=config_path, env=env, mount=mount)
        code = proc.container.wait_exit(timeout)
        out, err = proc.container.logs()
        return code, out, err

    def migrate(self, version: str = "0.19.20") -> None:
        """Bring the database to `version`'s schema (and first-start setup), then stop."""
        if tuple(int(p) for p in version.split(".")) >= (0, 19, 4):
            code, out, err = self.run_to_exit(version, ["--disable-http-server", "--disable-scheduled-tasks", "--disable-activity-sending"])
            assert code == 0, out + err
            return
        proc = self.start(version, ["--disable-scheduled-tasks", "--disable-activity-sending"])
        proc.wait_ready()
        assert proc.stop() == 0, proc.container.output()


@pytest.fixture
def lemmy(containers: Containers, postgres: PgDatabase, tmp_config_dir: str) -> LemmyRunner:
    return LemmyRunner(containers, postgres, tmp_config_dir)


@pytest.fixture(scope="module")
def lemmy_module(containers_module: Containers, postgres_module: PgDatabase, tmp_config_dir_module: str) -> LemmyRunner:
    """A LemmyRunner whose database and containers live for the whole test module."""
    return LemmyRunner(containers_module, postgres_module, tmp_config_dir_module)
