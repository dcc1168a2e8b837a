# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The topology graph drawn from real plans: nodes per host, edges between the duties."""

from __future__ import annotations

import re
import shutil
import subprocess
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan
from ansible_collections.fediscale.lemmy.plugins.module_utils._topology import TopologyError, build_dot, quote

SECRETS = {
    "lemmy_database_password": {"kind": "string", "length": 32},
    "pictrs_api_key": {"kind": "string", "length": 32},
    "lemmy_admin_password": {"kind": "string", "length": 24},
}
SETTINGS = {"lemmy_domain": "lemmy.example.org", "lemmy_version": "0.19.20", "secret_facts": SECRETS}
EDGE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" -> "((?:[^"\\]|\\.)*)"(?: \[(.*)\])?;$')
NODE = re.compile(r'^\s*"((?:[^"\\]|\\.)*)" \[(.*)\];$')
CLUSTER = re.compile(r'^\s*subgraph "cluster_([^"/]*)(?:/[^"]*)?" \{$')


def medium_plan(**settings: t.Any) -> dict[str, t.Any]:
    groups = {
        "lemmy_proxy": ["lb1"],
        "lemmy_api": ["web1", "web2", "web10"],
        "lemmy_ui": ["web1", "web2", "web10"],
        "lemmy_federation": ["work1", "work2"],
        "lemmy_scheduler": ["work1"],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars = {"web1": {"ansible_host": "10.0.0.21", "lemmy_api_processes": 2}, "work1": {"lemmy_federation_processes": 2}}
    return build_plan(groups, host_vars, dict(SETTINGS, **settings))


def large_plan(**settings: t.Any) -> dict[str, t.Any]:
    groups = {
        "lemmy_proxy": ["lb1", "lb2"],
        "lemmy_api": ["api1", "api2"],
        "lemmy_ui": ["ui1"],
        "lemmy_federation": ["fed1"],
        "lemmy_scheduler": ["sched1"],
        "pictrs": ["media1", "media2"],
        "lemmy_db": [],
    }
    base = {"pictrs_repo_type": "postgres", "lemmy_database_host": "pg.example.net", "lemmy_ui_static_strategy": "object_storage",
            "lemmy_ui_static_bucket": "lemmy-static", "lemmy_ui_static_s3_endpoint": "https://s3.example.org",
            "nginx_static_origin": "https://s3.example.org"}
    secrets = dict(SECRETS, lemmy_ui_static_s3_access_key={"kind": "string", "length": 20}, lemmy_ui_static_s3_secret_key={"kind": "string", "length": 40})
    return build_plan(groups, {}, dict(SETTINGS, secret_facts=secrets, **dict(base, **settings)))


def parse(dot: str) -> tuple[dict[str, str], dict[str, str], list[tuple[str, str, str]]]:
    """(node id -> its host cluster or "", node id -> label, edges (tail, head, attributes))."""
    cluster_of: dict[str, str] = {}
    labels: dict[str, str] = {}
    edges = []
    stack: list[str] = []
    for line in dot.splitlines():
        match = CLUSTER.match(line)
        if match:
            stack.append(match.group(1))
            continue
        if line.strip() == "}":
            if stack:
                stack.pop()
            continue
        match = EDGE.match(line)
        if match:
            edges.append((match.group(1), match.group(2), match.group(3) or ""))
            continue
        match = NODE.match(line)
        if match:
            cluster_of.setdefault(match.group(1), stack[0] if stack else "")
            label = re.search(r'label="((?:[^"\\]|\\.)*)"', match.group(2))
            labels[match.group(1)] = label.group(1) if label else ""
    return cluster_of, labels, edges


def heads(edges: list[tuple[str, str, str]], tail: str) -> set[str]:
    return {head for edge_tail, head, _attrs in edges if edge_tail == tail}


def test_every_process_is_a_node_in_its_host_cluster() -> None:
    plan = medium_plan()
    cluster_of, labels, _edges = parse(build_dot(plan, {"lb1": "10.0.0.10"}))
    for proc in plan["processes"]:
        assert cluster_of["%s/%s" % (proc["host"], proc["name"])] == proc["host"]
    assert cluster_of["lb1/nginx"] == "lb1"
    assert cluster_of["lb1/nginx-internal"] == "lb1"
    assert cluster_of["db1/postgresql"] == "db1"
    assert labels["web1/lemmy-api-2"] == "lemmy-api-2\\n:8537"


def test_senders_show_their_shard_index_of_n() -> None:
    _clusters, labels, _edges = parse(build_dot(medium_plan(), ["lb1"]))
    assert labels["work1/lemmy-federation-1"] == "lemmy-federation-1\\nsender 1/3"
    assert labels["work1/lemmy-federation-2"] == "lemmy-federation-2\\nsender 2/3"
    assert labels["work2/lemmy-federation-3"] == "lemmy-federation-3\\nsender 3/3"


def test_clusters_are_in_natural_host_order() -> None:
    dot = build_dot(medium_plan(), ["lb1"])
    order = [m.group(1) for m in map(CLUSTER.match, dot.splitlines()) if m]
    hosts = list(dict.fromkeys(name for name in order if name in ("web1", "web2", "web10")))
    assert hosts == ["web1", "web2", "web10"]


def test_proxies_feed_the_pools_and_the_pools_every_member() -> None:
    plan = medium_plan()
    _clusters, _labels, edges = parse(build_dot(plan, ["lb1"]))
    assert heads(edges, "clients") == {"lb1/nginx"}
    assert heads(edges, "lb1/nginx") == {"pool/ui", "pool/api"}
    # Several API processes on web1 are one edge, into their shared sub-cluster.
    api_edges = [(head, attrs) for tail, head, attrs in edges if tail == "pool/api"]
    assert sorted(head for head, _attrs in api_edges) == ["web1/lemmy-api-1", "web10/lemmy-api-1", "web2/lemmy-api-1"]
    assert [attrs for head, attrs in api_edges if head == "web1/lemmy-api-1"] == ['lhead="cluster_web1/api"']
    assert heads(edges, "pool/ui") == {"web1/lemmy-ui-1", "web2/lemmy-ui-1", "web10/lemmy-ui-1"}


def test_ui_renders_through_the_internal_nginx_to_the_api_pool() -> None:
    _clusters, _labels, edges = parse(build_dot(medium_plan(), ["lb1"], internal_port=9480))
    for host in ("web1", "web2", "web10"):
        assert heads(edges, "%s/lemmy-ui-1" % host) == {"lb1/nginx-internal"}
    assert heads(edges, "lb1/nginx-internal") == {"pool/api"}
    assert ":9480" in build_dot(medium_plan(), ["lb1"], internal_port=9480)


def test_lemmy_server_processes_reach_the_database_and_the_api_reaches_pictrs() -> None:
    _clusters, _labels, edges = parse(build_dot(medium_plan(), ["lb1"]))
    for tail in ("web1/lemmy-api-1", "web2/lemmy-api-1", "web10/lemmy-api-1"):
        assert heads(edges, tail) == {"db1/postgresql", "media1/pictrs"}
    assert heads(edges, "work1/lemmy-scheduler") == {"db1/postgresql"}
    assert heads(edges, "work1/lemmy-federation-1") == {"db1/postgresql", "remote"}
    assert heads(edges, "work2/lemmy-federation-3") == {"db1/postgresql", "remote"}
    # sled: files and repo on the pict-rs host's disk, no database edge.
    assert heads(edges, "media1/pictrs") == {"media1/pictrs-files"}


def test_postgres_repo_object_storage_external_database_and_static_bucket() -> None:
    plan = large_plan()
    dot = build_dot(plan, {"lb1": {"ansible_host": "10.1.0.11"}, "lb2": {"lemmy_host_address": "lb2.internal", "ansible_host": "10.1.0.12"}},
                    {"media1": "object_storage", "media2": "object_storage"}, static_origin="https://s3.example.org")
    cluster_of, labels, edges = parse(dot)
    assert cluster_of["external/postgresql"] == ""
    assert "pg.example.net" in labels["external/postgresql"]
    assert heads(edges, "pool/pictrs") == {"media1/pictrs", "media2/pictrs"}
    for host in ("media1", "media2"):
        assert heads(edges, "%s/pictrs" % host) == {"external/postgresql", "storage/pictrs"}
    assert heads(edges, "api1/lemmy-api-1") == {"external/postgresql", "pool/pictrs"}
    assert heads(edges, "lb2/nginx") == {"pool/ui", "pool/api", "storage/static"}
    assert "https://s3.example.org" in labels["storage/static"]
    assert 'label="lb2\\nlb2.internal"' in dot
    assert 'label="lb1\\n10.1.0.11"' in dot


def test_postgres_repo_on_a_managed_database_gets_its_own_database_node() -> None:
    groups = {"lemmy_proxy": ["lb1"], "lemmy_api": ["web1"], "lemmy_ui": ["web1"], "lemmy_federation": ["web1"],
              "lemmy_scheduler": ["web1"], "pictrs": ["media1"], "lemmy_db": ["db1"]}
    plan = build_plan(groups, {}, dict(SETTINGS, pictrs_repo_type="postgres"))
    cluster_of, _labels, edges = parse(build_dot(plan, ["lb1"]))
    assert cluster_of["db1/postgresql-pictrs"] == "db1"
    assert heads(edges, "media1/pictrs") == {"db1/postgresql-pictrs", "media1/pictrs-files"}


def test_excluded_proxies_are_left_out() -> None:
    groups = {"lemmy_proxy": ["lb1", "lb2"], "lemmy_api": ["web1"], "lemmy_ui": ["web1"], "lemmy_federation": ["web1"],
              "lemmy_scheduler": ["web1"], "pictrs": ["web1"], "lemmy_db": ["web1"]}
    plan = build_plan(groups, {}, SETTINGS, excluded_hosts=["lb1"])
    cluster_of, _labels, edges = parse(build_dot(plan, ["lb1", "lb2"]))
    assert "lb1/nginx" not in cluster_of
    # The internal nginx moves to the first proxy that is left.
    assert cluster_of["lb2/nginx-internal"] == "lb2"
    assert heads(edges, "clients") == {"lb2/nginx"}


def test_federation_disabled_draws_no_senders() -> None:
    plan = medium_plan(lemmy_federation_enabled=False)
    cluster_of, _labels, _edges = parse(build_dot(plan, ["lb1"]))
    assert not [node for node in cluster_of if "federation" in node]
    assert "remote" not in cluster_of


def test_quote_escapes_quotes_backslashes_and_newlines() -> None:
    assert quote('a"b\\c\nd') == '"a\\"b\\\\c\\nd"'


@pytest.mark.parametrize(
    ("plan", "kwargs", "message"),
    [
        ("not a plan", {}, "plan must be the plan made by fediscale.lemmy.lemmy_plan"),
        ({"domain": "x"}, {}, "plan lacks version, processes, database, pictrs, federation"),
        (None, {"pictrs_store_types": {"media1": "s3"}}, "host media1: pictrs_store_type is 's3'; use filesystem or object_storage"),
        (None, {"proxies": "lb1"}, "proxies must be a list of host names or a mapping"),
    ],
)
def test_bad_input_names_the_value(plan: t.Any, kwargs: dict[str, t.Any], message: str) -> None:
    arguments = {"proxies": ["lb1"], **kwargs}
    with pytest.raises(TopologyError) as caught:
        build_dot(medium_plan() if plan is None else plan, **arguments)
    assert message in str(caught.value)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz is not installed")
def test_graphviz_accepts_the_text_and_draws_every_host() -> None:
    plan = large_plan()
    svg = subprocess.run(["dot", "-Tsvg"], input=build_dot(plan, ["lb1", "lb2"]), capture_output=True, text=True, check=True)
    assert "Warning" not in svg.stderr and "Error" not in svg.stderr
    for host in ("lb1", "lb2", "api1", "api2", "ui1", "fed1", "sched1", "media1", "media2"):
        assert "<title>cluster_%s</title>" % host in svg.stdout
