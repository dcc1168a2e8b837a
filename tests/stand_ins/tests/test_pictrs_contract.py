# SPDX-License-Identifier: GPL-3.0-or-later
"""Contract tests of the pict-rs 0.5 stand-in image (facts §8), against real containers."""
from __future__ import annotations

import http.client
import importlib.util
import json
import os
import re
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

from _ui_pictrs_helpers import (
    PICTRS_VERSION,
    Container,
    Containers,
    containers_fixture,
    docker,
    ensure_image,
    free_port,
    host_dir_fixture,
    http_get,
    moto_s3_fixture,
    multipart,
    png_bytes,
    wait_for,
)

API_KEY = "contract-api-key"


@pytest.fixture(scope="module")
def pictrs_image() -> str:
    return ensure_image("pictrs", "fediscale-standin/pictrs", PICTRS_VERSION)


@pytest.fixture
def docker_run() -> Iterator[Containers]:
    yield from containers_fixture()


@pytest.fixture(scope="module")
def module_containers() -> Iterator[Containers]:
    yield from containers_fixture()


@pytest.fixture(scope="module")
def keyed(module_containers: Containers, pictrs_image: str) -> tuple[Container, int]:
    """One pict-rs with defaults plus an API key, shared by the API tests of this module."""
    return start(module_containers, pictrs_image, env={"PICTRS__SERVER__API_KEY": API_KEY})


@pytest.fixture
def host_dir() -> Iterator[Callable[[], str]]:
    yield from host_dir_fixture()


@pytest.fixture
def moto_s3() -> Iterator[dict[str, str]]:
    yield from moto_s3_fixture()


def start(factory: Containers, image: str, env: dict[str, str] | None = None, volumes: list[str] | None = None,
          args: list[str] | None = None, extra: list[str] | None = None) -> tuple[Container, int]:
    port = free_port()
    container = factory.run(image, env={"PICTRS__SERVER__ADDRESS": f"127.0.0.1:{port}", **(env or {})}, volumes=volumes,
                            args=args, extra=extra)
    container.wait_port(port)
    return container, port


def upload(port: int, data: bytes, field: str = "images[]") -> tuple[int, Any]:
    body, ctype = multipart(field, "upload.png", data)
    status, _headers, raw = http_get(port, "/image", method="POST", body=body, headers={"Content-Type": ctype})
    return status, json.loads(raw)


def uploaded_alias(port: int, data: bytes) -> tuple[str, str]:
    status, reply = upload(port, data)
    assert status == 201, reply
    return reply["files"][0]["file"], reply["files"][0]["delete_token"]


def purge(port: int, alias: str, token: str | None) -> tuple[int, Any]:
    headers = {"X-Api-Token": token} if token is not None else {}
    status, _headers, raw = http_get(port, f"/internal/purge?alias={alias}", method="POST", headers=headers, body=b"")
    return status, json.loads(raw) if raw else None


# -- API -----------------------------------------------------------------------

def test_pictrs_upload_and_read_original(keyed: tuple[Container, int]) -> None:
    port = keyed[1]
    data = png_bytes(5, 4)
    status, reply = upload(port, data)
    assert status == 201
    assert reply["msg"] == "ok" and len(reply["files"]) == 1
    alias, token = reply["files"][0]["file"], reply["files"][0]["delete_token"]
    assert alias.endswith(".png") and token
    status, headers, body = http_get(port, f"/image/original/{alias}")
    assert status == 200 and body == data
    assert headers["content-type"] == "image/png"
    status, headers, body = http_get(port, f"/image/original/{alias}", headers={"Range": "bytes=0-7"})
    assert status == 206 and body == data[:8] and headers["content-range"] == f"bytes 0-7/{len(data)}"
    status, headers, body = http_get(port, f"/image/process.webp?src={alias}&thumbnail=256")
    assert status == 200 and body == data
    status, _headers, raw = http_get(port, f"/image/details/original/{alias}")
    assert status == 200 and json.loads(raw)["width"] == 5
    assert http_get(port, "/image/original/no-such-alias.png")[0] == 404


def test_pictrs_upload_chunked_like_lemmy(keyed: tuple[Container, int]) -> None:
    """lemmy_server streams the upload body, so it arrives with Transfer-Encoding: chunked."""
    port = keyed[1]
    data = png_bytes(7, 7, seed=3)
    body, ctype = multipart("images[]", "a.png", data)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/image", body=iter([body[:50], body[50:]]), headers={"Content-Type": ctype}, encode_chunked=True)
        resp = conn.getresponse()
        reply = json.loads(resp.read())
    finally:
        conn.close()
    assert resp.status == 201, reply
    assert http_get(port, f"/image/original/{reply['files'][0]['file']}")[2] == data


def test_pictrs_rejects_non_image_upload(keyed: tuple[Container, int]) -> None:
    port = keyed[1]
    status, reply = upload(port, b"plain text, not an image")
    assert 400 <= status < 500 and reply["msg"] != "ok"
    status, reply = upload(port, png_bytes(), field="other")
    assert status == 400


def test_pictrs_delete_token(keyed: tuple[Container, int]) -> None:
    port = keyed[1]
    alias, token = uploaded_alias(port, png_bytes())
    assert http_get(port, f"/image/delete/wrong-token/{alias}")[0] == 403
    assert http_get(port, f"/image/original/{alias}")[0] == 200
    assert http_get(port, f"/image/delete/{token}/{alias}")[0] == 204
    assert http_get(port, f"/image/original/{alias}")[0] == 404


def test_pictrs_purge_requires_api_token(keyed: tuple[Container, int]) -> None:
    port = keyed[1]
    alias, _token = uploaded_alias(port, png_bytes())
    assert purge(port, alias, None)[0] == 401
    assert purge(port, alias, "wrong-key")[0] == 403
    assert http_get(port, f"/image/original/{alias}")[0] == 200
    status, reply = purge(port, alias, API_KEY)
    assert status == 200 and reply == {"msg": "ok", "aliases": [alias]}
    assert http_get(port, f"/image/original/{alias}")[0] == 404


def test_pictrs_purge_refused_without_configured_api_key(docker_run: Containers, pictrs_image: str) -> None:
    _container, port = start(docker_run, pictrs_image)
    alias, _token = uploaded_alias(port, png_bytes())
    assert purge(port, alias, "")[0] == 403
    assert purge(port, alias, "anything")[0] == 403
    assert http_get(port, f"/image/original/{alias}")[0] == 200


def test_pictrs_healthz_checks_repo_and_store(docker_run: Containers, pictrs_image: str, host_dir: Callable[[], str]) -> None:
    files = host_dir()
    _container, port = start(docker_run, pictrs_image, volumes=[f"{files}:/mnt/files"])
    assert http_get(port, "/healthz")[0] == 200
    os.chmod(files, 0o000)
    try:
        status, _headers, raw = http_get(port, "/healthz")
        assert status == 503 and "store" in json.loads(raw)["msg"]
    finally:
        os.chmod(files, 0o755)
    assert http_get(port, "/healthz")[0] == 200


# -- image and process -----------------------------------------------------------

def test_pictrs_runs_as_uid_991_under_tini(keyed: tuple[Container, int], pictrs_image: str) -> None:
    config = json.loads(docker("image", "inspect", "-f", "{{ json .Config }}", pictrs_image).stdout)
    assert config["User"] == "991:991"
    assert config["Entrypoint"] == ["/sbin/tini", "--"] and config["Cmd"] == ["pict-rs", "run"]
    assert "8080/tcp" in config["ExposedPorts"] and "/mnt" in config["Volumes"]
    container = keyed[0]
    assert docker("exec", container.name, "id", "-u").stdout.strip() == "991"
    assert docker("exec", container.name, "id", "-g").stdout.strip() == "991"
    assert docker("exec", container.name, "cat", "/proc/1/cmdline").stdout.split("\0")[0] == "/sbin/tini"


def test_pictrs_default_address_is_8080(docker_run: Containers, pictrs_image: str) -> None:
    """Without PICTRS__SERVER__ADDRESS it listens on 0.0.0.0:8080 (own network namespace, so no port clash)."""
    container = docker_run.run(pictrs_image, network="bridge")
    address = docker("inspect", "-f", "{{ .NetworkSettings.IPAddress }}", container.name).stdout.strip()
    assert address, "the default bridge network gave the container no address"
    wait_for(lambda: http_get(8080, "/healthz", host=address, timeout=2)[0] == 200, 20,
             f"pict-rs on {address}:8080; logs:\n{container.logs()}")


def test_pictrs_sigterm_exits_zero(docker_run: Containers, pictrs_image: str) -> None:
    container, port = start(docker_run, pictrs_image)
    uploaded_alias(port, png_bytes())
    idle = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        idle.request("GET", "/healthz")
        idle.getresponse().read()
        container.signal("TERM")
        assert container.wait_exit(20) == 0, container.logs()
    finally:
        idle.close()
    assert "shut down" in container.logs()


def test_pictrs_config_file_and_cli(docker_run: Containers, pictrs_image: str, host_dir: Callable[[], str]) -> None:
    """Secrets can come from a config file (-c) instead of the environment."""
    conf_dir = host_dir()
    port = free_port()
    with open(os.path.join(conf_dir, "pict-rs.toml"), "w", encoding="utf-8") as handle:
        handle.write(f'[server]\naddress = "127.0.0.1:{port}"\napi_key = "{API_KEY}"\n\n[repo]\ntype = "sled"\n')
    os.chmod(os.path.join(conf_dir, "pict-rs.toml"), 0o644)
    container = docker_run.run(pictrs_image, volumes=[f"{conf_dir}:/etc/pictrs:ro"],
                               args=["pict-rs", "-c", "/etc/pictrs/pict-rs.toml", "run"])
    container.wait_port(port)
    alias, _token = uploaded_alias(port, png_bytes())
    assert purge(port, alias, API_KEY)[0] == 200


def test_pictrs_bad_config_fails_at_start(docker_run: Containers, pictrs_image: str) -> None:
    cases = {
        "PICTRS__REPO__TYPE": {"PICTRS__REPO__TYPE": "bogus"},
        "PICTRS__REPO__URL": {"PICTRS__REPO__TYPE": "postgres"},
        "PICTRS__STORE__BUCKET_NAME": {"PICTRS__STORE__TYPE": "object_storage"},
    }
    started = {needle: docker_run.run(pictrs_image, env={"PICTRS__SERVER__ADDRESS": f"127.0.0.1:{free_port()}", **env})
               for needle, env in cases.items()}
    for needle, container in started.items():
        assert container.wait_exit(20) == 1, needle
        assert needle in container.logs(), container.logs()


# -- repos -------------------------------------------------------------------------

def test_pictrs_sled_repo_lock_refuses_second_process(docker_run: Containers, pictrs_image: str, host_dir: Callable[[], str]) -> None:
    data_dir = host_dir()
    first, port = start(docker_run, pictrs_image, volumes=[f"{data_dir}:/mnt"])
    second = docker_run.run(pictrs_image, env={"PICTRS__SERVER__ADDRESS": f"127.0.0.1:{free_port()}"}, volumes=[f"{data_dir}:/mnt"])
    assert second.wait_exit(20) != 0
    assert "could not acquire lock" in second.logs()
    assert first.running() and http_get(port, "/healthz")[0] == 200


def test_pictrs_sled_repo_persists_across_restart(docker_run: Containers, pictrs_image: str, host_dir: Callable[[], str]) -> None:
    data_dir = host_dir()
    first, port = start(docker_run, pictrs_image, volumes=[f"{data_dir}:/mnt"])
    data = png_bytes(2, 9)
    alias, _token = uploaded_alias(port, data)
    first.signal("TERM")
    assert first.wait_exit(20) == 0
    _second, port2 = start(docker_run, pictrs_image, volumes=[f"{data_dir}:/mnt"])
    assert http_get(port2, f"/image/original/{alias}")[2] == data


def test_pictrs_postgres_repo_shared_by_two_processes(docker_run: Containers, pictrs_image: str, host_dir: Callable[[], str],
                                                      postgres: Any) -> None:
    files = host_dir()
    env = {"PICTRS__REPO__TYPE": "postgres", "PICTRS__REPO__URL": postgres.uri, "PICTRS__SERVER__API_KEY": API_KEY}
    (_a, port_a), (_b, port_b) = (start(docker_run, pictrs_image, env=env, volumes=[f"{files}:/mnt/files"]) for _process in range(2))
    assert http_get(port_a, "/healthz")[0] == 200 and http_get(port_b, "/healthz")[0] == 200
    data = png_bytes(4, 4, seed=9)
    alias, _token = uploaded_alias(port_a, data)
    assert postgres.query("SELECT alias FROM aliases") == [(alias,)]
    status, _headers, body = http_get(port_b, f"/image/original/{alias}")
    assert status == 200 and body == data
    assert postgres.query("SELECT extname FROM pg_extension WHERE extname = 'pgcrypto'") == [("pgcrypto",)]
    assert purge(port_b, alias, API_KEY)[0] == 200
    assert http_get(port_a, f"/image/original/{alias}")[0] == 404


# -- stores ------------------------------------------------------------------------

def test_pictrs_object_storage_store(docker_run: Containers, pictrs_image: str, moto_s3: dict[str, str]) -> None:
    import boto3  # pylint: disable=import-outside-toplevel

    env = {"PICTRS__STORE__TYPE": "object_storage", "PICTRS__STORE__ENDPOINT": moto_s3["endpoint"],
           "PICTRS__STORE__BUCKET_NAME": moto_s3["bucket"], "PICTRS__STORE__REGION": moto_s3["region"],
           "PICTRS__STORE__USE_PATH_STYLE": "true", "PICTRS__STORE__ACCESS_KEY": moto_s3["access_key"],
           "PICTRS__STORE__SECRET_KEY": moto_s3["secret_key"], "PICTRS__SERVER__API_KEY": API_KEY}
    _container, port = start(docker_run, pictrs_image, env=env)
    assert http_get(port, "/healthz")[0] == 200
    client = boto3.client("s3", endpoint_url=moto_s3["endpoint"], region_name=moto_s3["region"],
                          aws_access_key_id=moto_s3["access_key"], aws_secret_access_key=moto_s3["secret_key"])

    def keys() -> list[str]:
        return [obj["Key"] for obj in client.list_objects_v2(Bucket=moto_s3["bucket"]).get("Contents", [])]

    data = png_bytes(6, 1, seed=5)
    alias, _token = uploaded_alias(port, data)
    stored = keys()
    assert len(stored) == 1
    assert client.get_object(Bucket=moto_s3["bucket"], Key=stored[0])["Body"].read() == data
    assert http_get(port, f"/image/original/{alias}")[2] == data
    assert purge(port, alias, API_KEY)[0] == 200
    assert keys() == []
    _missing, port2 = start(docker_run, pictrs_image, env={**env, "PICTRS__STORE__BUCKET_NAME": "no-such-bucket"})
    status, _headers, raw = http_get(port2, "/healthz")
    assert status == 503 and "store" in json.loads(raw)["msg"]


# -- Postgres pool size -------------------------------------------------------------

POOL_LINE = re.compile(r"postgres repo pools: (\d+) \+ notifier (\d+) = (\d+) connections at most \(available parallelism (\d+)\)")


@pytest.mark.parametrize("limit,expected", [(["--cpus", "2"], (16, 2, 18, 2)), (["--cpus", "1"], (8, 1, 9, 1)),
                                            (["--cpus", "1.5"], (8, 1, 9, 1)), (["--cpuset-cpus", "0"], (8, 1, 9, 1))],
                         ids=["cpus-2", "cpus-1", "cpus-1.5-floors", "cpuset-1"])
def test_pictrs_postgres_pool_follows_the_container_cpus(docker_run: Containers, pictrs_image: str, postgres: Any,
                                                         limit: list[str], expected: tuple[int, int, int, int]) -> None:
    """Postgres repo: 8 x CPUs + a notifier pool of min(CPUs, 4) per process, CPUs as available_parallelism() sees them
    (CPU quota floored, affinity mask); no setting changes it. The sizes are read from the stand-in's startup line."""
    env = {"PICTRS__REPO__TYPE": "postgres", "PICTRS__REPO__URL": postgres.uri}
    container, port = start(docker_run, pictrs_image, env=env, extra=limit)
    assert http_get(port, "/healthz")[0] == 200
    found = POOL_LINE.search(container.logs())
    assert found, container.logs()
    assert tuple(int(g) for g in found.groups()) == expected


def _load_pict_rs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("standin_pict_rs", os.path.join(os.path.dirname(__file__), "..", "pictrs", "pict_rs.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tree(root: str, files: dict[str, str]) -> str:
    for name, text in files.items():
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return root


V1_MOUNTINFO = "30 25 0:26 /docker/abc /sys/fs/cgroup/cpu,cpuacct ro,nosuid shared:9 - cgroup cgroup rw,cpu,cpuacct\n"


@pytest.mark.parametrize("files,cpus,expected", [
    ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cgroup.controllers": "cpu\n", "sys/fs/cgroup/cpu.max": "200000 100000\n"}, 8, 2),
    ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cgroup.controllers": "cpu\n", "sys/fs/cgroup/cpu.max": "max 100000\n"}, 8, 8),
    ({"proc/self/cgroup": "0::/a/b\n", "sys/fs/cgroup/a/b/cgroup.controllers": "", "sys/fs/cgroup/a/b/cpu.max": "350000 100000\n",
      "sys/fs/cgroup/a/cpu.max": "100000 100000\n"}, 8, 1),
    ({"proc/self/cgroup": "0::/\n", "sys/fs/cgroup/cgroup.controllers": "", "sys/fs/cgroup/cpu.max": "50000 100000\n"}, 8, 1),
    ({"proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n0::/\n", "proc/self/mountinfo": V1_MOUNTINFO,
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "300000\n", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 8, 3),
    ({"proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n", "proc/self/mountinfo": V1_MOUNTINFO,
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "-1\n", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 6, 6),
    ({"proc/self/cgroup": "4:cpu,cpuacct:/docker/abc\n", "proc/self/mountinfo": V1_MOUNTINFO,
      "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "900000\n", "sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n"}, 2, 2),
    ({}, 3, 3),
], ids=["v2-2", "v2-max", "v2-parent-caps", "v2-half-is-1", "v1-3", "v1-unlimited", "v1-quota-above-cpus", "no-cgroup"])
def test_pictrs_available_parallelism_reads_cgroups_like_rust_std(tmp_path: Any, files: dict[str, str], cpus: int,
                                                                  expected: int) -> None:
    """available_parallelism(): min(CPUs, floor(quota / period)) up the cgroup tree (v1 or v2), at least 1."""
    pict_rs = _load_pict_rs()
    assert pict_rs.available_parallelism(root=_tree(str(tmp_path), files), cpus=cpus) == expected
    assert pict_rs.postgres_pool_sizes(expected) == (8 * expected, min(expected, 4))
