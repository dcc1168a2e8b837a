# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The drain decisions and the upstreams rendering (_drain.py): refusals, converge sets, IPv6 keys, /proc parsing."""

from __future__ import annotations

import typing as t

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.fediscale.lemmy.plugins.module_utils._drain import (
    SERVER_KEY,
    DrainRefused,
    converge_drained,
    drained_after,
    is_worker,
    known_servers,
    parse_stat,
    render_upstreams,
)

API = ("web1:8536", "[fd00::12]:8536", "web3:8536")
UI = ("web1:1234", "[fd00::12]:1234")


def pools(api: t.Sequence[str] = API, ui: t.Sequence[str] = UI, ui_balancing: str = "round_robin") -> dict[str, t.Any]:
    return {
        "proxy": "lb1",
        "keepalive": 32,
        "max_fails": 3,
        "fail_timeout": "10s",
        "pools": {
            "api": {"name": "lemmy_api", "balancing": "round_robin", "servers": list(api)},
            "ui": {"name": "lemmy_ui", "balancing": ui_balancing, "servers": list(ui)},
        },
    }


def test_drain_then_undrain_returns_to_nothing_drained() -> None:
    after = drained_after(pools(), [], ["web1:8536", "web1:1234"], [])
    assert after == ["web1:1234", "web1:8536"]
    assert drained_after(pools(), after, [], ["web1:8536", "web1:1234"]) == []


def test_a_drain_keeps_the_markers_another_batch_left() -> None:
    assert drained_after(pools(), ["web3:8536"], ["web1:8536"], []) == ["web1:8536", "web3:8536"]


@pytest.mark.parametrize(
    ("mark_down", "bring_back", "words"),
    [
        (["web9:8536"], [], "web9:8536 is not an upstream server on proxy lb1. Known servers: web1:8536, [fd00::12]:8536"),
        (["fd00::12:8536"], [], "address:port"),
        (["web1"], [], "address:port"),
        ([8536], [], "address:port"),
        (["web1:8536"], ["web1:8536"], "cannot be both marked down and brought back"),
        (["web1:1234", "[fd00::12]:1234"], [], "would leave the ui pool with no server up"),
    ],
)
def test_a_wrong_drain_is_refused_naming_the_servers(mark_down: list[t.Any], bring_back: list[str], words: str) -> None:
    with pytest.raises(DrainRefused) as caught:
        drained_after(pools(), [], mark_down, bring_back)
    assert words in str(caught.value)


def test_a_drain_that_empties_a_pool_with_markers_already_there_names_them() -> None:
    with pytest.raises(DrainRefused) as caught:
        drained_after(pools(), ["web1:1234"], ["[fd00::12]:1234"], [])
    assert "drained now: web1:1234" in str(caught.value)
    assert "smaller serial batches" in str(caught.value)


def test_bringing_back_is_always_allowed_and_ignores_unknown_servers() -> None:
    # A verify undrains every planned server, some of which a proxy may not list.
    assert drained_after(pools(), ["web1:1234", "[fd00::12]:1234"], [], ["web1:1234", "web9:1234"]) == ["[fd00::12]:1234"]


def test_the_converge_sets_exactly_its_list_or_keeps_the_markers_too() -> None:
    assert converge_drained(pools(), ["web1:8536"], [], keep_current=False) == []
    assert converge_drained(pools(), ["web1:8536"], ["web3:8536"], keep_current=True) == ["web1:8536", "web3:8536"]
    # A marker of a server the plan dropped goes.
    assert converge_drained(pools(), ["old:8536"], [], keep_current=True) == []
    with pytest.raises(DrainRefused) as caught:
        converge_drained(pools(), ["web1:1234"], ["[fd00::12]:1234"], keep_current=True)
    assert "nginx_converge_keeps_drains" in str(caught.value) and "ui pool" in str(caught.value)


def test_render_marks_exactly_the_drained_servers_down_in_plan_order() -> None:
    text = render_upstreams(pools(ui_balancing="ip_hash"), ["[fd00::12]:8536"], "#\n# managed\n#", "/p.json", "/d")
    assert text.startswith("#\n# managed\n#\n# Upstream pools of the Lemmy site. Rendered from /p.json and the\n")
    assert text.endswith("}\n")
    api_block = text[text.index("upstream lemmy_api {"):text.index("upstream lemmy_ui {")]
    assert api_block.splitlines() == [
        "upstream lemmy_api {",
        "    server web1:8536 max_fails=3 fail_timeout=10s;",
        "    server [fd00::12]:8536 down;",
        "    server web3:8536 max_fails=3 fail_timeout=10s;",
        "    keepalive 32;",
        "}",
        "",
    ]
    assert "upstream lemmy_ui {\n    ip_hash;\n" in text
    assert "hash $lemmy_ui_sticky_key consistent;" in render_upstreams(pools(ui_balancing="sticky"), [], "#", "p", "d")


@given(st.lists(st.sampled_from(API + UI), unique=True), st.lists(st.sampled_from(API + UI), unique=True))
def test_any_accepted_drain_leaves_every_pool_a_server_and_renders_each_server_once(down: list[str], back: list[str]) -> None:
    back = [s for s in back if s not in down]
    try:
        after = drained_after(pools(), [], down, back)
    except DrainRefused:
        return
    for pool in pools()["pools"].values():
        assert set(pool["servers"]) - set(after)
    text = render_upstreams(pools(), after, "#", "p", "d")
    for server in known_servers(pools()):
        assert text.count("    server %s " % server) == 1
        assert ("    server %s down;" % server in text) == (server in after)


def test_server_keys_are_the_plans_strings() -> None:
    for good in ("web1:8536", "10.0.0.11:8536", "[fd00::11]:8536", "web2.internal:1234"):
        assert SERVER_KEY.match(good)
    for bad in ("fd00::11:8536", "web1", "http://web1:8536", "web1:port", "[fd00::11]", "web 1:8536"):
        assert not SERVER_KEY.match(bad)


def test_proc_stat_and_worker_cmdline() -> None:
    assert parse_stat("123 (nginx) S 77 123 123 0 -1") == (77, "S")
    # A command name with spaces and parentheses is read after its last ")".
    assert parse_stat("9 (a (b) c) R 1 9 9") == (1, "R")
    assert parse_stat("garbage") is None
    assert is_worker(b"nginx: worker process\0")
    assert not is_worker(b"nginx: master process /usr/sbin/nginx\0")
    assert not is_worker(b"nginx: worker process is shutting down\0")
