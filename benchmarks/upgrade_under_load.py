# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Benchmark: upgrade 0.19.19 -> 0.19.20 under load on one lab, three ways, and the converge. Prints numbers, asserts nothing.

  converge     the lab destroyed and created again (not measured), then site.yml twice: the first converge
               and a no-op, with the no-op's changed count and the ratio no-op / first converge

  rolling      rolling_upgrade.yml (static files published to the bucket, drained batches)
  all_at_once  every container replaced together (benchmarks/naive_all_at_once.yml)
  round_robin  rolling_upgrade.yml, but with lemmy_ui_static_strategy=single: round-robin UI balancing
               and each UI process serving its own /static/<hash>/ (no publishing)

Before each run the fleet is put back on 0.19.19 with site.yml (not measured). For each run it prints
the failed requests, static 404s, wall time, the restart floor (sum of the per-batch container start
and health times from the upgrade report) and the ratio wall / floor.

  .venv/bin/python benchmarks/upgrade_under_load.py --lab-name fsl-dev-upg --http-port 38080 --s3-port 39000
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import typing as t

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FROM, TO = "0.19.19", "0.19.20"


def playbook(args: argparse.Namespace, path: str, *extra: str) -> tuple[int, float]:
    cmd = [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "lab"),
           "-e", "lab_name=" + args.lab_name, "-e", "lab_http_port=%d" % args.http_port, "-e", "lab_s3_port=%d" % args.s3_port,
           "-e", '{"lemmy_rate_limits": {"message": 100000, "message_per_second": 60}}', path, *extra]
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_FORCE_COLOR="0")
    started = time.monotonic()
    with open(os.path.join(args.work, "ansible.log"), "a", encoding="utf-8") as log:
        log.write("\n### %s %s\n" % (path, " ".join(extra)))
        log.flush()
        rc = subprocess.call(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return rc, time.monotonic() - started


def changed_in_last_recap(args: argparse.Namespace) -> int:
    """The sum of changed= over the hosts of the last PLAY RECAP in the log."""
    with open(os.path.join(args.work, "ansible.log"), encoding="utf-8") as handle:
        text = handle.read()
    recap = text[text.rfind("PLAY RECAP"):]
    return sum(int(n) for n in re.findall(r"changed=(\d+)", recap.split("\n\n")[0]))


def converge(args: argparse.Namespace) -> dict[str, t.Any]:
    playbook(args, os.path.join(ROOT, "playbooks", "lab_down.yml"))
    up_rc, _up_seconds = playbook(args, os.path.join(ROOT, "playbooks", "lab_up.yml"))
    first_rc, first = playbook(args, os.path.join(ROOT, "site.yml"), "-e", "lemmy_version=" + TO)
    noop_rc, noop = playbook(args, os.path.join(ROOT, "site.yml"), "-e", "lemmy_version=" + TO)
    return {"name": "converge", "lab_up_rc": up_rc, "first_rc": first_rc, "noop_rc": noop_rc, "first_s": round(first, 1),
            "noop_s": round(noop, 1), "noop_changed": changed_in_last_recap(args), "ratio": round(noop / first, 2) if first else None}


def run(args: argparse.Namespace, name: str, path: str, *extra: str) -> dict[str, t.Any]:
    reset_rc, _reset_seconds = playbook(args, os.path.join(ROOT, "site.yml"), "-e", "lemmy_version=" + FROM, *extra)
    load_dir = os.path.join(args.work, name)
    os.makedirs(load_dir, exist_ok=True)
    out, stop = os.path.join(load_dir, "load.json"), os.path.join(load_dir, "stop")
    for leftover in (out, stop):
        if os.path.exists(leftover):
            os.unlink(leftover)
    load = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "load", "loadgen.py"), "--port", str(args.http_port),
                             "--rate", str(args.rate), "--threads", str(args.threads), "--duration", "3600",
                             "--out", out, "--stop-file", stop])
    report = os.path.join(load_dir, "report.json")
    rc, wall = playbook(args, path, "-e", "lemmy_version=" + TO, "-e", "lemmy_upgrade_report_file=" + report, *extra)
    with open(stop, "w", encoding="utf-8") as handle:
        handle.write("stop\n")
    load.wait(timeout=120)
    with open(out, encoding="utf-8") as handle:
        result = json.load(handle)
    floor = None
    if os.path.exists(report):
        with open(report, encoding="utf-8") as handle:
            floor = float(json.load(handle)["restart_floor_seconds"])
    return {"name": name, "reset_rc": reset_rc, "rc": rc, "wall_s": round(wall, 1), "requests": result["total"],
            "failed": result["failed"], "static_404": result["static_404"], "failures_by_status": result["failures_by_status"],
            "floor_s": floor, "ratio": round(wall / floor, 2) if floor else None}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-name", default="fediscale-lab")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--s3-port", type=int, default=9000)
    parser.add_argument("--rate", type=float, default=25.0)
    parser.add_argument("--threads", type=int, default=16)
    parser.add_argument("--work", default=tempfile.mkdtemp(prefix="fsl-bench-"))
    parser.add_argument("--only", choices=["converge", "rolling", "all_at_once", "round_robin"], action="append")
    args = parser.parse_args()
    os.makedirs(args.work, exist_ok=True)
    runs = {
        "rolling": (os.path.join(ROOT, "rolling_upgrade.yml"),),
        "all_at_once": (os.path.join(ROOT, "benchmarks", "naive_all_at_once.yml"),),
        "round_robin": (os.path.join(ROOT, "rolling_upgrade.yml"), "-e", "lemmy_ui_static_strategy=single"),
    }
    chosen = args.only or ["converge"] + list(runs)
    converged = converge(args) if "converge" in chosen else None
    rows = [run(args, name, *runs[name]) for name in chosen if name != "converge"]
    if converged:
        print("%-12s %8s %8s %8s %8s %6s" % ("converge", "rc", "first_s", "noop_s", "changed", "ratio"))
        print("%-12s %8s %8.1f %8.1f %8d %6s" % ("", "%d/%d" % (converged["first_rc"], converged["noop_rc"]), converged["first_s"],
                                                 converged["noop_s"], converged["noop_changed"], converged["ratio"]))
    print("%-12s %4s %8s %8s %6s %10s %8s %6s" % ("run", "rc", "requests", "failed", "404s", "wall_s", "floor_s", "ratio"))
    for row in rows:
        cells = (row["name"], row["rc"], row["requests"], row["failed"], row["static_404"], row["wall_s"], row["floor_s"], row["ratio"])
        print("%-12s %4d %8d %8d %6d %10.1f %8s %6s" % cells)
    with open(os.path.join(args.work, "results.json"), "w", encoding="utf-8") as handle:
        json.dump({"converge": converged, "upgrades": rows}, handle, indent=2)
    print("details: %s" % args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
