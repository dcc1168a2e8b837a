# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""Judge the fault windows of the molecule "upgrade" scenario (extensions/molecule/upgrade/tasks/faults/).

Each window is a folder <work>/<name>/ holding load.json (tests/load/loadgen.py's results for the
window) and facts.json (what the scenario recorded about the fault: times, container states, the
recap of a playbook run, database samples). This program prints each window's figures and judges
them; it exits 1 naming every window and check that failed, or a window that is missing.

  python3 tests/load/judge_window.py show <work>/api_crash      # one window's figures
  python3 tests/load/judge_window.py report <work>              # every window: figures, verdicts, table
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import typing as t

# The windows in the order the scenario runs them, with what each one measures.
WINDOWS: tuple[tuple[str, str], ...] = (
    ("api_crash", "SIGKILL of one lemmy_server API process"),
    ("host_stop", "docker stop of the web host web2"),
    ("host_heal", "web2 back, site.yml heals it"),
    ("sender_crash", "SIGKILL of a federation sender"),
    ("upgrade_interrupt", "rolling_upgrade.yml killed mid-batch, then rerun"),
    ("db_outage", "PostgreSQL stopped for 10 s"),
)

RECAP_RE = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.MULTILINE)
UPSTREAM_RE = re.compile(r"^\s*upstream\s+(\S+)\s*\{(.*?)^\s*\}", re.MULTILINE | re.DOTALL)
SERVER_RE = re.compile(r"^\s*server\s+([^\s;]+)([^;]*);", re.MULTILINE)

# Slack on the sender's redelivery bound: the sampling period and the sender loop's own work.
REDELIVERY_MARGIN_S = 3.0


def figures(load: dict[str, t.Any]) -> dict[str, t.Any]:
    """The figures every window prints."""
    return {
        "requests": int(load.get("total", 0)),
        "failed": int(load.get("failed", 0)),
        "slowest_ms": float(load.get("latency_max_ms") or 0.0),
        "seconds": float(load.get("duration_s", 0.0)),
        "rate": float(load.get("rate_achieved", 0.0)),
        "rate_wanted": float(load.get("rate_wanted", 0.0)),
        "bad_content": int(load.get("bad_content", 0)),
        "failures_by_status": dict(load.get("failures_by_status", {})),
        "loadavg_max": load.get("loadavg_max"),
        "slow": load.get("slow"),
        "slow_after_s": load.get("slow_after_s"),
        "timeout_s": load.get("timeout_s"),
    }


def figures_line(name: str, load: dict[str, t.Any]) -> str:
    f = figures(load)
    line = (f"window {name}: {f['requests']} requests, {f['failed']} failed, slowest request {f['slowest_ms']:.0f} ms, "
            f"{f['seconds']:.1f} s ({f['rate']:.1f} req/s of {f['rate_wanted']:.0f} asked), {f['bad_content']} 200 answers with wrong content")
    if f["failures_by_status"]:
        line += f", failures by status {f['failures_by_status']}"
    if f["slow"] is not None:
        line += f", {f['slow']} slower than {f['slow_after_s']:.0f} s (client timeout {f['timeout_s']:.0f} s)"
    if f["loadavg_max"] is not None:
        line += f", machine load average up to {f['loadavg_max']:.1f}"
    return line


def judge_no_failures(load: dict[str, t.Any], min_rate: float = 20.0) -> list[str]:
    """Every request of the window answered 2xx with the content its route serves, at the load's rate."""
    f = figures(load)
    problems = []
    if f["requests"] == 0:
        problems.append("the load sent no request")
    if f["failed"]:
        problems.append(f"{f['failed']} requests failed ({f['failures_by_status']}, first: {load.get('failure_samples', [])[:3]})")
    if f["bad_content"]:
        problems.append(f"{f['bad_content']} answers were 200 with wrong content ({load.get('bad_content_urls')})")
    # The rate asked for is checked; the rate achieved is a speed figure, printed, never asserted.
    if float(load.get("rate_wanted", 0)) < min_rate:
        problems.append(f"the load asked for {load.get('rate_wanted')} req/s, below {min_rate}")
    return problems


def parse_recap(text: str) -> dict[str, dict[str, int]]:
    """The PLAY RECAP of an ansible-playbook run: host -> ok, changed, unreachable, failed."""
    start = text.rfind("PLAY RECAP")
    if start < 0:
        return {}
    return {m.group(1): {"ok": int(m.group(2)), "changed": int(m.group(3)), "unreachable": int(m.group(4)),
                         "failed": int(m.group(5))}
            for m in RECAP_RE.finditer(text[start:])}


def judge_heal(recap: dict[str, dict[str, int]], healed: str, expected_hosts: list[str]) -> list[str]:
    """site.yml reached every host without error; only the healed host may report changes."""
    problems = []
    missing = sorted(set(expected_hosts) - set(recap))
    if missing:
        problems.append(f"site.yml's recap lacks the hosts {missing}")
    for host, counts in sorted(recap.items()):
        if counts["failed"] or counts["unreachable"]:
            problems.append(f"site.yml: {host} failed={counts['failed']} unreachable={counts['unreachable']}")
        if host != healed and counts["changed"]:
            problems.append(f"site.yml changed {counts['changed']} things on {host}, which the fault did not touch")
    return problems


def parse_upstreams(text: str) -> dict[str, dict[str, list[str]]]:
    """nginx upstream blocks: name -> {"up": [...], "down": [...]} servers."""
    pools = {}
    for block in UPSTREAM_RE.finditer(text):
        up, down = [], []
        for server in SERVER_RE.finditer(block.group(2)):
            (down if "down" in server.group(2).split() else up).append(server.group(1))
        pools[block.group(1)] = {"up": up, "down": down}
    return pools


def judge_pools(configs: dict[str, str], markers: list[str] | None = None) -> list[str]:
    """No proxy config leaves a pool with a drained server and no server to serve, neither as rendered nor once
    the drain markers on disk (which the next render turns into "down") are applied to the balancer's pools."""
    problems = []
    for where, text in sorted(configs.items()):
        pools = parse_upstreams(text)
        if not pools:
            problems.append(f"{where}: no upstream block found")
        for name, servers in sorted(pools.items()):
            if not servers["up"]:
                problems.append(f"{where}: upstream {name} has no server up (down: {servers['down']})")
            elif markers and "upstreams.conf" in where and not set(servers["up"]) - set(markers):
                problems.append(f"{where}: upstream {name} would have no server up once the markers {sorted(markers)} are rendered")
    return problems


def judge_gate(gate: dict[str, t.Any], host: str) -> list[str]:
    """The preflight gate with a host down: refused naming it, and on purpose run without it."""
    problems = []
    if int(gate["refused_rc"]) == 0 or f"host {host}: unreachable" not in str(gate.get("refusal") or ""):
        problems.append(f"site.yml --check with {host} down was not refused naming it (rc {gate['refused_rc']}, {gate.get('refusal')!r})")
    if int(gate["allowed_rc"]) != 0:
        problems.append(f"site.yml --check with lemmy_allow_unreachable={host} failed (rc {gate['allowed_rc']})")
    if not gate.get("upstream_lines_removed"):
        problems.append(f"site.yml --check --diff with lemmy_allow_unreachable={host} did not drop its upstream servers")
    return problems


def judge_federation(facts: dict[str, t.Any]) -> tuple[list[str], dict[str, t.Any]]:
    """A sender killed at kill_at: queue state never goes back, what must be sent again is at most the save
    window old, every instance catches up and is owned by exactly one sender."""
    problems: list[str] = []
    kill_at = float(facts["kill_at"])
    restarted_at = float(facts["restarted_at"])
    bound = float(facts["save_seconds"]) + 2 * float(facts["sender_period_seconds"]) + REDELIVERY_MARGIN_S
    instances = sorted(int(i) for i in facts["instances"])
    samples: dict[int, list[tuple[float, int]]] = {i: [] for i in instances}
    for at, instance_id, last_id in facts["samples"]:
        if int(instance_id) in samples and last_id is not None:
            samples[int(instance_id)].append((float(at), int(last_id)))
    activities = sorted((int(a), float(p)) for a, p in facts["activities"])
    sent_before_kill = [a for a in activities if a[1] <= kill_at]
    max_id_at_kill = sent_before_kill[-1][0] if sent_before_kill else 0
    redelivery_s = 0.0
    for instance_id in instances:
        series = sorted(samples[instance_id])
        before = [v for at, v in series if at < kill_at]
        after = [v for at, v in series if at >= kill_at]
        if not before or not after:
            problems.append(f"instance {instance_id}: no queue state sampled before and after the kill")
            continue
        backwards = [(series[k][0], series[k - 1][1], series[k][1]) for k in range(1, len(series)) if series[k][1] < series[k - 1][1]]
        if backwards:
            problems.append(f"instance {instance_id}: last_successful_id went back (at, from, to) {backwards[:3]}")
        saved = min(after)
        unsent = [p for a, p in sent_before_kill if a > saved]
        if unsent:
            span = kill_at - min(unsent)
            redelivery_s = max(redelivery_s, span)
            if span > bound:
                problems.append(f"instance {instance_id}: the saved state was {span:.1f} s behind at the kill, more than "
                                f"the {facts['save_seconds']} s save window allows ({bound:.1f} s with the sender period)")
        if series[-1][1] < max_id_at_kill:
            problems.append(f"instance {instance_id}: did not catch up after the restart (at {series[-1][1]}, "
                            f"activity {max_id_at_kill} was sent before the kill)")
    owners: dict[int, list[tuple[str, float, float]]] = {i: [] for i in instances}
    for instance_id, process, first_seen, seen_at in facts["owners"]:
        if int(instance_id) in owners:
            owners[int(instance_id)].append((process, float(first_seen), float(seen_at)))
    overlaps = 0
    for instance_id in instances:
        rows = owners[instance_id]
        for k, (pa, fa, sa) in enumerate(rows):
            overlaps += sum(1 for pb, fb, sb in rows[k + 1:] if pa != pb and fa <= sb and fb <= sa)
        current = {p for p, _f, seen in rows if seen >= restarted_at}
        if len(current) != 1:
            problems.append(f"instance {instance_id}: owned by {len(current)} senders after the restart ({sorted(current)})")
    if overlaps:
        problems.append(f"{overlaps} times two senders owned one instance at once")
    if int(facts["restart_count_after"]) <= int(facts["restart_count_before"]):
        problems.append(f"the sender was not restarted (restart count {facts['restart_count_before']} -> {facts['restart_count_after']})")
    summary = {"instances": len(instances), "max_id_at_kill": max_id_at_kill, "redelivery_s": round(redelivery_s, 1),
               "bound_s": bound, "overlaps": overlaps}
    return problems, summary


def judge_outage(load: dict[str, t.Any], down_at: float, recovered_at: float, grace_s: float = 2.0) -> tuple[list[str], dict[str, t.Any]]:
    """A database outage: requests fail as errors (never a 200 with wrong content) and only while it lasts."""
    problems = []
    f = figures(load)
    started_at = float(load["started_at"])
    during = outside = 0
    for second in load.get("timeline", []):
        failed = int(second.get("failed", 0))
        at = started_at + int(second["second"])
        if down_at - 1 <= at <= recovered_at + grace_s:
            during += failed
        else:
            outside += failed
    if f["failed"] == 0:
        problems.append("no request failed while PostgreSQL was down: errors are hidden (or the outage did not happen)")
    if f["bad_content"]:
        problems.append(f"{f['bad_content']} answers were 200 with wrong content ({load.get('bad_content_urls')})")
    if outside:
        problems.append(f"{outside} requests failed outside the outage (before it or more than {grace_s} s after recovery)")
    statuses = [k for k in f["failures_by_status"] if not k.isdigit() or int(k) < 400]
    if statuses:
        problems.append(f"failures other than HTTP error answers: {statuses}")
    return problems, {"failed_during": during, "failed_outside": outside, "by_status": f["failures_by_status"]}


def judge_snapshots(before: dict[str, list[str]], after: dict[str, list[str]]) -> list[str]:
    """Every container kept its id, start time and restart count."""
    problems = []
    for host in sorted(set(before) | set(after)):
        b, a = sorted(before.get(host, [])), sorted(after.get(host, []))
        if b != a:
            problems.append(f"{host}: containers changed: {sorted(set(b) - set(a))} -> {sorted(set(a) - set(b))}")
    return problems


def _read(path: str) -> dict[str, t.Any]:
    with open(path, encoding="utf-8") as handle:
        data: dict[str, t.Any] = json.load(handle)
    return data


def judge_window(name: str, load: dict[str, t.Any], facts: dict[str, t.Any]) -> tuple[list[str], str]:
    """The problems of one window and a one-line result."""
    if name == "db_outage":
        problems, summary = judge_outage(load, float(facts["down_at"]), float(facts["recovered_at"]))
        problems += judge_snapshots(facts["before"], facts["after"])
        result = (f"{summary['failed_during']} failed during the {facts['down_s']:.1f} s outage, all HTTP errors "
                  f"{summary['by_status']}, 0 wrong 200s; containers unchanged: {not judge_snapshots(facts['before'], facts['after'])}")
        return problems, result
    problems = judge_no_failures(load)
    f = figures(load)
    result = f"{f['failed']} failed of {f['requests']}, slowest {f['slowest_ms']:.0f} ms"
    if name == "api_crash":
        if int(facts["restart_count_after"]) <= int(facts["restart_count_before"]):
            problems.append(f"{facts['container']} was not restarted (restart count {facts['restart_count_before']} -> "
                            f"{facts['restart_count_after']})")
        result += f"; {facts['container']} restarted by its policy ({facts['restart_count_before']} -> {facts['restart_count_after']})"
    elif name == "host_stop":
        result += f"; {facts['host']} down for {facts['down_s']:.1f} s"
        gate = facts.get("gate")
        if gate is not None:
            problems += judge_gate(gate, facts["host"])
            result += (f"; site.yml --check refused (rc {gate['refused_rc']}: {gate['refusal'] or 'no refusal line'}), "
                       f"with lemmy_allow_unreachable={facts['host']} rc {gate['allowed_rc']} and "
                       f"{len(gate['upstream_lines_removed'])} upstream servers dropped")
            if gate.get("refused_recap"):
                result += f"; the refusal is the refused run's only failure: {gate['refused_recap']}"
    elif name == "host_heal":
        recap = parse_recap(facts["site_output"])
        if int(facts["site_rc"]) != 0:
            problems.append(f"site.yml failed (rc {facts['site_rc']})")
        problems += judge_heal(recap, facts["host"], facts["hosts"])
        if not facts["processes_seen"]:
            problems.append(f"no request reached a process of {facts['host']} after site.yml")
        result += "; changed " + ", ".join(f"{h}={c['changed']}" for h, c in sorted(recap.items()))
        result += f"; {len(facts['processes_seen'])} processes of {facts['host']} serve"
    elif name == "sender_crash":
        more, summary = judge_federation(facts)
        problems += more
        result += (f"; {summary['instances']} instances each owned by one sender, state at most {summary['redelivery_s']} s "
                   f"behind (bound {summary['bound_s']} s)")
    elif name == "upgrade_interrupt":
        problems += judge_pools(facts["configs_after_kill"], facts.get("drained_at_kill", []))
        if int(facts["rerun_rc"]) != 0:
            problems.append(f"the rerun of rolling_upgrade.yml failed (rc {facts['rerun_rc']})")
        if "lock_refused_rc" in facts:
            refusal = str(facts.get("lock_refusal") or "")
            if int(facts["lock_refused_rc"]) == 0 or "rolling_upgrade.yml" not in refusal or "lemmy_break_lock=true" not in refusal:
                problems.append(f"a run after the kill was not refused naming the killed run's lock and the way to break it "
                                f"(rc {facts['lock_refused_rc']}, {refusal!r})")
        if facts["version_after"] != facts["target"]:
            problems.append(f"the balancer reports {facts['version_after']} after the rerun, not {facts['target']}")
        drained = sorted({s for p in (parse_upstreams(x) for x in facts["configs_after_kill"].values()) for v in p.values() for s in v["down"]})
        result += (f"; killed with drain markers {facts.get('drained_at_kill') or 'none'} ({drained or 'none'} rendered down), "
                   f"every pool kept a server, rerun rc {facts['rerun_rc']}, balancer at {facts['version_after']}")
        if "lock_refused_rc" in facts:
            result += f"; a run before breaking the killed run's lock: rc {facts['lock_refused_rc']}, {facts.get('lock_refusal') or 'no refusal'}"
    return problems, result


def report(work: str) -> int:
    rows, failed = [], []
    for name, what in WINDOWS:
        folder = os.path.join(work, name)
        try:
            load, facts = _read(os.path.join(folder, "load.json")), _read(os.path.join(folder, "facts.json"))
        except (OSError, ValueError) as exc:
            failed.append(f"{name}: window missing or unreadable ({exc})")
            rows.append((name, what, "MISSING"))
            continue
        print(figures_line(name, load))
        problems, result = judge_window(name, load, facts)
        for problem in problems:
            failed.append(f"{name}: {problem}")
        rows.append((name, what, ("FAIL: " if problems else "ok: ") + result))
    print("| fault | measured | result |")
    print("|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    for problem in failed:
        print("FAILED " + problem)
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    show = sub.add_parser("show", help="print one window's figures and verdict")
    show.add_argument("folder")
    rep = sub.add_parser("report", help="judge every window")
    rep.add_argument("work")
    args = parser.parse_args(argv)
    if args.command == "report":
        return report(args.work)
    name = os.path.basename(os.path.normpath(args.folder))
    load = _read(os.path.join(args.folder, "load.json"))
    print(figures_line(name, load))
    facts_path = os.path.join(args.folder, "facts.json")
    if os.path.exists(facts_path):
        problems, result = judge_window(name, load, _read(facts_path))
        print(("FAIL: " if problems else "ok: ") + result + "".join("\n  " + p for p in problems))
    return 0


if __name__ == "__main__":
    sys.exit(main())
