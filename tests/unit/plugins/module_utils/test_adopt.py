# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Reading a lemmy-ansible host: the Hjson subset parser and the mapping to the starter inventory."""

from __future__ import annotations

import copy
import typing as t

import pytest

from ansible_collections.fediscale.lemmy.plugins.module_utils._adopt import (
    GROUPS,
    AdoptError,
    HjsonError,
    adopt,
    bind_source,
    compose_project_name,
    containers_from_docker_ps,
    container_name,
    environment_of,
    image_tag,
    parse_hjson,
    read_database,
    read_rate_limits,
    restore_mode,
)
from ansible_collections.fediscale.lemmy.plugins.module_utils._plan import KNOWN_VERSIONS

PASSWORD = "Zq8sF3kLmN0pR7tUvW2x"
DIR = "/srv/lemmy/lemmy.example.org"

# lemmy.hjson as lemmy-ansible 1.5.x renders its examples/config.hjson.
LEMMY_HJSON = """{
  # for more info about the config, check out the documentation
  # https://join-lemmy.org/docs/en/administration/configuration.html

  database: {
    host: postgres
    password: "%s"
    # Alternative way:
    #uri: "postgresql://lemmy:secret@postgres/lemmy"
  }
  hostname: "lemmy.example.org"
  pictrs: {
    url: "http://pictrs:8080/"
    api_key: "%s"
  }
  email: {
    smtp_server: "postfix:25"
    smtp_from_address: "noreply@lemmy.example.org"
    tls_type: "none"
  }
}
""" % (PASSWORD, PASSWORD)

# The services of lemmy-ansible 1.5.x's templates/docker-compose.yml, as rendered (parsed YAML).
COMPOSE: dict[str, t.Any] = {
    "services": {
        "proxy": {"image": "docker.io/library/nginx", "ports": ["127.0.0.1:9633:8536"],
                  "volumes": ["./nginx_internal.conf:/etc/nginx/nginx.conf:ro,Z", "./proxy_params:/etc/nginx/proxy_params:ro,Z"]},
        "lemmy": {"image": "dessalines/lemmy:0.19.20", "hostname": "lemmy", "environment": ["RUST_LOG=warn"],
                  "volumes": ["./lemmy.hjson:/config/config.hjson:Z"]},
        "lemmy-ui": {"image": "dessalines/lemmy-ui:0.19.20", "volumes": ["./volumes/lemmy-ui/extra_themes:/app/extra_themes:Z"],
                     "environment": ["LEMMY_UI_LEMMY_INTERNAL_HOST=lemmy:8536", "LEMMY_UI_LEMMY_EXTERNAL_HOST=lemmy.example.org", "LEMMY_UI_HTTPS=True"]},
        "pictrs": {"image": "docker.io/asonix/pictrs:0.5", "hostname": "pictrs", "user": "991:991",
                   "environment": ["PICTRS__SERVER__API_KEY=%s" % PASSWORD, "RUST_LOG=info"], "volumes": ["./volumes/pictrs:/mnt:Z"]},
        "postgres": {"image": "docker.io/pgautoupgrade/pgautoupgrade:16-alpine", "hostname": "postgres",
                     "environment": ["POSTGRES_USER=lemmy", "POSTGRES_PASSWORD=%s" % PASSWORD, "POSTGRES_DB=lemmy"],
                     "volumes": ["./volumes/postgres:/var/lib/postgresql/data:Z", "./customPostgresql.conf:/etc/postgresql.conf:Z"],
                     "command": "postgres -c config_file=/etc/postgresql.conf", "shm_size": "2g"},
        "postfix": {"image": "docker.io/mwader/postfix-relay", "environment": ["POSTFIX_myhostname=lemmy.example.org"]},
    }
}
PROJECT = "lemmyexampleorg"
RUNNING = [{"name": container_name(PROJECT, s), "service": s, "state": "running"} for s in ("proxy", "lemmy", "lemmy-ui", "pictrs", "postgres", "postfix")]
HOST_VARS = {"ansible_host": "203.0.113.5", "ansible_user": "root", "domain": "lemmy.example.org", "lemmy_base_dir": "/srv/lemmy"}


def run(**changes: t.Any) -> dict[str, t.Any]:
    arguments: dict[str, t.Any] = {
        "host": "lemmy.example.org", "host_vars": HOST_VARS, "project_dir": DIR, "lemmy_hjson": LEMMY_HJSON,
        "compose": copy.deepcopy(COMPOSE), "known_versions": KNOWN_VERSIONS, "containers": RUNNING,
    }
    arguments.update(changes)
    return adopt(**arguments)


def problems(**changes: t.Any) -> list[str]:
    with pytest.raises(AdoptError) as caught:
        run(**changes)
    return caught.value.problems


# --------------------------------------------------------------------------- hjson


def test_hjson_reads_lemmy_ansibles_config() -> None:
    config = parse_hjson(LEMMY_HJSON)
    assert config == {
        "database": {"host": "postgres", "password": PASSWORD},
        "hostname": "lemmy.example.org",
        "pictrs": {"url": "http://pictrs:8080/", "api_key": PASSWORD},
        "email": {"smtp_server": "postfix:25", "smtp_from_address": "noreply@lemmy.example.org", "tls_type": "none"},
    }


def test_hjson_values_types_and_comments() -> None:
    text = """
    // a root object without braces is allowed
    port: 8536
    ratio: 1.5,
    tls_enabled: false
    nothing: null
    bare: some words here
    url: http://a.example/x # a quoteless string keeps what looks like a comment
    quoted: 'it\\'s'
    escaped: "tab\\there \\u00e9"
    /* a block
       comment */
    list: [
      1
      "two",
      {a: 1}
    ]
    long: '''
          first
            indented
          '''
    """
    assert parse_hjson(text) == {
        "port": 8536, "ratio": 1.5, "tls_enabled": False, "nothing": None, "bare": "some words here",
        "url": "http://a.example/x # a quoteless string keeps what looks like a comment", "quoted": "it's",
        "escaped": "tab\there \u00e9", "list": [1, "two", {"a": 1}], "long": "first\n  indented",
    }


def test_hjson_a_number_followed_by_text_is_a_string() -> None:
    assert parse_hjson("{\n  a: 5 apples\n  b: 5, \n  c: true story\n}") == {"a": "5 apples", "b": 5, "c": "true story"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{\n  hostname: "lemmy.example.org\n}', 'line 2, column 13: the string opened here runs past the end of its line'),
        ("{\n  database: {\n    host: postgres\n", "line 4, column 1: the object is never closed with '}'"),
        ("{\n  a: 1\n  a: 2\n}", "line 3, column 6: the key 'a' is given twice"),
        ("{\n  a 1\n}", "line 2, column 5: expected ':' after the key 'a'"),
        ("{ a: /* open", "a /* comment is never closed"),
        ('{ a: "\\q" }', "unknown escape \\q"),
        ("{ a: 1 } }", "unexpected '}' after the end of the document"),
        ("{ a: }", "expected a value, found '}'"),
    ],
)
def test_hjson_mistakes_name_line_and_column(text: str, message: str) -> None:
    with pytest.raises(HjsonError) as caught:
        parse_hjson(text)
    assert message in str(caught.value)
    assert str(caught.value).startswith("lemmy.hjson line ")


# --------------------------------------------------------------------------- compose facts


def test_compose_names_like_compose_v2() -> None:
    assert compose_project_name("/srv/lemmy/lemmy.example.org") == "lemmyexampleorg"
    assert compose_project_name("/srv/lemmy/My_Lemmy-1.test/") == "my_lemmy-1test"
    assert container_name("lemmyexampleorg", "lemmy-ui") == "lemmyexampleorg-lemmy-ui-1"


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("dessalines/lemmy:0.19.20", ("dessalines/lemmy", "0.19.20")),
        ("docker.io/asonix/pictrs:0.5", ("docker.io/asonix/pictrs", "0.5")),
        ("registry.local:5000/lemmy", ("registry.local:5000/lemmy", None)),
        ("dessalines/lemmy:0.19.20@sha256:abc", ("dessalines/lemmy", None)),
        ("", ("", None)),
    ],
)
def test_image_tag(image: str, expected: tuple[str, str | None]) -> None:
    assert image_tag(image) == expected


def test_environment_and_bind_sources_in_both_forms() -> None:
    assert environment_of({"environment": ["A=1", "B=x=y", {"C": 3}]}) == {"A": "1", "B": "x=y", "C": "3"}
    assert environment_of({"environment": {"A": None, "B": 2}}) == {"A": "", "B": "2"}
    assert bind_source(COMPOSE["services"]["pictrs"], "/mnt", DIR) == DIR + "/volumes/pictrs"
    assert bind_source({"volumes": [{"type": "bind", "source": "/data/pictrs", "target": "/mnt"}]}, "/mnt/", DIR) == "/data/pictrs"
    assert bind_source({"volumes": ["pictrs_data:/mnt"]}, "/mnt", DIR) is None


def test_database_from_uri_wins_over_parts() -> None:
    config = {"database": {"uri": "postgresql://lemmy2:s3cr3t@db.internal:5433/lemmydb", "password": "ignored"}}
    assert read_database(config, {}) == {"name": "lemmydb", "user": "lemmy2", "password": "s3cr3t", "host": "db.internal"}
    assert read_database({}, {"POSTGRES_PASSWORD": "p", "POSTGRES_DB": "d"}) == {"name": "d", "user": "lemmy", "password": "p", "host": "localhost"}


# --------------------------------------------------------------------------- mapping


def test_maps_a_lemmy_ansible_host_to_the_small_topology() -> None:
    result = run(rate_limits={"local_site_id": 1, "message": 999, "post": 12, "register": 3, "published": "2024-01-01"})
    assert result["domain"] == "lemmy.example.org"
    assert result["project"] == PROJECT
    assert result["postgres_container"] == "lemmyexampleorg-postgres-1"
    assert result["containers"]["pictrs"] == "lemmyexampleorg-pictrs-1"
    # Writers stop first, postgres is never in the stop list (it is dumped after them).
    assert result["stop_order"] == [
        {"name": "lemmyexampleorg-proxy-1", "timeout": 10}, {"name": "lemmyexampleorg-lemmy-ui-1", "timeout": 10},
        {"name": "lemmyexampleorg-lemmy-1", "timeout": 60}, {"name": "lemmyexampleorg-pictrs-1", "timeout": 10},
        {"name": "lemmyexampleorg-postfix-1", "timeout": 10},
    ]
    assert result["postgres_stop"] == {"name": "lemmyexampleorg-postgres-1", "timeout": 60}
    assert result["paths"]["pictrs"] == DIR + "/volumes/pictrs"
    assert result["paths"]["postgres"] == DIR + "/volumes/postgres"
    assert result["versions"] == {"lemmy": "0.19.20", "lemmy_ui": "0.19.20", "pictrs_image": "docker.io/asonix/pictrs:0.5",
                                  "postgres_image": "docker.io/pgautoupgrade/pgautoupgrade:16-alpine", "postgres_major": 16}
    assert result["group_vars"]["lemmy_domain"] == "lemmy.example.org"
    assert result["group_vars"]["lemmy_version"] == "0.19.20"
    assert "lemmy_ui_version" not in result["group_vars"]
    assert result["group_vars"]["lemmy_rate_limits"] == {"message": 999, "post": 12, "register": 3}
    assert result["group_vars"]["lemmy_server_email"]["smtp_server"] == "postfix:25"
    assert any("postfix" in w for w in result["warnings"])
    inventory = result["inventory"]["all"]
    assert inventory["hosts"]["lemmy.example.org"] == {"ansible_host": "203.0.113.5", "ansible_user": "root", "pictrs_data_dir": DIR + "/volumes/pictrs"}
    assert any("no certbot certificate for lemmy.example.org" in w for w in result["warnings"])
    for group in GROUPS:
        assert inventory["children"][group] == {"hosts": {"lemmy.example.org": None}}
    assert inventory["children"]["lemmy_ansible"]["hosts"]["lemmy.example.org"] == {"lemmy_ansible_dir": DIR}
    assert result["secrets"] == {"lemmy_database_password": PASSWORD, "pictrs_api_key": PASSWORD}


def test_secrets_never_reach_the_non_secret_parts() -> None:
    result = run()
    for key in ("group_vars", "inventory", "paths", "database", "versions", "containers", "warnings", "pictrs"):
        assert PASSWORD not in repr(result[key]), key


def test_a_different_ui_version_and_database_names_are_carried() -> None:
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["lemmy-ui"]["image"] = "dessalines/lemmy-ui:0.19.19"
    compose["services"]["postgres"]["environment"] = ["POSTGRES_USER=lem", "POSTGRES_PASSWORD=x", "POSTGRES_DB=lemdb"]
    result = run(compose=compose)
    assert result["group_vars"]["lemmy_ui_version"] == "0.19.19"
    assert result["group_vars"]["lemmy_database_name"] == "lemdb"
    assert result["group_vars"]["lemmy_database_user"] == "lem"


def test_unknown_top_level_keys_go_to_extra_config() -> None:
    text = LEMMY_HJSON.rstrip().rstrip("}") + "  federation: {\n    concurrency: 8\n  }\n  setup: {\n    admin_username: admin\n  }\n}\n"
    result = run(lemmy_hjson=text)
    assert result["group_vars"]["lemmy_server_extra_config"] == {"federation": {"concurrency": 8}}


def test_refusals_list_every_problem_with_its_fix() -> None:
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["lemmy"]["image"] = "dessalines/lemmy:0.18.5"
    compose["services"]["pictrs"]["environment"].append("PICTRS__REPO__TYPE=postgres")
    compose["services"]["pictrs"]["volumes"] = ["pictrs:/mnt"]
    short = LEMMY_HJSON.replace('password: "%s"' % PASSWORD, 'password: "short"')
    found = problems(compose=compose, lemmy_hjson=short, containers=[])
    assert len(found) == 5, found
    assert "has 5 characters but this collection's postgresql role needs at least 12" in found[0]
    assert "uses the postgres repo; adopting it is not supported" in found[1]
    assert "mounts no host directory at /mnt" in found[2]
    assert "dessalines/lemmy:0.18.5" in found[3] and "upgrade with lemmy-ansible first" in found[3]
    assert "no container of compose project lemmyexampleorg runs the postgres service" in found[4]


def test_a_stopped_database_container_is_refused() -> None:
    containers = [dict(c, state="exited") if c["service"] == "postgres" else c for c in RUNNING]
    assert problems(containers=containers) == [
        "the postgres container lemmyexampleorg-postgres-1 on lemmy.example.org is exited; "
        "start it (docker start lemmyexampleorg-postgres-1) so it can be dumped"
    ]


def test_bad_hjson_and_missing_services_are_refused_with_the_path() -> None:
    assert "lemmy.hjson line 1" in problems(lemmy_hjson='{ a: "x')[0]
    assert "/srv/lemmy/lemmy.example.org/lemmy.hjson" in problems(lemmy_hjson='{ a: "x')[0]
    assert problems(compose={"services": {"lemmy": {}}})[0].endswith(
        "has no postgres service; lemmy-ansible 1.5 runs lemmy, lemmy-ui, pictrs and postgres in one project"
    )
    assert "has no services" in problems(compose={})[0]


def test_object_storage_store_is_carried_with_a_warning() -> None:
    compose = copy.deepcopy(COMPOSE)
    compose["services"]["pictrs"]["environment"].append("PICTRS__STORE__TYPE=object_storage")
    result = run(compose=compose)
    assert result["inventory"]["all"]["hosts"]["lemmy.example.org"]["pictrs_store_type"] == "object_storage"
    assert any("pictrs_object_storage" in w for w in result["warnings"])


def test_rate_limits_keep_only_integers() -> None:
    assert read_rate_limits({"message": 10, "post": True, "comment": "6", "search": 60}) == {"message": 10, "search": 60}
    assert read_rate_limits(None) == {}


def test_restore_mode_warns_only_for_an_older_target() -> None:
    assert restore_mode(15, 15) == {"format": "plain", "warnings": []}
    assert restore_mode(15, 17)["warnings"] == []
    assert "runs PostgreSQL 16 and the target runs 15" in restore_mode(16, 15)["warnings"][0]


def test_certbot_files_turn_tls_on() -> None:
    live = "/etc/letsencrypt/live/lemmy.example.org/"
    result = run(tls_files={"certificate": live + "fullchain.pem", "key": live + "privkey.pem"})
    entry = result["inventory"]["all"]["hosts"]["lemmy.example.org"]
    assert entry["nginx_tls_enabled"] is True
    assert entry["nginx_tls_certificate"] == live + "fullchain.pem"
    assert entry["nginx_tls_certificate_key"] == live + "privkey.pem"
    assert not any("certbot" in w for w in result["warnings"])


def test_docker_ps_rows_give_the_services() -> None:
    rows = [
        {"Names": "lemmyexampleorg-postgres-1", "State": "running",
         "Labels": "com.docker.compose.project=lemmyexampleorg,com.docker.compose.service=postgres,com.docker.compose.oneoff=False"},
        {"Names": "unrelated", "State": "running", "Labels": ""},
    ]
    assert containers_from_docker_ps(rows) == [{"name": "lemmyexampleorg-postgres-1", "service": "postgres", "state": "running"}]
    assert run(containers=rows)["postgres_container"] == "lemmyexampleorg-postgres-1"
