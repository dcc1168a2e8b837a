# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The lemmy_host_probe module on this machine, and the OS facts it derives from /etc/os-release."""

from __future__ import annotations

import http.server
import json
import socket
import socketserver
import threading
import typing as t
import urllib.parse
from pathlib import Path

import pytest

from ansible.module_utils.testing import patch_module_args

from ansible_collections.fediscale.lemmy.plugins.module_utils._preflight import os_facts, parse_os_release
from ansible_collections.fediscale.lemmy.plugins.modules import lemmy_host_probe

DEBIAN = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nVERSION_CODENAME=bookworm\nID=debian\n'
UBUNTU = 'NAME="Ubuntu"\nVERSION_ID="24.04"\nVERSION_CODENAME=noble\nID=ubuntu\nID_LIKE=debian\nUBUNTU_CODENAME=noble\n'
MINT = 'NAME="Linux Mint"\nVERSION_ID="21.3"\nVERSION_CODENAME=virginia\nID=linuxmint\nID_LIKE="ubuntu debian"\nUBUNTU_CODENAME=jammy\n'
ROCKY = 'NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'


def run(capsys: pytest.CaptureFixture[str], args: dict[str, t.Any]) -> dict[str, t.Any]:
    with patch_module_args(args):
        with pytest.raises(SystemExit) as exc:
            lemmy_host_probe.main()
    assert not exc.value.code
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("text, debian_version, family, distribution, release, version", [
    (DEBIAN, "12.8\n", "Debian", "Debian", "bookworm", "12.8"),
    (DEBIAN, "trixie/sid\n", "Debian", "Debian", "bookworm", "12"),
    (UBUNTU, None, "Debian", "Ubuntu", "noble", "24.04"),
    (MINT, None, "Debian", "Linux Mint", "virginia", "21.3"),
    (ROCKY, None, "Rocky", "Rocky Linux", "", "9.4"),
    ("", None, "unknown", "", "", ""),
])
def test_os_facts_name_the_family_as_setup_does_for_the_debian_family(
        text: str, debian_version: str | None, family: str, distribution: str, release: str, version: str) -> None:
    facts = os_facts(text, debian_version)
    assert (facts["os_family"], facts["distribution"], facts["distribution_release"], facts["distribution_version"]) == (
        family, distribution, release, version)
    assert facts["distribution_major_version"] == version.split(".")[0]


def test_os_release_values_lose_their_quotes_and_comments_are_skipped() -> None:
    assert parse_os_release('# a comment\nNAME="Debian GNU/Linux"\nID=debian\nBAD LINE\n') == {"NAME": "Debian GNU/Linux", "ID": "debian"}


def test_the_probe_reads_this_machine(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sock_path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(sock_path))
    try:
        result = run(capsys, {"disk_path": str(tmp_path), "docker_socket": str(sock_path)})
    finally:
        server.close()
    assert result["changed"] is False and result["docker_socket"] is True
    assert isinstance(result["free_mb"], int) and result["free_mb"] >= 0
    facts = result["ansible_facts"]
    assert facts["python"]["version"]["major"] == 3 and facts["os_family"]
    # A plain file is not a socket, a missing folder has no free space, and without docker_socket nothing is said of it.
    plain = tmp_path / "file"
    plain.write_text("x")
    assert run(capsys, {"disk_path": str(tmp_path), "docker_socket": str(plain)})["docker_socket"] is False
    missing = run(capsys, {"disk_path": str(tmp_path / "missing")})
    assert missing["free_mb"] is None and "docker_socket" not in missing


class _FakeDocker(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _DockerHandler(http.server.BaseHTTPRequestHandler):
    """Docker Engine's two listings, the way its API answers them; records what was asked."""

    asked: list[str] = []

    def address_string(self) -> str:  # a unix socket has no client address
        return "docker"

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        type(self).asked.append(self.path)
        if self.path.startswith("/containers/json"):
            body: t.Any = [{"Names": ["/lemmy-api-1"], "Image": "dessalines/lemmy:0.19.19", "State": "running", "Labels": {}}]
        elif self.path == "/images/json":
            body = [{"RepoTags": ["dessalines/lemmy:0.19.20"]}]
        else:
            self.send_error(404)
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: t.Any) -> None:
        pass


def test_the_upgrade_preflight_lists_containers_and_images_and_asks_a_url_in_the_same_call(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    sock_path = str(tmp_path / "docker.sock")
    docker = _FakeDocker(sock_path, _DockerHandler)
    web = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    threads = [threading.Thread(target=server.serve_forever, daemon=True) for server in (docker, web)]
    for thread in threads:
        thread.start()
    try:
        result = run(capsys, {"disk_path": str(tmp_path), "docker_socket": sock_path, "containers_named": "lemmy-",
                              "url": "http://127.0.0.1:%d/" % web.server_address[1]})
        missing = run(capsys, {"disk_path": str(tmp_path), "url": "http://127.0.0.1:%d/no-such-page" % web.server_address[1]})
    finally:
        docker.shutdown()
        web.shutdown()
    assert result["containers"][0]["Names"] == ["/lemmy-api-1"] and result["images"][0]["RepoTags"] == ["dessalines/lemmy:0.19.20"]
    # The name filter is Docker's own, URL-encoded JSON.
    assert any(urllib.parse.unquote(p).endswith('filters={"name": ["lemmy-"]}') for p in _DockerHandler.asked)
    assert result["url_status"] == 200 and missing["url_status"] == 404


def test_nothing_listening_is_minus_one_and_a_missing_socket_is_said(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run(capsys, {"disk_path": str(tmp_path), "docker_socket": str(tmp_path / "none.sock"), "containers_named": "lemmy-",
                          "url": "http://127.0.0.1:%d/" % port})
    assert result["url_status"] == -1 and result["docker_socket"] is False
    assert "containers" not in result and "no Docker socket" in result["docker_error"]
