# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""What a rolling upgrade (or a converge) does to each Lemmy container, in order, and why.

Input: the plan (``_plan.build_plan``), the containers observed on the hosts and the target images.
Output: an ordered list of actions, each for one host, kind and container:

- ``stop``: stop a running container (the fence: an old or misplaced scheduler, senders of another set);
- ``remove``: remove a container the plan no longer places there;
- ``migrate``: run the target's migrations once (a one-shot migrate-only container, or the first API
  process replaced alone);
- ``replace``: start the container on the target image (drained first for API and UI: ``drain_key``);
- ``skip``: the container already runs the target.

The fence is the one place that keeps the two singletons of a fleet: at most one scheduler runs at any
time, and at most one sender holds each shard index, all with the same shard count. ``fence()`` serves
both site.yml (no target: only misplaced schedulers and senders of another set) and the upgrade.

Pure Python, no Ansible imports: unit- and property-tested on its own.
"""

from __future__ import annotations

import re
import typing as t

ACTIONS = ("stop", "remove", "migrate", "replace", "skip")
# The order of the upgrade's steps (docs/upgrade.md).
STEPS = ("fence", "migrate", "api", "federation", "ui", "scheduler")
SERVER_KINDS = ("api", "federation", "scheduler")
SHARD_LABEL = "org.fediscale.lemmy.shard"

_NAME = re.compile(r"^lemmy-(api-[0-9]+|federation-([0-9]+)|scheduler|ui-[0-9]+)$")
_COUNT_FLAG = re.compile(r"--federate-process-count[ =]([0-9]+)")
_INDEX_FLAG = re.compile(r"--federate-process-index[ =]([0-9]+)")


def kind_of(name: str) -> str | None:
    """api, federation, scheduler or ui for a container name the collection gives, else None."""
    match = _NAME.match(name)
    if not match:
        return None
    return match.group(1).split("-")[0]


def _natural(name: str) -> tuple:
    return tuple((0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"([0-9]+)", name) if part)


def _int(value: t.Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def read_container(host: str, raw: t.Mapping[str, t.Any]) -> dict[str, t.Any] | None:
    """One observed container as {host, name, kind, image, running, shard_index, shard_count}, or None if not ours.

    ``raw`` holds ``name``, ``image``, ``running`` and, for senders, ``shard`` ("i/N", the label the role sets),
    ``shard_index``/``shard_count`` or ``command`` (the flags, for containers started without the label).
    It may also be a container as community.docker.docker_host_info lists it (``Names``, ``Image``, ``State``,
    ``Labels``, ``Command``), so that playbooks pass what they read without reshaping it.
    """
    if "Names" in raw or "Image" in raw:
        names = raw.get("Names") or [""]
        labels = raw.get("Labels") if isinstance(raw.get("Labels"), t.Mapping) else {}
        raw = {
            "name": names[0] if isinstance(names, (list, tuple)) else names,
            "image": raw.get("Image", ""),
            "running": raw.get("State") == "running",
            "shard": labels.get(SHARD_LABEL),
            "command": raw.get("Command"),
        }
    name = str(raw.get("name", "")).lstrip("/")
    kind = kind_of(name)
    if kind is None:
        return None
    index: int | None = None
    count: int | None = None
    if kind == "federation":
        shard = raw.get("shard")
        if isinstance(shard, str) and re.match(r"^[0-9]+/[0-9]+$", shard):
            index, count = (int(x) for x in shard.split("/"))
        index = _int(raw.get("shard_index")) or index
        count = _int(raw.get("shard_count")) or count
        command = raw.get("command")
        text = " ".join(command) if isinstance(command, (list, tuple)) else str(command or "")
        if count is None and _COUNT_FLAG.search(text):
            count = int(_COUNT_FLAG.search(text).group(1))
        if index is None and _INDEX_FLAG.search(text):
            index = int(_INDEX_FLAG.search(text).group(1))
        if index is None:
            index = int(name.rsplit("-", 1)[1])
        if count is None:
            count = 1  # Lemmy's default when no count is passed
    return {
        "host": host,
        "name": name,
        "kind": kind,
        "image": str(raw.get("image", "")),
        "running": bool(raw.get("running")),
        "shard_index": index,
        "shard_count": count,
    }


def read_observed(observed: t.Mapping[str, t.Any]) -> list[dict[str, t.Any]]:
    """Every container of every host (``{host: [raw container, ...]}``), in natural host then name order."""
    result: list[dict[str, t.Any]] = []
    for host in sorted(observed, key=_natural):
        for raw in observed[host] or []:
            if isinstance(raw, t.Mapping):
                entry = read_container(host, raw)
                if entry is not None:
                    result.append(entry)
    result.sort(key=lambda c: (_natural(c["host"]), _natural(c["name"])))
    return result


def version_of(image: str) -> str:
    """The tag of an image reference (the release it runs), or ``unknown:<image>`` without one."""
    # A bare digest (name@sha256:...) carries no release; name:tag@sha256:... does. A registry port
    # (host:5000/name) is not a tag.
    match = re.search(r":([^:/@]+)$", image.split("@", 1)[0])
    return match.group(1) if match else "unknown:" + image


def running_releases(containers: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, list[str]]:
    """What the fleet runs now: the lemmy_server releases (for the release check) and the lemmy-ui images."""
    return {
        "server": sorted({version_of(c["image"]) for c in containers if c["kind"] in SERVER_KINDS}),
        "ui": sorted({c["image"] for c in containers if c["kind"] == "ui"}),
    }


def _action(step: str, action: str, container: t.Mapping[str, t.Any], why: str, **extra: t.Any) -> dict[str, t.Any]:
    entry = {"step": step, "action": action, "host": container["host"], "kind": container["kind"], "name": container["name"], "why": why}
    entry.update(extra)
    return entry


def planned_senders(plan: t.Mapping[str, t.Any]) -> dict[tuple[str, str], int]:
    return {(p["host"], p["name"]): p["shard_count"] for p in plan["processes"] if p["kind"] == "federation"}


def sender_set_changes(plan: t.Mapping[str, t.Any], containers: t.Sequence[t.Mapping[str, t.Any]]) -> bool:
    """A running sender is not one of the plan's (another shard count, or its shard runs elsewhere)."""
    planned = planned_senders(plan)
    for c in containers:
        if c["kind"] == "federation" and c["running"]:
            if planned.get((c["host"], c["name"])) != c["shard_count"]:
                return True
    return False


def fence(plan: t.Mapping[str, t.Any], containers: t.Sequence[t.Mapping[str, t.Any]], server_image: str | None = None) -> list[dict[str, t.Any]]:
    """The stops that keep one scheduler and one sender per shard index, before anything starts.

    - Every running scheduler outside the plan's scheduler host is removed from service; with a target
      (``server_image``, an upgrade) the planned one is stopped too unless it already runs the target, so no
      old scheduler runs against the new schema and the new one starts only at the end.
    - When the running sender set is not the plan's (another N, or a shard on another host), every running
      sender stops: two sets must never run together. Otherwise only unplanned senders stop.
    """
    scheduler_host = (plan.get("scheduler") or {}).get("host")
    planned = planned_senders(plan)
    actions: list[dict[str, t.Any]] = []
    for c in containers:
        if c["kind"] != "scheduler":
            continue
        if not c["running"]:
            # The upgrade replaces only planned processes: a stopped leftover elsewhere goes now, or it would stay forever.
            if server_image is not None and c["host"] != scheduler_host:
                actions.append(_action("fence", "remove", c, "a stopped scheduler the plan does not place here", state="absent"))
            continue
        if c["host"] != scheduler_host:
            actions.append(_action("fence", "stop", c, "the plan runs the scheduler on %s, not here: two schedulers must never run" % scheduler_host,
                                   state=_fenced_state(c, planned_here=False, upgrade=server_image is not None)))
        elif server_image is not None and c["image"] != server_image:
            actions.append(_action("fence", "stop", c, "runs %s: no old scheduler may run against the new schema; it starts again last" % c["image"],
                                   state="stopped"))
    changes = sender_set_changes(plan, containers)
    count = (plan.get("federation") or {}).get("count")
    for c in containers:
        if c["kind"] != "federation":
            continue
        here = (c["host"], c["name"]) in planned
        if not c["running"]:
            if server_image is not None and not here:
                actions.append(_action("fence", "remove", c, "a stopped sender the plan does not place here", state="absent"))
            continue
        state = _fenced_state(c, planned_here=here, upgrade=server_image is not None)
        if changes:
            actions.append(
                _action("fence", "stop", c, "the sender set changes (running %d/%d here, the plan has %d senders): stop all, then start the new set"
                        % (c["shard_index"], c["shard_count"], count or 0), state=state)
            )
        elif not here:
            actions.append(_action("fence", "stop", c, "the plan has no such sender on this host", state=state))
    return actions


def _fenced_state(container: t.Mapping[str, t.Any], planned_here: bool, upgrade: bool) -> str:
    """``stopped`` or ``absent``: the converge's main step removes leftovers itself; the upgrade replaces only
    planned processes, so there the fence removes what the plan no longer places on the host."""
    return "absent" if upgrade and not planned_here else "stopped"


def decide_fence(plan: t.Mapping[str, t.Any], observed: t.Mapping[str, t.Any], server_image: str | None = None) -> dict[str, t.Any]:
    """The fence alone (site.yml, and the upgrade's fence steps): what must stop now, per host, and why."""
    containers = read_observed(observed)
    actions = fence(plan, containers, server_image)
    for number, entry in enumerate(actions, start=1):
        entry["order"] = number
    return {
        "actions": actions,
        "sender_set_changes": sender_set_changes(plan, containers),
        "by_host": by_host(actions),
        "summary": summarise(actions),
        "running": running_releases(containers),
    }


def _migrate_host(plan: t.Mapping[str, t.Any], containers: t.Sequence[t.Mapping[str, t.Any]]) -> tuple[str | None, str | None]:
    """(host, process name) whose config file a migrate-only container reuses: the first planned server process found."""
    planned = {(p["host"], p["name"]) for p in plan["processes"] if p["kind"] in SERVER_KINDS}
    for c in containers:
        if c["kind"] in SERVER_KINDS and (c["host"], c["name"]) in planned:
            return c["host"], c["name"]
    first = plan.get("first_api") or {}
    return first.get("host"), first.get("name")


def decide(
    plan: t.Mapping[str, t.Any],
    observed: t.Mapping[str, t.Any],
    server_image: str,
    ui_image: str,
    images: t.Mapping[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """The upgrade's actions, in order: fence, migrate once, API, senders, UI, scheduler.

    ``observed`` maps each host to its containers (see read_container). A rerun after an interruption
    decides again from what runs: what already runs the target is skipped. ``images`` maps each host to the
    image tags it holds, for ``pull``: the target images a host must get before anything changes.
    """
    containers = read_observed(observed)
    by_key = {(c["host"], c["name"]): c for c in containers}
    actions = fence(plan, containers, server_image)
    stopped = {(a["host"], a["name"]) for a in actions}

    strategy = (plan.get("release") or {}).get("migrate") or "migrate_only"
    migrated = any(c["kind"] in SERVER_KINDS and c["image"] == server_image and c["running"] for c in containers)
    first = plan.get("first_api") or {}
    migrate: dict[str, t.Any] = {"needed": not migrated, "strategy": strategy, "host": None, "config_of": None}
    if migrated:
        # Still name where the step would run: the play of the migration step needs a host, and does nothing there.
        host, name = _migrate_host(plan, containers) if strategy == "migrate_only" else (first.get("host"), first.get("name"))
        migrate.update(host=host, config_of=name, why="a lemmy_server process already runs %s, so its start migrated" % server_image)
    elif strategy == "migrate_only":
        host, name = _migrate_host(plan, containers)
        migrate.update(host=host, config_of=name, why="one-shot container with every --disable-* flag, reusing %s's config" % name)
        actions.append({"step": "migrate", "action": "migrate", "host": host, "kind": "api", "name": "lemmy-migrate", "why": migrate["why"],
                        "args": list((plan.get("migrate") or {}).get("args") or [])})
    else:
        migrate.update(host=first.get("host"), config_of=first.get("name"),
                       why="the target has no migrate-only mode: the first API process, replaced alone, migrates before it answers")
        actions.append({"step": "migrate", "action": "replace", "host": first.get("host"), "kind": "api", "name": first.get("name"),
                        "why": migrate["why"], "drain_key": first.get("drain_key"), "port": first.get("port"), "image": server_image})

    def replace_or_skip(step: str, proc: t.Mapping[str, t.Any], image: str) -> dict[str, t.Any]:
        seen = by_key.get((proc["host"], proc["name"]))
        entry = {"host": proc["host"], "kind": proc["kind"], "name": proc["name"]}
        extra: dict[str, t.Any] = {"image": image}
        if proc.get("drain_key"):
            extra["drain_key"] = proc["drain_key"]
        if proc.get("port") is not None:
            extra["port"] = proc["port"]
        if proc["kind"] == "federation":
            extra["shard"] = "%d/%d" % (proc["shard_index"], proc["shard_count"])
        if step == "api" and not migrated and strategy != "migrate_only" and proc["name"] == first.get("name") and proc["host"] == first.get("host"):
            return _action(step, "skip", entry, "replaced by the migration step", **extra)
        if seen is not None and seen["running"] and seen["image"] == image and (proc["host"], proc["name"]) not in stopped:
            if proc["kind"] != "federation" or seen["shard_count"] == proc["shard_count"]:
                return _action(step, "skip", entry, "already runs %s" % image, **extra)
        why = "not there yet" if seen is None else ("stopped" if not seen["running"] or (proc["host"], proc["name"]) in stopped else "runs %s" % seen["image"])
        return _action(step, "replace", entry, why, **extra)

    processes = list(plan["processes"])
    for step, kinds, image in (("api", ("api",), server_image), ("federation", ("federation",), server_image), ("ui", ("ui",), ui_image),
                               ("scheduler", ("scheduler",), server_image)):
        for proc in processes:
            if proc["kind"] in kinds:
                actions.append(replace_or_skip(step, proc, image))

    planned = {(p["host"], p["name"]) for p in processes}
    for c in containers:
        if (c["host"], c["name"]) not in planned and (c["host"], c["name"]) not in stopped and c["running"]:
            actions.append(_action("scheduler" if c["kind"] == "scheduler" else c["kind"], "remove", c, "the plan no longer places it here"))

    for number, entry in enumerate(actions, start=1):
        entry["order"] = number
    return {
        "actions": actions,
        "migrate": migrate,
        "sender_set_changes": sender_set_changes(plan, containers),
        "fence_hosts": fence_hosts(actions),
        "pull": images_to_pull(plan, images or {}, server_image, ui_image),
        "by_host": by_host(actions),
        "summary": summarise(actions),
        "running": running_releases(containers),
    }


def fence_hosts(actions: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, list[str]]:
    """{kind: hosts} of the fence's stops and removals, scheduler and federation: the hosts the upgrade's two fence
    steps run on. A step whose kind has none runs on no host at all."""
    return {kind: sorted({a["host"] for a in actions if a["step"] == "fence" and a["kind"] == kind and a["host"] is not None})
            for kind in ("scheduler", "federation")}


def held_tags(entries: t.Any) -> set[str]:
    """The image tags of a host: plain references, or images as docker_host_info lists them (``RepoTags``)."""
    tags: set[str] = set()
    for entry in entries or []:
        if isinstance(entry, str):
            tags.add(entry)
        elif isinstance(entry, t.Mapping):
            tags.update(tag for tag in entry.get("RepoTags") or [] if isinstance(tag, str))
    return tags


def images_to_pull(
    plan: t.Mapping[str, t.Any],
    images: t.Mapping[str, t.Any],
    server_image: str,
    ui_image: str,
) -> dict[str, list[str]]:
    """{host: target images it lacks}, for every host of ``images`` ({host: its images, see held_tags}) that the plan
    gives a lemmy_server or lemmy-ui process. Hosts with nothing to pull are left out."""
    kinds: dict[str, set[str]] = {}
    for proc in plan["processes"]:
        kinds.setdefault(proc["host"], set()).add(proc["kind"])
    result = {}
    for host in sorted(images):
        held = held_tags(images[host])
        wanted = ([server_image] if kinds.get(host, set()) & set(SERVER_KINDS) else []) + ([ui_image] if "ui" in kinds.get(host, set()) else [])
        missing = [image for image in wanted if image not in held]
        if missing:
            result[host] = missing
    return result


def by_host(actions: t.Sequence[t.Mapping[str, t.Any]]) -> dict[str, dict[str, list[dict[str, t.Any]]]]:
    """{host: {step: [actions]}}, for the plays that run per host."""
    result: dict[str, dict[str, list[dict[str, t.Any]]]] = {}
    for a in actions:
        if a["host"] is None:
            continue
        result.setdefault(a["host"], {}).setdefault(a["step"], []).append(dict(a))
    return result


def summarise(actions: t.Sequence[t.Mapping[str, t.Any]]) -> list[str]:
    lines = []
    for step in STEPS:
        mine = [a for a in actions if a["step"] == step]
        if not mine:
            continue
        counts = {name: sum(1 for a in mine if a["action"] == name) for name in ACTIONS}
        lines.append("%s: %s" % (step, ", ".join("%d %s" % (n, name) for name, n in counts.items() if n)))
    return lines


def apply(state: t.Mapping[str, t.Any], action: t.Mapping[str, t.Any]) -> dict[str, list[dict[str, t.Any]]]:
    """The observed state after one action (for tests and dry runs): what a host would report next."""
    result = {host: [dict(c) for c in items] for host, items in state.items()}
    host, name = action["host"], action["name"]
    items = result.setdefault(host, [])
    if action["action"] in ("stop", "remove"):
        for c in list(items):
            if c["name"] == name:
                if action["action"] == "remove" or action.get("state") == "absent":
                    items.remove(c)
                else:
                    c["running"] = False
    elif action["action"] == "replace":
        items[:] = [c for c in items if c["name"] != name]
        new = {"name": name, "image": action["image"], "running": True}
        if "shard" in action:
            new["shard"] = action["shard"]
        items.append(new)
    return result
