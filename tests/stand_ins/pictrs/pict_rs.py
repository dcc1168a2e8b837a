# SPDX-License-Identifier: GPL-3.0-or-later
"""pict-rs 0.5 stand-in: the HTTP API Lemmy uses, with pict-rs' repo and store choices.

Configuration is layered like pict-rs: built-in defaults, then the TOML file given
with ``-c``/``--config-file``, then ``PICTRS__SECTION__KEY`` environment variables,
then ``run`` options. Repos: ``sled`` (a local directory, locked exclusively so a
second process on the same data fails at start) or ``postgres`` (shared metadata).
Stores: ``filesystem`` or ``object_storage`` (S3, through boto3). Media is only
sniffed for its format, never transcoded.
"""
from __future__ import annotations

import copy
import datetime
import email.parser
import email.policy
import fcntl
import http.server
import json
import os
import re
import signal
import socket
import sqlite3
import struct
import sys
import threading
import time
import tomllib
import urllib.parse
import uuid
from typing import Any

VERSION = os.environ.get("STANDIN_PICTRS_VERSION", "0.5.16")
MAX_BODY = 40 * 1024 * 1024  # media.max_file_size default: 40 MB
GRACE = 30.0  # seconds in-flight requests get after SIGTERM

DEFAULTS: dict[str, Any] = {
    "server": {"address": "0.0.0.0:8080", "api_key": None, "max_file_count": 1},
    "repo": {"type": "sled", "path": "/mnt/sled-repo", "url": None},
    "store": {
        "type": "filesystem", "path": "/mnt/files", "endpoint": None, "bucket_name": None,
        "region": None, "use_path_style": False, "access_key": None, "secret_key": None,
        "session_token": None,
    },
}


class StartupError(Exception):
    """Bad configuration or unusable repo/store: printed, then exit 1."""


class ApiError(Exception):
    def __init__(self, status: int, msg: str, code: str) -> None:
        super().__init__(msg)
        self.status = status
        self.msg = msg
        self.code = code


# -- configuration -----------------------------------------------------------

def _merge(into: dict[str, Any], other: dict[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def _env_value(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    return raw


def load_config(config_file: str | None, run_opts: dict[str, Any], environ: dict[str, str]) -> dict[str, Any]:
    config = copy.deepcopy(DEFAULTS)
    if config_file:
        try:
            with open(config_file, "rb") as handle:
                _merge(config, tomllib.load(handle))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise StartupError(f"cannot read config file {config_file}: {exc}") from exc
    for name, raw in sorted(environ.items()):
        if not name.startswith("PICTRS__"):
            continue
        parts = [p.lower() for p in name[len("PICTRS__"):].split("__") if p]
        node = config
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise StartupError(f"environment variable {name} conflicts with another setting")
        node[parts[-1]] = _env_value(raw)
    _merge(config, {"server": {k: v for k, v in run_opts.items() if v is not None}})
    return config


def validate(config: dict[str, Any]) -> None:
    repo, store = config["repo"], config["store"]
    if repo.get("type") not in ("sled", "postgres"):
        raise StartupError(f"repo.type (PICTRS__REPO__TYPE) is {repo.get('type')!r}; use 'sled' or 'postgres'")
    if repo["type"] == "postgres" and not repo.get("url"):
        raise StartupError("repo.type is postgres but repo.url (PICTRS__REPO__URL) is not set")
    if store.get("type") not in ("filesystem", "object_storage"):
        raise StartupError(f"store.type (PICTRS__STORE__TYPE) is {store.get('type')!r}; use 'filesystem' or 'object_storage'")
    if store["type"] == "object_storage":
        missing = [k for k in ("endpoint", "bucket_name", "region") if not store.get(k)]
        if missing:
            names = ", ".join(f"store.{k} (PICTRS__STORE__{k.upper()})" for k in missing)
            raise StartupError(f"store.type is object_storage but {names} not set")
    _host, sep, port = str(config["server"]["address"]).rpartition(":")
    if not sep or not port.isdigit():
        raise StartupError(f"server.address (PICTRS__SERVER__ADDRESS) {config['server']['address']!r} is not host:port")


# -- repos -------------------------------------------------------------------

class SledRepo:
    """Local metadata, owned by exactly one process (sled locks its database file)."""

    def __init__(self, path: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
            self.lock_fd = os.open(os.path.join(path, "db"), os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StartupError(f"cannot open sled repo at {path}: {exc}") from exc
        try:
            fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            os.close(self.lock_fd)
            raise StartupError(
                f"could not acquire lock on {os.path.join(path, 'db')}: another pict-rs process is using this sled repo. "
                "The sled repo allows a single process; use repo.type = postgres to run several."
            ) from exc
        self.path = path
        self.lock = threading.Lock()
        self.db = sqlite3.connect(os.path.join(path, "aliases.sqlite3"), check_same_thread=False)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS aliases (alias TEXT PRIMARY KEY, token TEXT NOT NULL, identifier TEXT NOT NULL,"
            " content_type TEXT NOT NULL, size INTEGER NOT NULL, width INTEGER, height INTEGER, created_at TEXT NOT NULL)"
        )
        self.db.commit()

    def add(self, row: dict[str, Any]) -> None:
        with self.lock:
            self.db.execute(
                "INSERT INTO aliases VALUES (:alias, :token, :identifier, :content_type, :size, :width, :height, :created_at)", row)
            self.db.commit()

    def get(self, alias: str) -> dict[str, Any] | None:
        with self.lock:
            cur = self.db.execute("SELECT alias, token, identifier, content_type, size, width, height, created_at"
                                  " FROM aliases WHERE alias = ?", (alias,))
            found = cur.fetchone()
        keys = ("alias", "token", "identifier", "content_type", "size", "width", "height", "created_at")
        return dict(zip(keys, found)) if found else None

    def remove(self, alias: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM aliases WHERE alias = ?", (alias,))
            self.db.commit()

    def check(self) -> None:
        with self.lock:
            self.db.execute("SELECT 1").fetchone()

    def close(self) -> None:
        self.db.close()
        os.close(self.lock_fd)


def _cgroup_v2_quota(root: str, group: str) -> int | None:
    """The smallest `cpu.max` limit/period (floored) from the process's cgroup up to the cgroup2 mount."""
    mount = os.path.join(root, "sys/fs/cgroup")
    path = os.path.normpath(os.path.join(mount, group))
    if not os.path.exists(os.path.join(path, "cgroup.controllers")):
        return None
    quota = None
    while path == mount or path.startswith(mount + os.sep):
        try:
            with open(os.path.join(path, "cpu.max"), encoding="utf-8") as handle:
                fields = handle.readline().split(" ")
            if len(fields) >= 2 and fields[0].isdigit() and fields[1].strip().isdigit() and int(fields[1]) > 0:
                value = int(fields[0]) // int(fields[1])
                quota = value if quota is None else min(quota, value)
        except OSError:
            pass
        path = os.path.dirname(path)
    return quota


def _cgroup_v1_mounts(root: str, group: str) -> list[tuple[str, str]]:
    """Where to look for the cpu controller: the usual mount points, then the mountinfo entry (relative to its root)."""
    candidates = [(os.path.join(root, "sys/fs/cgroup/cpu"), group), (os.path.join(root, "sys/fs/cgroup/cpu,cpuacct"), group)]
    try:
        with open(os.path.join(root, "proc/self/mountinfo"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        lines = []
    for line in lines:
        left, _sep, right = line.partition(" - ")
        fields, tail = left.split(" "), right.split(" ")
        if len(fields) < 5 or len(tail) < 3 or tail[0] != "cgroup" or "cpu" not in tail[2].split(","):
            continue
        mount_root = fields[3].strip("/")
        if group == mount_root or group.startswith(mount_root + "/") or not mount_root:
            relative = group[len(mount_root):].lstrip("/")
            candidates.append((os.path.join(root, fields[4].lstrip("/")), relative))
            break
    return candidates


def _cgroup_v1_quota(root: str, group: str) -> int | None:
    """The smallest cpu.cfs_quota_us / cpu.cfs_period_us (floored) up the first cpu hierarchy that exists."""
    for mount, relative in _cgroup_v1_mounts(root, group):
        path = os.path.normpath(os.path.join(mount, relative))
        if not os.path.exists(path):
            continue
        quota = None
        while path == mount or path.startswith(mount + os.sep):
            values = []
            for name in ("cpu.cfs_quota_us", "cpu.cfs_period_us"):
                try:
                    with open(os.path.join(path, name), encoding="utf-8") as handle:
                        text = handle.read().strip()
                except OSError:
                    text = ""
                values.append(int(text) if text.isdigit() else None)
            limit, period = values
            if limit is not None and period:
                quota = limit // period if quota is None else min(quota, limit // period)
            path = os.path.dirname(path)
        return quota
    return None


def cgroup_cpu_quota(root: str = "/") -> int | None:
    """Whole CPUs the cgroup quota allows (None: no quota), read the way Rust's std does (v1 wins over v2)."""
    try:
        with open(os.path.join(root, "proc/self/cgroup"), encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    found: tuple[str, int] | None = None
    for line in lines:
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        if fields[1] == "":
            if found is None:
                found = (fields[2].lstrip("/"), 2)
        elif "cpu" in fields[1].split(","):
            found = (fields[2].lstrip("/"), 1)
    if found is None:
        return None
    group, version = found
    return _cgroup_v1_quota(root, group) if version == 1 else _cgroup_v2_quota(root, group)


def available_parallelism(root: str = "/", cpus: int | None = None) -> int:
    """std::thread::available_parallelism() on Linux: the affinity mask's CPU count, capped by the cgroup quota (at least 1)."""
    count = cpus if cpus is not None else len(os.sched_getaffinity(0))
    quota = cgroup_cpu_quota(root)
    return max(1, min(count, max(quota, 1) if quota is not None else count))


def postgres_pool_sizes(parallelism: int) -> tuple[int, int]:
    """pict-rs 0.5.16 opens a pool of 8 connections per CPU plus a notifier pool of min(CPUs, 4); neither is configurable."""
    return parallelism * 8, min(parallelism, 4)


POOL_WAIT = 10.0  # seconds a request waits for a pooled connection (pict-rs' connection_timeout)


class PostgresRepo:
    """Metadata in PostgreSQL, shared by every process that points at the same database."""

    def __init__(self, url: str) -> None:
        import psycopg2  # pylint: disable=import-outside-toplevel
        import psycopg2.pool  # pylint: disable=import-outside-toplevel

        self.errors = (psycopg2.OperationalError, psycopg2.InterfaceError)
        parallelism = available_parallelism()
        size, notifier_size = postgres_pool_sizes(parallelism)
        self.slots = threading.BoundedSemaphore(size)
        try:
            self.pool = psycopg2.pool.ThreadedConnectionPool(1, size, dsn=url)
            # pict-rs keeps a second pool for LISTEN/NOTIFY; the stand-in opens it lazily and never needs it.
            self.notifier_pool = psycopg2.pool.ThreadedConnectionPool(0, notifier_size, dsn=url)
        except psycopg2.Error as exc:
            raise StartupError(f"cannot connect to the postgres repo (repo.url): {str(exc).strip()}") from exc
        print(f"pict-rs: postgres repo pools: {size} + notifier {notifier_size} = {size + notifier_size} connections at most"
              f" (available parallelism {parallelism})", flush=True)
        try:
            # One process at a time sets up the schema; pict-rs needs pgcrypto.
            self._run("SELECT pg_advisory_xact_lock(991050016);"
                      "CREATE EXTENSION IF NOT EXISTS pgcrypto;"
                      "CREATE TABLE IF NOT EXISTS aliases (alias TEXT PRIMARY KEY, token TEXT NOT NULL,"
                      " identifier TEXT NOT NULL, content_type TEXT NOT NULL, size BIGINT NOT NULL, width INTEGER,"
                      " height INTEGER, created_at TIMESTAMPTZ NOT NULL DEFAULT now())", ())
        except psycopg2.Error as exc:
            raise StartupError(f"cannot prepare the postgres repo: {str(exc).strip()}") from exc

    def _run(self, sql: str, args: Any, fetch: bool = False) -> Any:
        if not self.slots.acquire(timeout=POOL_WAIT):
            raise RuntimeError(f"timed out after {POOL_WAIT:g} s waiting for a postgres connection (pool of {self.pool.maxconn})")
        try:
            return self._run_pooled(sql, args, fetch)
        finally:
            self.slots.release()

    def _run_pooled(self, sql: str, args: Any, fetch: bool) -> Any:
        conn = self.pool.getconn()
        broken = False
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                result = cur.fetchone() if fetch else None
            conn.commit()
            return result
        except self.errors:
            broken = True
            raise
        except Exception:
            conn.rollback()
            raise
        finally:
            self.pool.putconn(conn, close=broken)

    def add(self, row: dict[str, Any]) -> None:
        self._run("INSERT INTO aliases (alias, token, identifier, content_type, size, width, height, created_at)"
                  " VALUES (%(alias)s, %(token)s, %(identifier)s, %(content_type)s, %(size)s, %(width)s, %(height)s,"
                  " %(created_at)s)", row)

    def get(self, alias: str) -> dict[str, Any] | None:
        found = self._run("SELECT alias, token, identifier, content_type, size, width, height, created_at::text"
                          " FROM aliases WHERE alias = %s", (alias,), fetch=True)
        keys = ("alias", "token", "identifier", "content_type", "size", "width", "height", "created_at")
        return dict(zip(keys, found)) if found else None

    def remove(self, alias: str) -> None:
        self._run("DELETE FROM aliases WHERE alias = %s", (alias,))

    def check(self) -> None:
        self._run("SELECT 1", (), fetch=True)

    def close(self) -> None:
        self.pool.closeall()
        self.notifier_pool.closeall()


# -- stores ------------------------------------------------------------------

class FilesystemStore:
    def __init__(self, path: str) -> None:
        self.path = path
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise StartupError(f"cannot create the file store at {path} (store.path): {exc}") from exc

    def save(self, data: bytes, content_type: str) -> str:
        del content_type
        now = datetime.datetime.now(datetime.timezone.utc)
        identifier = f"{now:%Y/%m/%d}/{uuid.uuid4()}"
        target = os.path.join(self.path, identifier)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        tmp = f"{target}.part"
        with open(tmp, "wb") as handle:
            handle.write(data)
        os.replace(tmp, target)
        return identifier

    def read(self, identifier: str) -> bytes:
        with open(os.path.join(self.path, identifier), "rb") as handle:
            return handle.read()

    def delete(self, identifier: str) -> None:
        try:
            os.unlink(os.path.join(self.path, identifier))
        except FileNotFoundError:
            pass

    def check(self) -> None:
        if not os.path.isdir(self.path) or not os.access(self.path, os.W_OK | os.X_OK):
            raise OSError(f"file store {self.path} is not a writable directory")


class ObjectStore:
    def __init__(self, conf: dict[str, Any]) -> None:
        import boto3  # pylint: disable=import-outside-toplevel
        from botocore.config import Config  # pylint: disable=import-outside-toplevel

        self.bucket = conf["bucket_name"]
        style = "path" if conf.get("use_path_style") in (True, "true") else "virtual"
        self.client = boto3.client(
            "s3", endpoint_url=conf["endpoint"], region_name=conf["region"],
            aws_access_key_id=conf.get("access_key"), aws_secret_access_key=conf.get("secret_key"),
            aws_session_token=conf.get("session_token"),
            config=Config(s3={"addressing_style": style}, retries={"max_attempts": 2}, connect_timeout=5, read_timeout=30),
        )

    def save(self, data: bytes, content_type: str) -> str:
        now = datetime.datetime.now(datetime.timezone.utc)
        identifier = f"{now:%Y/%m/%d}/{uuid.uuid4()}"
        self.client.put_object(Bucket=self.bucket, Key=identifier, Body=data, ContentType=content_type)
        return identifier

    def read(self, identifier: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=identifier)["Body"].read()

    def delete(self, identifier: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=identifier)

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)


# -- media -------------------------------------------------------------------

def sniff(data: bytes) -> tuple[str, str, int | None, int | None]:
    """Return (extension, content type, width, height) or raise ApiError for unsupported media."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "png", "image/png", width, height
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg", "image/jpeg", None, None
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "gif", "image/gif", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp", "image/webp", None, None
    if data[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif", "image/avif", None, None
    raise ApiError(415, "Unsupported media type: not a PNG, JPEG, GIF, WebP or AVIF image", "validate-unsupported-format")


# -- HTTP --------------------------------------------------------------------

class App:
    def __init__(self, config: dict[str, Any], repo: Any, store: Any) -> None:
        self.config = config
        self.repo = repo
        self.store = store
        self.cond = threading.Condition()
        self.active = 0
        self.stopping = False


APP: App | None = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = f"pict-rs-standin/{VERSION}"
    timeout = 60

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:  # pylint: disable=redefined-builtin
        """Quiet: uploads and purges are logged explicitly."""

    @property
    def app(self) -> App:
        assert APP is not None
        return APP

    def send(self, status: int, body: bytes = b"", ctype: str | None = None, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        if ctype:
            self.send_header("Content-Type", ctype)
        if status != 204:
            self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.app.stopping:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD" and status != 204:
            self.wfile.write(body)

    def send_json(self, status: int, value: Any) -> None:
        self.send(status, json.dumps(value).encode(), "application/json")

    def read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                total += size
                if total > MAX_BODY:
                    self.close_connection = True
                    raise ApiError(413, "Upload too large", "file-too-large")
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self.close_connection = True
            raise ApiError(413, "Upload too large", "file-too-large")
        return self.rfile.read(length) if length else b""

    def dispatch(self) -> None:
        with self.app.cond:
            self.app.active += 1
        try:
            try:
                self.route()
            except ApiError as exc:
                self.send_json(exc.status, {"msg": exc.msg, "code": exc.code})
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            except Exception as exc:  # pylint: disable=broad-except
                sys.stderr.write(f"pict-rs: {self.command} {self.path}: {type(exc).__name__}: {exc}\n")
                self.send_json(500, {"msg": f"{type(exc).__name__}: {exc}", "code": "unknown-error"})
        finally:
            with self.app.cond:
                self.app.active -= 1
                self.app.cond.notify_all()

    do_GET = do_HEAD = do_POST = do_DELETE = dispatch  # noqa: N815

    def route(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        path = url.path
        query = urllib.parse.parse_qs(url.query)
        method = self.command
        parts = [urllib.parse.unquote(p) for p in path.strip("/").split("/")]
        if path == "/healthz" and method in ("GET", "HEAD"):
            self.healthz()
        elif path == "/image" and method == "POST":
            self.upload()
        elif len(parts) == 3 and parts[:2] == ["image", "original"] and method in ("GET", "HEAD"):
            self.serve(parts[2])
        elif len(parts) == 2 and parts[0] == "image" and parts[1].startswith("process.") and method in ("GET", "HEAD"):
            src = query.get("src", [""])[0]
            if not src:
                raise ApiError(400, "Missing src query parameter", "missing-src")
            self.serve(src)
        elif len(parts) == 4 and parts[:3] == ["image", "details", "original"] and method in ("GET", "HEAD"):
            self.send_json(200, self.details(self.lookup(parts[3])))
        elif len(parts) == 4 and parts[:2] == ["image", "delete"] and method in ("GET", "DELETE"):
            self.delete(parts[2], parts[3])
        elif path == "/internal/purge" and method == "POST":
            self.purge(query.get("alias", [""])[0])
        else:
            raise ApiError(404, "Requested resource was not found", "not-found")

    def lookup(self, alias: str) -> dict[str, Any]:
        row = self.app.repo.get(alias)
        if row is None:
            raise ApiError(404, "Requested resource was not found", "not-found")
        return row

    @staticmethod
    def details(row: dict[str, Any]) -> dict[str, Any]:
        return {"width": row["width"], "height": row["height"], "frames": None, "content_type": row["content_type"],
                "created_at": row["created_at"], "format": row["alias"].rsplit(".", 1)[-1]}

    def healthz(self) -> None:
        problems = []
        for name, part in (("repo", self.app.repo), ("store", self.app.store)):
            try:
                part.check()
            except Exception as exc:  # pylint: disable=broad-except
                problems.append(f"{name}: {type(exc).__name__}: {exc}")
        if problems:
            self.send_json(503, {"msg": "; ".join(problems), "code": "health-check-failed"})
        else:
            self.send(200, b"")

    def upload(self) -> None:
        ctype = self.headers.get("Content-Type", "")
        body = self.read_body()
        if not ctype.lower().startswith("multipart/form-data"):
            raise ApiError(400, "Expected a multipart/form-data upload with field images[]", "invalid-upload")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\nMIME-Version: 1.0\r\n\r\n".encode() + body)
        uploads = []
        for part in message.iter_parts() if message.is_multipart() else []:
            if part.get_param("name", header="content-disposition") == "images[]":
                uploads.append(part.get_payload(decode=True) or b"")
        if not uploads:
            raise ApiError(400, "No files in field images[]", "no-files")
        if len(uploads) > int(self.app.config["server"].get("max_file_count") or 1):
            raise ApiError(400, "Too many files in request", "too-many-files")
        files = []
        for data in uploads:
            ext, content_type, width, height = sniff(data)
            identifier = self.app.store.save(data, content_type)
            row = {"alias": f"{uuid.uuid4()}.{ext}", "token": str(uuid.uuid4()), "identifier": identifier,
                   "content_type": content_type, "size": len(data), "width": width, "height": height,
                   "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat()}
            self.app.repo.add(row)
            print(f"pict-rs: stored {row['alias']} ({len(data)} bytes)", flush=True)
            files.append({"file": row["alias"], "delete_token": row["token"], "details": self.details(row)})
        self.send_json(201, {"msg": "ok", "files": files})

    def serve(self, alias: str) -> None:
        row = self.lookup(alias)
        try:
            data = self.app.store.read(row["identifier"])
        except Exception as exc:  # pylint: disable=broad-except
            raise ApiError(404, f"Media of {alias} is missing from the store: {exc}", "not-found") from exc
        headers = {"Cache-Control": "public, max-age=1209600, immutable", "Accept-Ranges": "bytes",
                   "ETag": f"\"{row['identifier'].rsplit('/', 1)[-1]}\""}
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        if match and (match.group(1) or match.group(2)):
            size = len(data)
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start, end = max(size - int(match.group(2)), 0), size - 1
            if start >= size or start > end:
                self.send(416, b"", None, {"Content-Range": f"bytes */{size}"})
                return
            headers["Content-Range"] = f"bytes {start}-{end}/{size}"
            self.send(206, data[start:end + 1], row["content_type"], headers)
            return
        self.send(200, data, row["content_type"], headers)

    def delete(self, token: str, alias: str) -> None:
        row = self.lookup(alias)
        if token != row["token"]:
            raise ApiError(403, "Invalid delete token", "invalid-delete-token")
        self.app.repo.remove(alias)
        self.app.store.delete(row["identifier"])
        self.send(204)

    def purge(self, alias: str) -> None:
        key = self.app.config["server"].get("api_key")
        given = self.headers.get("X-Api-Token")
        if given is None:
            raise ApiError(401, "Missing X-Api-Token header", "missing-api-key")
        if not key or given != str(key):
            raise ApiError(403, "Invalid API key", "invalid-api-key")
        if not alias:
            raise ApiError(400, "Missing alias query parameter", "missing-alias")
        row = self.lookup(alias)
        self.app.repo.remove(alias)
        self.app.store.delete(row["identifier"])
        print(f"pict-rs: purged {alias}", flush=True)
        self.send_json(200, {"msg": "ok", "aliases": [alias]})


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256


class Server6(Server):
    address_family = socket.AF_INET6


USAGE = "usage: pict-rs [-c|--config-file FILE] run [-a|--address HOST:PORT] [--api-key KEY]"


def parse_args(argv: list[str]) -> tuple[str | None, dict[str, Any]]:
    config_file = None
    run_opts: dict[str, Any] = {}
    args = list(argv)
    while args and args[0].startswith("-"):
        opt = args.pop(0)
        if opt in ("-V", "--version"):
            print(f"pict-rs {VERSION}")
            raise SystemExit(0)
        if opt in ("-c", "--config-file") and args:
            config_file = args.pop(0)
        elif opt.startswith("--config-file="):
            config_file = opt.split("=", 1)[1]
        else:
            raise SystemExit(f"pict-rs: unknown option {opt}\n{USAGE}")
    if not args or args[0] != "run":
        raise SystemExit(f"pict-rs: this stand-in supports only the run command\n{USAGE}")
    args.pop(0)
    while args:
        opt = args.pop(0)
        if opt in ("-a", "--address") and args:
            run_opts["address"] = args.pop(0)
        elif opt == "--api-key" and args:
            run_opts["api_key"] = args.pop(0)
        else:
            raise SystemExit(f"pict-rs: unknown run option {opt}\n{USAGE}")
    return config_file, run_opts


def main(argv: list[str]) -> int:
    global APP  # pylint: disable=global-statement
    config_file, run_opts = parse_args(argv)
    repo: Any = None
    try:
        config = load_config(config_file, run_opts, dict(os.environ))
        validate(config)
        if config["repo"]["type"] == "sled":
            repo = SledRepo(str(config["repo"]["path"]))
        else:
            repo = PostgresRepo(str(config["repo"]["url"]))
        if config["store"]["type"] == "filesystem":
            store: Any = FilesystemStore(str(config["store"]["path"]))
        else:
            store = ObjectStore(config["store"])
        host, _sep, port = str(config["server"]["address"]).rpartition(":")
        host = host.strip("[]")
        try:
            server = (Server6 if ":" in host else Server)((host, int(port)), Handler)
        except OSError as exc:
            raise StartupError(f"cannot listen on {host}:{port} (server.address): {exc}") from exc
    except StartupError as exc:
        print(f"pict-rs: error: {exc}", file=sys.stderr, flush=True)
        if repo is not None:
            repo.close()
        return 1
    APP = App(config, repo, store)
    try:
        store.check()
    except Exception as exc:  # pylint: disable=broad-except
        print(f"pict-rs: warning: store not reachable yet: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    print(f"pict-rs {VERSION} (stand-in) listening on {host}:{port}, repo {config['repo']['type']},"
          f" store {config['store']['type']}", flush=True)
    stop.wait()
    APP.stopping = True
    server.shutdown()
    server.socket.close()
    deadline = time.monotonic() + GRACE
    with APP.cond:
        while APP.active > 0 and time.monotonic() < deadline:
            APP.cond.wait(max(deadline - time.monotonic(), 0.01))
    repo.close()
    print("pict-rs: shut down", flush=True)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
