# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The preflight gate's decision: who blocks the run, who may be left out, and the message."""

from __future__ import annotations

import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._preflight import (
    decide,
    host_problems,
    parse_df_free_mb,
    parse_host_list,
)

DF_PLENTY = "Filesystem 1024-blocks Used Available Capacity Mounted on\n/dev/sda1 41152736 8 40000000 1% /\n"
DF_TIGHT = "Filesystem 1024-blocks Used Available Capacity Mounted on\noverlay 41152736 41000000 512000 99% /\n"
FIT = {"os_family": "Debian", "distribution": "Debian 12", "python_version": "3.11.2", "free_mb": 39062, "disk_path": "/var/lib"}
HOSTS = {"lb1": ["proxy"], "web1": ["app"], "web2": ["app"], "db1": ["db"]}
DOWN = {"unreachable": True, "msg": "Failed to create temporary directory.\nIn some cases ..."}


def fleet(**changes: t.Any) -> dict[str, dict[str, t.Any]]:
    reports = {host: dict(FIT) for host in HOSTS}
    for host, report in changes.items():
        reports[host] = report
    return reports


def test_every_host_fits() -> None:
    result = decide(HOSTS, fleet())
    assert result["ok"] is True
    assert result["left_out"] == [] and result["blocking"] == {} and result["problems"] == []
    assert result["msg"] == "Preflight: all 4 planned hosts answered and fit"


def test_an_unreachable_host_stops_the_run_naming_it_and_the_flag() -> None:
    result = decide(HOSTS, fleet(web2=DOWN))
    assert result["ok"] is False
    assert list(result["blocking"]) == ["web2"]
    assert result["left_out"] == []
    line = result["problems"][0]
    assert line.startswith("host web2: unreachable (Failed to create temporary directory.)")
    assert "-e lemmy_allow_unreachable=web2" in line
    assert result["msg"].startswith("Preflight stopped the run before any change (1 problem):\n  host web2:")


def test_every_blocking_host_is_named_at_once() -> None:
    result = decide(HOSTS, fleet(web2=DOWN, db1=DOWN, lb1=dict(FIT, os_family="RedHat", distribution="Rocky 9")))
    assert sorted(result["blocking"]) == ["db1", "lb1", "web2"]
    assert "(3 problems)" in result["msg"]
    assert "host lb1: runs Rocky 9 (OS family RedHat); the collection supports the Debian family only" in result["msg"]


def test_a_host_without_a_report_counts_as_unreachable() -> None:
    reports = fleet()
    del reports["web1"]
    result = decide(HOSTS, reports)
    assert list(result["blocking"]) == ["web1"]
    assert "unreachable (no answer was recorded)" in result["problems"][0]


@pytest.mark.parametrize("allow", ["web2", "web2, web1", ["web2"], ("web2",)])
def test_allowed_unreachable_hosts_are_left_out(allow: t.Any) -> None:
    result = decide(HOSTS, fleet(web2=DOWN), allow_unreachable=allow)
    assert result["ok"] is True
    assert result["left_out"] == ["web2"]
    assert "except web2, left out on purpose" in result["msg"]


def test_an_allowed_host_that_answers_stays_with_a_warning() -> None:
    result = decide(HOSTS, fleet(web2=DOWN), allow_unreachable="web1,web2")
    assert result["left_out"] == ["web2"]
    assert result["warnings"] == ["lemmy_allow_unreachable names web1, but it answered: it stays in the run"]


def test_allowing_does_not_excuse_a_host_that_answers_but_does_not_fit() -> None:
    result = decide(HOSTS, fleet(web1=dict(FIT, free_mb=100)), allow_unreachable="web1")
    assert result["ok"] is False
    assert "host web1: only 100 MiB free on /var/lib; at least 2048 MiB" in result["problems"][0]


def test_an_unknown_name_in_the_flag_is_refused() -> None:
    result = decide(HOSTS, fleet(web2=DOWN), allow_unreachable="web2,wbe1")
    assert result["ok"] is False
    assert result["problems"] == [
        "lemmy_allow_unreachable names wbe1, which is not a planned host; name inventory hosts of the Lemmy groups only"]


@pytest.mark.parametrize("allow", [5, {"web2": True}, ["web2", 3], "web2,,web1"])
def test_a_malformed_flag_is_refused(allow: t.Any) -> None:
    result = decide(HOSTS, fleet(), allow_unreachable=allow)
    assert result["ok"] is False
    assert result["problems"][0].startswith("lemmy_allow_unreachable ")


def test_a_playbook_that_cannot_leave_hosts_out_refuses_even_with_the_flag() -> None:
    result = decide(HOSTS, fleet(web2=DOWN), allow_unreachable="web2", may_leave_out=False)
    assert result["ok"] is False and result["left_out"] == []
    assert "this playbook cannot leave hosts out (lemmy_allow_unreachable)" in result["problems"][0]


def test_an_indispensable_host_is_never_left_out() -> None:
    result = decide(HOSTS, fleet(lb1=DOWN), allow_unreachable="lb1", indispensable={"lb1": "it is the first proxy"})
    assert result["ok"] is False
    assert result["problems"] == ["host lb1: unreachable (Failed to create temporary directory.) and cannot be left out: it is the first proxy"]


def test_the_docker_socket_is_checked_only_when_required_and_only_on_app_hosts() -> None:
    assert decide(HOSTS, fleet())["ok"] is True
    result = decide(HOSTS, fleet(web1=dict(FIT, docker_socket=True), web2=dict(FIT, docker_socket=False)), require_docker_socket=True)
    assert list(result["blocking"]) == ["web2"]
    assert "no Docker socket at /var/run/docker.sock" in result["problems"][0] and "run site.yml first" in result["problems"][0]


@pytest.mark.parametrize("report, wanted", [
    (dict(FIT, python_version="3.8.10"), "its Python is 3.8.10; Ansible's modules need Python 3.9 or newer"),
    (dict(FIT, python_version=None), "its Python is unknown"),
    (dict(FIT, os_family=None, distribution=None), "runs an unknown system (OS family unknown)"),
    (dict(FIT, free_mb=None), "could not read the free disk space of /var/lib"),
    ({"failed": True, "msg": "/usr/bin/python3: not found\nmore"}, "reading its facts failed (/usr/bin/python3: not found)"),
])
def test_host_problems(report: dict[str, t.Any], wanted: str) -> None:
    problems = host_problems("db1", ["db"], report, False, 2048, (3, 9))
    assert len(problems) == 1 and wanted in problems[0], problems


def test_disk_is_not_required_on_a_proxy() -> None:
    assert host_problems("lb1", ["proxy"], dict(FIT, free_mb=1), False, 2048, (3, 9)) == []


def test_ubuntu_is_of_the_debian_family() -> None:
    assert host_problems("web1", ["app"], dict(FIT, distribution="Ubuntu 24.04"), True, 2048, (3, 9)) == [
        "host web1: no Docker socket at /var/run/docker.sock; Docker Engine must run on every app host before an upgrade: run site.yml first"]


@pytest.mark.parametrize("output, wanted", [
    (DF_PLENTY, 39062), (DF_TIGHT, 500), ("", None), (None, None), ("Filesystem\n", None),
    ("Filesystem 1024-blocks Used Available Capacity Mounted on\nx y z - 1% /\n", None),
])
def test_parse_df_free_mb(output: t.Any, wanted: int | None) -> None:
    assert parse_df_free_mb(output) == wanted


@pytest.mark.parametrize("value, hosts", [(None, []), ("", []), ([], []), ("a", ["a"]), (" a , b,a", ["a", "b"]), (["b", "a"], ["b", "a"])])
def test_parse_host_list(value: t.Any, hosts: list[str]) -> None:
    assert parse_host_list(value, "x") == (hosts, [])
