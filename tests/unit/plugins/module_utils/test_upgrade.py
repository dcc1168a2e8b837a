# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The upgrade's decisions (_upgrade.py): cases, then properties over every observed state.

Properties: from any state the hosts may report, carrying out the actions in order (or part of them,
then deciding again, as a rerun after an interruption does) never runs two schedulers at once after the
fence, ends with exactly one scheduler on the target, and holds each shard index in exactly one sender.
"""

from __future__ import annotations

import typing as t

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import build_plan
from ansible_collections.fediscale.lemmy.plugins.module_utils._upgrade import (
    apply, decide, decide_fence, fence, images_to_pull, read_container, read_observed, version_of)

OLD = "dessalines/lemmy:0.19.19"
NEW = "dessalines/lemmy:0.19.20"
OLD_UI = "dessalines/lemmy-ui:0.19.19"
NEW_UI = "dessalines/lemmy-ui:0.19.20"
SECRETS = {
    "lemmy_database_password": {"kind": "string", "length": 32, "differs_on": []},
    "pictrs_api_key": {"kind": "string", "length": 32, "differs_on": []},
    "lemmy_admin_password": {"kind": "string", "length": 24, "differs_on": []},
}


def make_plan(senders: t.Mapping[str, int] | None = None, scheduler: str = "work1", version: str = "0.19.20", ipv6: bool = False) -> dict[str, t.Any]:
    senders = dict(senders or {"work1": 2, "work2": 1})
    groups = {
        "lemmy_proxy": ["lb1"],
        "lemmy_api": ["web1", "web2"],
        "lemmy_ui": ["web1", "web2"],
        "lemmy_federation": sorted(senders),
        "lemmy_scheduler": [scheduler],
        "pictrs": ["media1"],
        "lemmy_db": ["db1"],
    }
    host_vars: dict[str, t.Any] = {host: {"lemmy_federation_processes": count} for host, count in senders.items()}
    if ipv6:
        host_vars.setdefault("web1", {})["ansible_host"] = "fd00::11"
    settings_ = {"lemmy_domain": "lemmy.example.org", "lemmy_version": version, "secret_facts": SECRETS}
    return build_plan(groups, host_vars, settings_)


def running_fleet(plan: t.Mapping[str, t.Any], image: str = OLD, ui_image: str = OLD_UI) -> dict[str, list[dict[str, t.Any]]]:
    """Every planned process running ``image`` (the state before an upgrade)."""
    observed: dict[str, list[dict[str, t.Any]]] = {}
    for p in plan["processes"]:
        if p["kind"] == "pictrs":
            continue
        entry: dict[str, t.Any] = {"name": p["name"], "image": ui_image if p["kind"] == "ui" else image, "running": True}
        if p["kind"] == "federation":
            entry["shard"] = "%d/%d" % (p["shard_index"], p["shard_count"])
        observed.setdefault(p["host"], []).append(entry)
    return observed


def of(result: t.Mapping[str, t.Any], step: str, action: str | None = None) -> list[tuple[str, str]]:
    return [(a["host"], a["name"]) for a in result["actions"] if a["step"] == step and (action is None or a["action"] == action)]


# --------------------------------------------------------------------------- cases


def test_a_plain_step_stops_the_scheduler_migrates_once_then_replaces_everything_in_order() -> None:
    plan = make_plan()
    result = decide(plan, running_fleet(plan), NEW, NEW_UI)
    steps = [a["step"] for a in result["actions"]]
    assert steps == sorted(steps, key=["fence", "migrate", "api", "federation", "ui", "scheduler"].index)
    assert of(result, "fence") == [("work1", "lemmy-scheduler")]
    assert result["migrate"]["needed"] and result["migrate"]["strategy"] == "migrate_only"
    assert of(result, "migrate", "migrate") == [("web1", "lemmy-migrate")]
    assert result["actions"][1]["args"] == ["--disable-http-server", "--disable-scheduled-tasks", "--disable-activity-sending"]
    assert of(result, "api", "replace") == [("web1", "lemmy-api-1"), ("web2", "lemmy-api-1")]
    assert of(result, "federation", "replace") == [("work1", "lemmy-federation-1"), ("work1", "lemmy-federation-2"), ("work2", "lemmy-federation-3")]
    assert of(result, "ui", "replace") == [("web1", "lemmy-ui-1"), ("web2", "lemmy-ui-1")]
    assert of(result, "scheduler", "replace") == [("work1", "lemmy-scheduler")]
    assert result["sender_set_changes"] is False
    assert [a["order"] for a in result["actions"]] == list(range(1, len(result["actions"]) + 1))
    assert result["summary"][0] == "fence: 1 stop"


def test_api_and_ui_replacements_carry_the_plans_drain_key_ipv6_included() -> None:
    plan = make_plan(ipv6=True)
    result = decide(plan, running_fleet(plan), NEW, NEW_UI)
    keys = {(a["host"], a["name"]): a.get("drain_key") for a in result["actions"] if a["step"] in ("api", "ui")}
    assert keys[("web1", "lemmy-api-1")] == "[fd00::11]:8536"
    assert keys[("web1", "lemmy-ui-1")] == "[fd00::11]:1234"
    assert keys[("web2", "lemmy-api-1")] == "web2:8536"


def test_replacements_carry_the_port_the_batch_waits_on_and_senders_none() -> None:
    plan = make_plan()
    result = decide(plan, running_fleet(plan), NEW, NEW_UI)
    ports = {(a["step"], a["name"]): a.get("port") for a in result["actions"] if a["action"] == "replace"}
    assert ports[("api", "lemmy-api-1")] == 8536
    assert ports[("ui", "lemmy-ui-1")] == 1234
    assert ports[("federation", "lemmy-federation-1")] is None
    assert ports[("scheduler", "lemmy-scheduler")] is None


def test_before_0_19_4_the_migrating_api_process_carries_its_port() -> None:
    plan3 = make_plan(version="0.19.3")
    result = decide(plan3, running_fleet(make_plan(version="0.19.2"), "dessalines/lemmy:0.19.2"), "dessalines/lemmy:0.19.3", NEW_UI)
    migrate = [a for a in result["actions"] if a["step"] == "migrate"]
    assert [(a["action"], a["port"]) for a in migrate] == [("replace", 8536)]


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("dessalines/lemmy:0.19.20", "0.19.20"),
        ("registry:5000/lemmy:0.19.20", "0.19.20"),
        ("registry:5000/lemmy:0.19.20@sha256:" + "a" * 64, "0.19.20"),
        ("dessalines/lemmy:1.0.0-alpha.5", "1.0.0-alpha.5"),
        ("registry:5000/lemmy@sha256:" + "a" * 64, "unknown:registry:5000/lemmy@sha256:" + "a" * 64),
        ("registry:5000/lemmy", "unknown:registry:5000/lemmy"),
        ("lemmy", "unknown:lemmy"),
    ],
)
def test_version_of_reads_the_tag_and_never_a_registry_port_or_a_digest(image: str, release: str) -> None:
    assert version_of(image) == release


def test_a_rerun_after_the_upgrade_does_nothing() -> None:
    plan = make_plan()
    result = decide(plan, running_fleet(plan, NEW, NEW_UI), NEW, NEW_UI)
    assert {a["action"] for a in result["actions"]} == {"skip"}
    assert result["migrate"]["needed"] is False
    assert "already runs" in result["migrate"]["why"]
    # The migration play still needs a host to run on (it does nothing there).
    assert (result["migrate"]["host"], result["migrate"]["config_of"]) == ("web1", "lemmy-api-1")


def test_a_rerun_in_the_middle_skips_what_runs_the_target_and_does_not_migrate_again() -> None:
    plan = make_plan()
    observed = running_fleet(plan)
    observed["web1"] = [dict(c, image=NEW if c["name"].startswith("lemmy-api") else c["image"]) for c in observed["web1"]]
    observed["work1"] = [dict(c, running=False) if c["name"] == "lemmy-scheduler" else c for c in observed["work1"]]
    result = decide(plan, observed, NEW, NEW_UI)
    assert of(result, "fence") == []
    assert of(result, "migrate") == []
    assert of(result, "api", "skip") == [("web1", "lemmy-api-1")]
    assert of(result, "api", "replace") == [("web2", "lemmy-api-1")]
    assert of(result, "scheduler", "replace") == [("work1", "lemmy-scheduler")]


def test_the_fence_steps_run_only_on_the_hosts_that_have_something_to_stop() -> None:
    plan = make_plan()
    plain = decide(plan, running_fleet(plan), NEW, NEW_UI)
    assert plain["fence_hosts"] == {"scheduler": ["work1"], "federation": []}
    changed = decide(make_plan({"work1": 2, "work2": 2}), running_fleet(make_plan({"work1": 2, "work2": 1})), NEW, NEW_UI)
    assert changed["fence_hosts"] == {"scheduler": ["work1"], "federation": ["work1", "work2"]}
    # A rerun after the scheduler was stopped: nothing is left to fence.
    stopped = running_fleet(plan)
    stopped["work1"] = [dict(c, running=False) if c["name"] == "lemmy-scheduler" else c for c in stopped["work1"]]
    assert decide(plan, stopped, NEW, NEW_UI)["fence_hosts"] == {"scheduler": [], "federation": []}


def test_each_host_pulls_only_the_target_images_of_the_kinds_it_runs() -> None:
    plan = make_plan()
    held = {
        "web1": [{"RepoTags": [OLD, OLD_UI]}],          # as docker_host_info lists images
        "web2": [NEW, NEW_UI],                          # plain references
        "work1": [{"RepoTags": [OLD, NEW_UI]}],         # a UI image it does not need
        "work2": [],
    }
    assert images_to_pull(plan, held, NEW, NEW_UI) == {"web1": [NEW, NEW_UI], "work1": [NEW], "work2": [NEW]}
    assert decide(plan, running_fleet(plan), NEW, NEW_UI, held)["pull"] == {"web1": [NEW, NEW_UI], "work1": [NEW], "work2": [NEW]}
    # Without the images read, nothing is asked to pull; an untagged image ({"RepoTags": None}) holds no tag.
    assert decide(plan, running_fleet(plan), NEW, NEW_UI)["pull"] == {}
    assert images_to_pull(plan, {"web2": [{"RepoTags": None}, NEW, NEW_UI]}, NEW, NEW_UI) == {}


def test_a_changed_shard_count_stops_every_sender_first() -> None:
    plan = make_plan({"work1": 2, "work2": 2})
    before = make_plan({"work1": 2, "work2": 1})
    result = decide(plan, running_fleet(before), NEW, NEW_UI)
    assert result["sender_set_changes"] is True
    assert sorted(of(result, "fence", "stop")) == [
        ("work1", "lemmy-federation-1"), ("work1", "lemmy-federation-2"), ("work1", "lemmy-scheduler"), ("work2", "lemmy-federation-3")]
    assert len(of(result, "federation", "replace")) == 4


def test_a_shard_that_moved_host_is_a_changed_set() -> None:
    plan = make_plan({"work1": 2, "work2": 1})
    observed = running_fleet(plan)
    observed["work2"] = [{"name": "lemmy-federation-2", "image": OLD, "running": True, "shard": "2/3"}]
    observed["work1"] = [c for c in observed["work1"] if c["name"] != "lemmy-federation-2"]
    assert decide(plan, observed, NEW, NEW_UI)["sender_set_changes"] is True


def test_before_0_19_4_the_first_api_process_migrates_alone_and_is_not_replaced_twice() -> None:
    assert make_plan(version="0.19.4")["release"]["migrate"] == "migrate_only"
    plan3 = make_plan(version="0.19.3")
    result = decide(plan3, running_fleet(make_plan(version="0.19.2"), "dessalines/lemmy:0.19.2"), "dessalines/lemmy:0.19.3", NEW_UI)
    assert result["migrate"]["strategy"] == "first_api_process"
    assert of(result, "migrate", "replace") == [("web1", "lemmy-api-1")]
    assert result["actions"][1]["drain_key"] == "web1:8536"
    assert of(result, "api", "skip") == [("web1", "lemmy-api-1")]
    assert of(result, "api", "replace") == [("web2", "lemmy-api-1")]


def test_a_scheduler_outside_the_plan_is_stopped_by_the_converge_fence() -> None:
    plan = make_plan(scheduler="work2")
    containers = read_observed({"work1": [{"name": "lemmy-scheduler", "image": NEW, "running": True}],
                                "work2": [{"name": "lemmy-scheduler", "image": NEW, "running": True}]})
    stops = fence(plan, containers)
    assert [(a["host"], a["name"], a["action"]) for a in stops] == [("work1", "lemmy-scheduler", "stop")]
    assert "two schedulers must never run" in stops[0]["why"]


def test_the_converge_fence_stops_senders_of_another_count_read_from_their_flags() -> None:
    plan = make_plan({"work1": 2, "work2": 1})
    containers = read_observed({"work1": [{"name": "lemmy-federation-1", "image": NEW, "running": True,
                                           "command": ["--disable-http-server", "--federate-process-index", "1", "--federate-process-count", "2"]}]})
    assert containers[0]["shard_count"] == 2 and containers[0]["shard_index"] == 1
    assert [a["name"] for a in fence(plan, containers)] == ["lemmy-federation-1"]


def test_unplanned_running_containers_are_removed() -> None:
    plan = make_plan()
    observed = running_fleet(plan, NEW, NEW_UI)
    observed["web1"].append({"name": "lemmy-api-2", "image": OLD, "running": True})
    result = decide(plan, observed, NEW, NEW_UI)
    assert [(a["host"], a["name"]) for a in result["actions"] if a["action"] == "remove"] == [("web1", "lemmy-api-2")]


def test_read_container_ignores_foreign_names() -> None:
    assert read_container("web1", {"name": "/lemmy-migrate", "image": NEW, "running": False}) is None
    assert read_container("web1", {"name": "postgres", "image": "x", "running": True}) is None
    assert read_container("web1", {"name": "/lemmy-ui-2", "image": NEW_UI, "running": True})["kind"] == "ui"


def test_read_container_takes_docker_host_info_as_it_lists_containers() -> None:
    listed = {"Id": "abc", "Names": ["/lemmy-federation-2"], "Image": OLD, "State": "exited",
              "Labels": {"org.fediscale.lemmy.shard": "2/3"}, "Command": "lemmy_server --disable-http-server"}
    assert read_container("work1", listed) == {"host": "work1", "name": "lemmy-federation-2", "kind": "federation", "image": OLD,
                                               "running": False, "shard_index": 2, "shard_count": 3}
    flags = {"Names": ["/lemmy-federation-1"], "Image": NEW, "State": "running", "Labels": None,
             "Command": "lemmy_server --federate-process-index 1 --federate-process-count 4"}
    assert read_container("work1", flags)["shard_count"] == 4


def test_running_releases_name_the_server_tags_and_the_ui_images() -> None:
    plan = make_plan()
    observed = running_fleet(plan)
    observed["web2"][0]["image"] = "registry:5000/lemmy@sha256:" + "b" * 64
    result = decide_fence(plan, observed)
    assert result["running"]["server"] == ["0.19.19", "unknown:registry:5000/lemmy@sha256:" + "b" * 64]
    assert result["running"]["ui"] == [OLD_UI]


def test_the_converge_fence_stops_and_the_upgrade_fence_removes_what_the_plan_no_longer_places() -> None:
    plan = make_plan({"work1": 2, "work2": 1}, scheduler="work2")
    observed = running_fleet(plan)
    observed["work1"].append({"name": "lemmy-scheduler", "image": OLD, "running": True})
    observed["work1"].append({"name": "lemmy-federation-3", "image": OLD, "running": True, "shard": "3/3"})
    converge = decide_fence(plan, observed)
    assert {(a["host"], a["name"], a["state"]) for a in converge["actions"]} == {
        ("work1", "lemmy-scheduler", "stopped"), ("work1", "lemmy-federation-1", "stopped"), ("work1", "lemmy-federation-2", "stopped"),
        ("work1", "lemmy-federation-3", "stopped"), ("work2", "lemmy-federation-3", "stopped")}
    assert converge["sender_set_changes"] is True
    upgrade = decide_fence(plan, observed, NEW)
    states = {(a["host"], a["name"]): a["state"] for a in upgrade["actions"]}
    assert states[("work1", "lemmy-scheduler")] == "absent"
    assert states[("work1", "lemmy-federation-3")] == "absent"
    assert states[("work2", "lemmy-scheduler")] == "stopped"
    assert states[("work1", "lemmy-federation-1")] == "stopped"
    assert all(a["step"] == "fence" and a["action"] == "stop" for a in upgrade["actions"])
    assert sorted(upgrade["by_host"]) == ["work1", "work2"]


def test_the_upgrade_fence_removes_stopped_leftovers_and_the_converge_fence_leaves_them_to_the_main_step() -> None:
    plan = make_plan({"work1": 2, "work2": 1}, scheduler="work2")
    observed = running_fleet(plan)
    observed["work1"].append({"name": "lemmy-scheduler", "image": OLD, "running": False})
    observed["work1"].append({"name": "lemmy-federation-3", "image": OLD, "running": False, "shard": "3/3"})
    assert decide_fence(plan, observed)["actions"] == []
    upgrade = decide_fence(plan, observed, NEW)
    assert {(a["host"], a["name"], a["action"], a["state"]) for a in upgrade["actions"]} == {
        ("work1", "lemmy-scheduler", "remove", "absent"), ("work1", "lemmy-federation-3", "remove", "absent"),
        ("work2", "lemmy-scheduler", "stop", "stopped")}
    assert upgrade["sender_set_changes"] is False


def test_a_fleet_that_matches_the_plan_needs_no_fence() -> None:
    plan = make_plan()
    result = decide_fence(plan, running_fleet(plan, NEW, NEW_UI))
    assert result["actions"] == [] and result["by_host"] == {} and result["sender_set_changes"] is False


def test_by_host_groups_the_actions_per_host_and_step() -> None:
    plan = make_plan()
    result = decide(plan, running_fleet(plan), NEW, NEW_UI)
    assert [a["name"] for a in result["by_host"]["web1"]["api"]] == ["lemmy-api-1"]
    assert [a["name"] for a in result["by_host"]["work1"]["fence"]] == ["lemmy-scheduler"]


# --------------------------------------------------------------------------- properties

IMAGES = st.sampled_from([OLD, NEW, "dessalines/lemmy:0.19.18"])
HOSTS = ["web1", "web2", "work1", "work2", "work3"]


@st.composite
def scenarios(draw: t.Callable[..., t.Any]) -> tuple[dict[str, t.Any], dict[str, list[dict[str, t.Any]]]]:
    sender_hosts = draw(st.lists(st.sampled_from(["work1", "work2", "work3"]), min_size=1, max_size=3, unique=True))
    senders = {host: draw(st.integers(1, 3)) for host in sender_hosts}
    scheduler = draw(st.sampled_from(["work1", "work2", "work3"]))
    plan = make_plan(senders, scheduler)
    observed: dict[str, list[dict[str, t.Any]]] = {}
    for host in HOSTS:
        items: list[dict[str, t.Any]] = []
        if draw(st.booleans()):
            items.append({"name": "lemmy-scheduler", "image": draw(IMAGES), "running": draw(st.booleans())})
        for index in draw(st.lists(st.integers(1, 6), max_size=3, unique=True)):
            items.append({"name": "lemmy-federation-%d" % index, "image": draw(IMAGES), "running": draw(st.booleans()),
                          "shard": "%d/%d" % (index, draw(st.integers(max(index, 1), 6)))})
        if host in ("web1", "web2"):
            for kind in ("api", "ui"):
                if draw(st.booleans()):
                    items.append({"name": "lemmy-%s-1" % kind, "image": draw(IMAGES) if kind == "api" else draw(st.sampled_from([OLD_UI, NEW_UI])),
                                  "running": draw(st.booleans())})
        observed[host] = items
    return plan, observed


def running(state: t.Mapping[str, t.Any], kind: str) -> list[dict[str, t.Any]]:
    return [c for c in read_observed(state) if c["kind"] == kind and c["running"]]


def check_singletons(state: t.Mapping[str, t.Any]) -> None:
    assert len(running(state, "scheduler")) <= 1, running(state, "scheduler")
    senders = running(state, "federation")
    assert len({c["shard_count"] for c in senders}) <= 1, senders
    indices = [c["shard_index"] for c in senders]
    assert len(indices) == len(set(indices)), senders


def check_final(plan: t.Mapping[str, t.Any], state: t.Mapping[str, t.Any]) -> None:
    schedulers = running(state, "scheduler")
    assert [(c["host"], c["image"]) for c in schedulers] == [(plan["scheduler"]["host"], NEW)]
    senders = running(state, "federation")
    count = plan["federation"]["count"]
    assert sorted(c["shard_index"] for c in senders) == list(range(1, count + 1))
    assert {c["shard_count"] for c in senders} == {count}
    assert {c["image"] for c in senders} == {NEW}
    wanted = {(p["host"], p["name"]) for p in plan["processes"] if p["kind"] != "pictrs"}
    live = {(c["host"], c["name"]) for c in read_observed(state) if c["running"]}
    assert live == wanted
    for c in read_observed(state):
        if c["running"]:
            assert c["image"] == (NEW_UI if c["kind"] == "ui" else NEW)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_any_observed_state_ends_with_one_scheduler_and_each_shard_once(scenario: tuple[dict[str, t.Any], dict[str, t.Any]]) -> None:
    plan, observed = scenario
    result = decide(plan, observed, NEW, NEW_UI)
    fence_end = max([a["order"] for a in result["actions"] if a["step"] == "fence"], default=0)
    state: dict[str, t.Any] = observed
    for action in result["actions"]:
        state = apply(state, action)
        if action["order"] >= fence_end:
            check_singletons(state)
    check_final(plan, state)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios(), st.integers(0, 40))
def test_an_interrupted_run_resumed_by_a_rerun_keeps_the_singletons(scenario: tuple[dict[str, t.Any], dict[str, t.Any]], stop_after: int) -> None:
    plan, observed = scenario
    first = decide(plan, observed, NEW, NEW_UI)["actions"]
    fence_end = max([a["order"] for a in first if a["step"] == "fence"], default=0)
    state: dict[str, t.Any] = observed
    for action in first[:stop_after]:
        state = apply(state, action)
        if action["order"] >= fence_end:
            check_singletons(state)
    second = decide(plan, state, NEW, NEW_UI)
    if stop_after >= fence_end:
        # The interrupted run had fenced: the rerun starts from a state that keeps the singletons.
        check_singletons(state)
        assert second["migrate"]["needed"] is False or not any(a["action"] == "replace" for a in first[:stop_after] if a["kind"] != "ui")
    fence_end = max([a["order"] for a in second["actions"] if a["step"] == "fence"], default=0)
    for action in second["actions"]:
        state = apply(state, action)
        if action["order"] >= fence_end:
            check_singletons(state)
    check_final(plan, state)
    # A third run has nothing left to do.
    assert {a["action"] for a in decide(plan, state, NEW, NEW_UI)["actions"]} == {"skip"}
