# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Prometheus file_sd targets of a plan's lemmy_server processes.

Private to the collection: may change at any time. Pure Python, no Ansible imports.
"""

from __future__ import annotations

import typing as t

# The path Lemmy serves its metrics on (src/prometheus_metrics.rs).
METRICS_PATH = "/metrics"


class TargetsError(Exception):
    """The plan carries no metrics: it was made without lemmy_prometheus: true."""


def _shard(proc: t.Mapping[str, t.Any]) -> str:
    if proc.get("kind") == "federation" and proc.get("shard_index") is not None:
        return "%s/%s" % (proc["shard_index"], proc["shard_count"])
    return ""


def file_sd(plan: t.Mapping[str, t.Any], job: str = "lemmy") -> list[dict[str, t.Any]]:
    """One file_sd group per lemmy_server process, in the plan's order.

    Each group has one target and the labels kind, host, process and shard (``i/N`` for
    federation senders, empty otherwise), so one process answers for one series.
    """
    groups: list[dict[str, t.Any]] = []
    server = [p for p in plan.get("processes", []) if p.get("kind") in ("api", "federation", "scheduler")]
    for proc in server:
        metrics = proc.get("metrics")
        if not metrics:
            continue
        groups.append(
            {
                "targets": [metrics["target"]],
                "labels": {
                    "job": job,
                    "kind": proc["kind"],
                    "host": proc["host"],
                    "process": proc["name"],
                    "shard": _shard(proc),
                },
            }
        )
    if server and not groups:
        raise TargetsError(
            "the plan has no metrics ports: set lemmy_prometheus: true in group_vars/all (and run site.yml so every "
            "lemmy_server process serves them) before writing Prometheus targets"
        )
    return groups
