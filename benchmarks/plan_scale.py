# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time the placement planner on large fleets. Prints numbers, asserts nothing.

Run from the checkout:  .venv/bin/python benchmarks/plan_scale.py [--runs 5] [--playbook]

--playbook also times `ansible-playbook plan.yml` on a generated 200-host, 64-shard inventory beside
an empty playbook on the same inventory (target: at most 2 x the empty run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import typing as t
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(_ROOT / ".collections"))

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan, render_table  # noqa: E402

SETTINGS = {
    "lemmy_domain": "lemmy.example.org",
    "lemmy_version": "0.19.20",
    "database_password_set": True,
    "secret_facts": {"pictrs_api_key": {"kind": "string", "length": 32}, "lemmy_admin_password": {"kind": "string", "length": 24}},
    "lemmy_database_pool_size": 2,
    "lemmy_database_max_connections": 100000,
    "pictrs_repo_type": "postgres",
}


def fleet(hosts: int, shards: int) -> tuple[dict[str, list[str]], dict[str, dict[str, t.Any]]]:
    """`hosts` hosts: 2 proxies, 1 db, 1 scheduler, 3 pict-rs, `shards` senders on 2 per host, the rest API+UI."""
    sender_hosts = ["fed%04d" % i for i in range(1, (shards + 1) // 2 + 1)]
    fixed = 2 + 1 + 1 + 3 + len(sender_hosts)
    web = ["web%04d" % i for i in range(1, max(1, hosts - fixed) + 1)]
    groups = {
        "lemmy_proxy": ["lb1", "lb2"],
        "lemmy_api": web,
        "lemmy_ui": web,
        "lemmy_federation": sender_hosts,
        "lemmy_scheduler": ["sched1"],
        "pictrs": ["media1", "media2", "media3"],
        "lemmy_db": ["db1"],
    }
    host_vars: dict[str, dict[str, t.Any]] = {h: {"ansible_host": "10.%d.%d.%d" % (i // 65536, i // 256 % 256, i % 256)} for i, h in enumerate(web, 1)}
    for position, host in enumerate(sender_hosts):
        remaining = shards - 2 * position
        host_vars[host] = {"lemmy_federation_processes": min(2, remaining)}
    host_vars["web0001"]["lemmy_api_processes"] = 2
    return groups, host_vars


def measure(hosts: int, shards: int, runs: int) -> tuple[float, float, int]:
    """Median wall time and median CPU time of planning plus rendering the table."""
    groups, host_vars = fleet(hosts, shards)
    wall = []
    cpu = []
    processes = 0
    for _run in range(runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        plan = build_plan(groups, host_vars, SETTINGS)
        render_table(plan)
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
        processes = len(plan["processes"])
    return statistics.median(wall), statistics.median(cpu), processes


def write_inventory(folder: Path, hosts: int, shards: int) -> Path:
    """A YAML inventory of fleet(hosts, shards), with the settings in group_vars/all (JSON is YAML)."""
    groups, host_vars = fleet(hosts, shards)
    inventory: dict[str, t.Any] = {"all": {"children": {}}}
    for name, members in groups.items():
        inventory["all"]["children"][name] = {"hosts": {h: (host_vars.get(h) or {}) for h in members}}
    (folder / "group_vars").mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in SETTINGS.items() if k not in ("secret_facts", "database_password_set")}
    settings.update(lemmy_database_password="d" * 32, pictrs_api_key="p" * 32, lemmy_admin_password="a" * 24)
    (folder / "group_vars" / "all.yml").write_text(json.dumps(settings), encoding="utf-8")
    path = folder / "hosts.yml"
    path.write_text(json.dumps(inventory), encoding="utf-8")
    return path


def time_playbook(inventory: Path, playbook: Path, runs: int) -> float:
    """Median wall time of ansible-playbook, in seconds."""
    ansible_playbook = Path(sys.executable).parent / "ansible-playbook"
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(_ROOT / ".collections"))
    times = []
    for _run in range(runs):
        start = time.perf_counter()
        subprocess.run([str(ansible_playbook), "-i", str(inventory), str(playbook)], cwd=_ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def playbook_figures(runs: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        inventory = write_inventory(Path(folder), 200, 64)
        empty = Path(folder) / "empty.yml"
        empty.write_text('[{"hosts": "localhost", "gather_facts": false, "tasks": []}]', encoding="utf-8")
        empty_s = time_playbook(inventory, empty, runs)
        plan_s = time_playbook(inventory, _ROOT / "plan.yml", runs)
    print()
    print("ansible-playbook on 200 hosts / 64 shards (median of %d runs)" % runs)
    print("%-34s %8.2f s" % ("empty playbook", empty_s))
    print("%-34s %8.2f s" % ("plan.yml", plan_s))
    print("%-34s %8.2f   (target at most 2.00)" % ("plan.yml / empty", plan_s / empty_s))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per size; the median is printed")
    parser.add_argument("--playbook", action="store_true", help="also time ansible-playbook plan.yml against an empty playbook")
    args = parser.parse_args()
    print("%-24s %10s %14s %14s" % ("fleet", "processes", "median wall", "median CPU"))
    for hosts, shards in ((200, 64), (1000, 64), (1000, 256)):
        wall, cpu, processes = measure(hosts, shards, args.runs)
        print("%-24s %10d %11.1f ms %11.1f ms" % ("%d hosts / %d shards" % (hosts, shards), processes, wall * 1000, cpu * 1000))
    if args.playbook:
        playbook_figures(args.runs)


if __name__ == "__main__":
    main()
