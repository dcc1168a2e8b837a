# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Topology picture of a Lemmy plan, as Graphviz DOT text.

The input is the plan made by ``_plan.build_plan`` (the ``plan`` return value of
``fediscale.lemmy.lemmy_plan``) plus what the plan does not carry: the nginx proxies and the
pict-rs store type of each pict-rs host. The output is DOT text for ``dot -Tsvg``: one cluster per
host, one node per process, and the traffic between them.

Pools are drawn as one node each (the nginx upstream), so N proxies and M members cost N + M edges
instead of N x M, which keeps a fleet of dozens of hosts readable.

Pure Python, no Ansible imports.
"""

from __future__ import annotations

import re
import typing as t

# Fill colours per kind of node (light, so black text stays readable when printed).
COLOURS = {
    "proxy": "#cfe2f3",
    "ui": "#d9ead3",
    "api": "#fff2cc",
    "federation": "#fce5cd",
    "scheduler": "#ead1dc",
    "pictrs": "#d0e0e3",
    "database": "#d9d2e9",
    "storage": "#eeeeee",
    "outside": "#ffffff",
    "pool": "#f3f3f3",
}
KIND_TITLES = {
    "api": "API",
    "ui": "lemmy-ui",
    "federation": "sender",
    "scheduler": "scheduler",
    "pictrs": "pict-rs",
}
PICTRS_STORE_TYPES = ("filesystem", "object_storage")


class TopologyError(ValueError):
    """The plan or the extra inputs cannot be drawn; the message says which value and why."""


def quote(text: t.Any) -> str:
    """A DOT double-quoted string (IDs and labels); newlines become DOT line breaks."""
    value = str(text).replace("\\", "\\\\").replace('"', '\\"')
    return '"%s"' % value.replace("\r", "").replace("\n", "\\n")


def _natural_key(name: str) -> tuple:
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def _attrs(**attrs: t.Any) -> str:
    if not attrs:
        return ""
    return " [%s]" % ", ".join("%s=%s" % (key, quote(value)) for key, value in sorted(attrs.items()))


def _process_label(proc: t.Mapping[str, t.Any]) -> str:
    lines = [proc["name"]]
    if proc["kind"] == "federation":
        lines.append("sender %d/%d" % (proc["shard_index"], proc["shard_count"]))
    elif proc["kind"] == "scheduler":
        lines.append("scheduled tasks")
    if proc.get("port") is not None:
        lines.append(":%d" % proc["port"])
    return "\n".join(lines)


def _address(host: str, value: t.Any) -> str:
    """How other hosts reach a proxy: lemmy_host_address, then ansible_host, then its name (as the planner does)."""
    if isinstance(value, t.Mapping):
        for key in ("lemmy_host_address", "ansible_host"):
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
        return host
    if isinstance(value, str) and value.strip():
        return value.strip()
    return host


def _read_proxies(proxies: t.Any) -> dict[str, str]:
    """Proxy host name -> address, from a list of names or a mapping of name -> address (or -> host variables)."""
    if isinstance(proxies, t.Mapping):
        return {str(host): _address(str(host), value) for host, value in proxies.items()}
    if isinstance(proxies, (list, tuple)):
        return {str(host): str(host) for host in proxies}
    raise TopologyError("proxies must be a list of host names or a mapping of host name to address, got %s" % type(proxies).__name__)


def _check_plan(plan: t.Any) -> None:
    if not isinstance(plan, t.Mapping):
        raise TopologyError("plan must be the plan made by fediscale.lemmy.lemmy_plan (a mapping), got %s" % type(plan).__name__)
    missing = [key for key in ("domain", "version", "processes", "database", "pictrs", "federation") if key not in plan]
    if missing:
        raise TopologyError(
            "plan lacks %s; pass the plan made by fediscale.lemmy.lemmy_plan (hostvars['localhost']['lemmy_plan'])" % ", ".join(missing)
        )
    for index, proc in enumerate(plan["processes"]):
        if not isinstance(proc, t.Mapping) or not all(key in proc for key in ("host", "address", "name", "kind")):
            raise TopologyError("plan.processes[%d] lacks host, address, name or kind; pass the plan unchanged" % index)
        if proc["kind"] not in KIND_TITLES:
            raise TopologyError("plan.processes[%d] (%s) has unknown kind %s" % (index, proc["name"], proc["kind"]))


def build_dot(
    plan: t.Mapping[str, t.Any],
    proxies: t.Any,
    pictrs_store_types: t.Mapping[str, t.Any] | None = None,
    internal_port: int = 8480,
    static_origin: str | None = None,
) -> str:
    """DOT text of the plan's topology.

    ``proxies`` are the lemmy_proxy hosts (names, or name -> address); those in the plan's
    ``excluded_hosts`` are left out. ``pictrs_store_types`` maps
    a pict-rs host to ``filesystem`` (default) or ``object_storage``. ``internal_port`` is the port
    of the internal nginx on the first proxy that lemmy-ui's server-side rendering calls.
    ``static_origin`` is the S3 origin of ``/static/`` with the object_storage static strategy.
    """
    _check_plan(plan)
    excluded = set(plan.get("excluded_hosts") or ())
    proxy_addresses = {host: address for host, address in _read_proxies(proxies).items() if host not in excluded}
    store_types = dict(pictrs_store_types or {})
    for host, store in store_types.items():
        if store not in PICTRS_STORE_TYPES:
            raise TopologyError("host %s: pictrs_store_type is %r; use filesystem or object_storage" % (host, store))

    processes = list(plan["processes"])
    by_kind: dict[str, list[t.Mapping[str, t.Any]]] = {kind: [] for kind in KIND_TITLES}
    for proc in processes:
        by_kind[proc["kind"]].append(proc)
    database = plan["database"]
    proxy_hosts = sorted(proxy_addresses, key=_natural_key)

    def node_id(host: str, name: str) -> str:
        return "%s/%s" % (host, name)

    # host -> (address, [(node id, label, kind)])
    clusters: dict[str, tuple[str, list[tuple[str, str, str]]]] = {}

    def place(host: str, address: str, ident: str, label: str, kind: str) -> None:
        clusters.setdefault(host, (address, []))[1].append((ident, label, kind))

    for host in proxy_hosts:
        place(host, proxy_addresses[host], node_id(host, "nginx"), "nginx\nedge", "proxy")
    if proxy_hosts:
        first = proxy_hosts[0]
        place(first, proxy_addresses[first], node_id(first, "nginx-internal"), "nginx internal\n:%d (SSR)" % internal_port, "proxy")
    for proc in processes:
        place(proc["host"], proc["address"], node_id(proc["host"], proc["name"]), _process_label(proc), proc["kind"])

    database_node = None
    if database.get("host"):
        if database.get("managed"):
            database_node = node_id(database["host"], "postgresql")
            place(database["host"], database.get("address") or database["host"], database_node, "PostgreSQL\nlemmy", "database")
        else:
            database_node = "external/postgresql"

    repo_type = plan["pictrs"].get("repo_type")
    pictrs_procs = by_kind["pictrs"]
    pictrs_database_node = None
    if repo_type == "postgres" and pictrs_procs and database_node:
        pictrs_database_node = database_node
        if database.get("managed"):
            pictrs_database_node = node_id(database["host"], "postgresql-pictrs")
            place(database["host"], database.get("address") or database["host"], pictrs_database_node, "PostgreSQL\npictrs", "database")
    for proc in pictrs_procs:
        if store_types.get(proc["host"], "filesystem") != "object_storage":
            files_label = "files%s\non disk" % (" + sled repo" if repo_type == "sled" else "")
            place(proc["host"], proc["address"], node_id(proc["host"], "pictrs-files"), files_label, "storage")

    lines = [
        "digraph lemmy {",
        "  graph%s;"
        % _attrs(
            label="Lemmy %s (lemmy-ui %s) for %s" % (plan["version"], plan.get("ui_version") or plan["version"], plan["domain"]),
            labelloc="t",
            fontname="Helvetica",
            fontsize="16",
            rankdir="LR",
            compound="true",
            ordering="out",
            # Little crossing minimisation keeps hosts in natural name order (web2 before web10).
            mclimit="0.01",
            newrank="true",
            nodesep="0.15",
            ranksep="0.7",
            splines="spline",
        ),
        "  node%s;" % _attrs(shape="box", style="rounded,filled", fontname="Helvetica", fontsize="10", margin="0.08,0.04"),
        "  edge%s;" % _attrs(fontname="Helvetica", fontsize="9", color="#555555", arrowsize="0.6"),
        "  %s%s;" % (quote("clients"), _attrs(label="browsers, apps\nand other instances", shape="ellipse", fillcolor=COLOURS["outside"])),
    ]

    # Several processes of one kind on a host share a borderless sub-cluster, so edges to and from
    # them are drawn once per host (lhead/ltail) instead of once per process.
    groups: dict[tuple[str, str], list[str]] = {}
    for host in sorted(clusters, key=_natural_key):
        address, nodes = clusters[host]
        title = host if address == host else "%s\n%s" % (host, address)
        lines.append("  subgraph %s {" % quote("cluster_" + host))
        lines.append("    graph%s;" % _attrs(label=title, style="rounded", color="#999999", fontsize="11", labeljust="l"))
        by_local_kind: dict[str, list[tuple[str, str, str]]] = {}
        for node in nodes:
            by_local_kind.setdefault(node[2], []).append(node)
        for kind, members in by_local_kind.items():
            shared = kind in KIND_TITLES and len(members) > 1
            indent = "    "
            if shared:
                lines.append("    subgraph %s {" % quote("cluster_%s/%s" % (host, kind)))
                lines.append("      graph%s;" % _attrs(label="", style="invis", margin="4"))
                indent = "      "
                groups[(host, kind)] = [ident for ident, _label, _kind in members]
            for ident, label, node_kind in members:
                lines.append("%s%s%s;" % (indent, quote(ident), _attrs(label=label, fillcolor=COLOURS[node_kind])))
            if shared:
                lines.append("      {rank=same; %s}" % " ".join(quote(ident) + ";" for ident, _label, _kind in members))
                lines.append("    }")
        lines.append("  }")

    edges: list[tuple[str, str, dict[str, t.Any]]] = []

    def pool(ident: str, label: str) -> str:
        lines.append("  %s%s;" % (quote(ident), _attrs(label=label, shape="box", style="dashed,filled", fillcolor=COLOURS["pool"])))
        return ident

    ui_pool = api_pool = None
    if by_kind["ui"]:
        ui_pool = pool("pool/ui", "UI pool\n%d process%s" % (len(by_kind["ui"]), "" if len(by_kind["ui"]) == 1 else "es"))
    if by_kind["api"]:
        api_pool = pool(
            "pool/api",
            "API pool (%s)\n%d process%s" % (plan.get("api_balancing", "round_robin"), len(by_kind["api"]), "" if len(by_kind["api"]) == 1 else "es"),
        )
    for host in proxy_hosts:
        edges.append(("clients", node_id(host, "nginx"), {}))
        if ui_pool:
            edges.append((node_id(host, "nginx"), ui_pool, {"label": "/"} if host == proxy_hosts[0] else {}))
        if api_pool:
            edges.append((node_id(host, "nginx"), api_pool, {"label": "/api, /pictrs, ..."} if host == proxy_hosts[0] else {}))
    for proc in by_kind["ui"]:
        edges.append((ui_pool, node_id(proc["host"], proc["name"]), {}))
        if proxy_hosts:
            edges.append((node_id(proc["host"], proc["name"]), node_id(proxy_hosts[0], "nginx-internal"), {"style": "dashed"}))
    if proxy_hosts and api_pool:
        edges.append((node_id(proxy_hosts[0], "nginx-internal"), api_pool, {"style": "dashed", "label": "SSR"}))
    for proc in by_kind["api"]:
        edges.append((api_pool, node_id(proc["host"], proc["name"]), {}))

    if plan.get("static_strategy") == "object_storage":
        lines.append(
            "  %s%s;"
            % (quote("storage/static"), _attrs(label="object storage\n/static/\n%s" % (static_origin or ""), shape="cylinder", fillcolor=COLOURS["storage"]))
        )
        for host in proxy_hosts:
            edges.append((node_id(host, "nginx"), "storage/static", {"style": "dotted"}))

    if database_node == "external/postgresql":
        external = _attrs(label="PostgreSQL (external)\n%s" % database["host"], shape="cylinder", fillcolor=COLOURS["database"])
        lines.append("  %s%s;" % (quote(database_node), external))

    # pict-rs: behind the API (uploads and image requests pass through lemmy_server).
    pictrs_target = None
    if len(pictrs_procs) == 1:
        pictrs_target = node_id(pictrs_procs[0]["host"], pictrs_procs[0]["name"])
    elif pictrs_procs:
        pictrs_target = pool("pool/pictrs", "pict-rs pool\n%d processes" % len(pictrs_procs))
        for proc in pictrs_procs:
            edges.append((pictrs_target, node_id(proc["host"], proc["name"]), {}))

    for proc in by_kind["api"]:
        ident = node_id(proc["host"], proc["name"])
        if pictrs_target:
            edges.append((ident, pictrs_target, {"color": "#6fa8dc"}))
        if database_node:
            edges.append((ident, database_node, {"color": "#8e7cc3"}))
    for proc in by_kind["federation"] + by_kind["scheduler"]:
        if database_node:
            edges.append((node_id(proc["host"], proc["name"]), database_node, {"color": "#8e7cc3"}))
    if by_kind["federation"]:
        lines.append("  %s%s;" % (quote("remote"), _attrs(label="other instances\n(outgoing activities)", shape="ellipse", fillcolor=COLOURS["outside"])))
        for proc in by_kind["federation"]:
            edges.append((node_id(proc["host"], proc["name"]), "remote", {"style": "dotted"}))

    object_store = False
    for proc in pictrs_procs:
        ident = node_id(proc["host"], proc["name"])
        if pictrs_database_node:
            edges.append((ident, pictrs_database_node, {"color": "#8e7cc3", "label": "repo"}))
        if store_types.get(proc["host"], "filesystem") == "object_storage":
            object_store = True
            edges.append((ident, "storage/pictrs", {"label": "files"}))
        else:
            edges.append((ident, node_id(proc["host"], "pictrs-files"), {}))
    if object_store:
        lines.append("  %s%s;" % (quote("storage/pictrs"), _attrs(label="object storage\nimages", shape="cylinder", fillcolor=COLOURS["storage"])))

    group_of = {ident: key for key, members in groups.items() for ident in members}
    seen = set()
    for tail, head, attrs in edges:
        attrs = dict(attrs)
        if tail in group_of:
            attrs["ltail"] = "cluster_%s/%s" % group_of[tail]
            tail = groups[group_of[tail]][0]
        if head in group_of:
            attrs["lhead"] = "cluster_%s/%s" % group_of[head]
            head = groups[group_of[head]][0]
        if (tail, head) in seen:
            continue
        seen.add((tail, head))
        lines.append("  %s -> %s%s;" % (quote(tail), quote(head), _attrs(**attrs)))
    lines.append("}")
    return "\n".join(lines) + "\n"
