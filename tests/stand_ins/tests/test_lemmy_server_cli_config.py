# SPDX-License-Identifier: GPL-3.0-or-later
"""lemmy_server stand-in contract: image metadata, config file rules, command line and env forms."""
from __future__ import annotations

import json
import socket

import pytest
from conftest import LEMMY_IMAGE, LEMMY_VERSIONS, LemmyRunner, PgDatabase, docker_cli, free_port, http_request, require_image, wait_until


@pytest.mark.parametrize("version", LEMMY_VERSIONS)
def test_image_entrypoint_uid_port_stopsignal(version: str) -> None:
    """Image: ENTRYPOINT lemmy_server, uid 1000, EXPOSE 8536, STOPSIGNAL SIGTERM, no CMD."""
    image = f"{LEMMY_IMAGE}:{version}"
    require_image(image)
    config = json.loads(docker_cli("image", "inspect", "-f", "{{json .Config}}", image).stdout)
    assert config["Entrypoint"] == ["lemmy_server"]
    assert config["User"] == "1000"
    assert "8536/tcp" in config["ExposedPorts"]
    assert config["StopSignal"] == "SIGTERM"
    assert not config.get("Cmd")


@pytest.mark.parametrize("version", LEMMY_VERSIONS)
def test_start_prints_version_banner(lemmy: LemmyRunner, version: str) -> None:
    """Startup prints "Lemmy v<version>" and the HTTP API reports the same version."""
    proc = lemmy.start(version)
    proc.wait_ready()
    assert f"Lemmy v{version}\n" in proc.container.logs()[0]
    assert proc.get("/api/v3/site").json()["version"] == version


@pytest.mark.parametrize("hostname_line", ["", "  hostname: unset\n"], ids=["missing", "unset"])
def test_config_without_hostname_is_refused(lemmy: LemmyRunner, hostname_line: str) -> None:
    """Config: a missing or "unset" hostname aborts startup with a clear message."""
    path = lemmy.config(0, body="{\n" + hostname_line + "  port: 1\n}\n")
    code, out, err = lemmy.run_to_exit(config_path=path)
    assert code != 0
    assert "Failed to load settings file" in err and "Hostname variable is not set" in err
    assert "Lemmy v" not in out


@pytest.mark.parametrize("section", ["pictrs", "email", "setup", "prometheus"])
def test_config_unknown_key_in_strict_section_is_refused(lemmy: LemmyRunner, section: str) -> None:
    """Config: pictrs/email/setup/prometheus deny unknown fields."""
    valid = {"pictrs": "url: \"http://127.0.0.1:8080/\"", "email": "smtp_server: \"mail:25\"\n smtp_from_address: \"a@b.c\"",
             "setup": "admin_username: admin\n admin_password: correct-horse-battery\n site_name: x", "prometheus": "port: 10002"}
    path = lemmy.config(0, body=f"{{\n hostname: lemmy.test\n {section}: {{\n {valid[section]}\n typo_key: 1\n }}\n}}\n")
    code, _out, err = lemmy.run_to_exit(config_path=path)
    assert code != 0
    assert f"unknown field `typo_key` in `{section}`" in err


@pytest.mark.parametrize("version,accepted", [("0.19.3", False), ("0.19.4", True)])
def test_config_pictrs_image_mode_only_from_0_19_4(lemmy: LemmyRunner, version: str, accepted: bool) -> None:
    """Config: `pictrs.image_mode` exists from 0.19.4; older releases refuse it as an unknown field."""
    port = free_port()
    proc = lemmy.start(version, port=port, extra_extra="  pictrs: {\n    image_mode: ProxyAllImages\n  }\n")
    if accepted:
        proc.wait_ready()
    else:
        assert proc.container.wait_exit() != 0
        assert "unknown field `image_mode` in `pictrs`" in proc.container.logs()[1]


# (image, version the stand-in runs as, pictrs line, accepted). STANDIN_VERSION overrides the image's version so the
# boundaries between built images are covered too.
PICTRS_KEYS_BY_VERSION = [
    ("0.19.4", "0.19.5", "max_thumbnail_size: 256", False), ("0.19.4", "0.19.6", "max_thumbnail_size: 256", True),
    ("0.19.4", "0.19.7", 'proxy_bypass_domains: ["i.imgur.com"]', False),
    ("0.19.4", "0.19.8", 'proxy_bypass_domains: ["i.imgur.com"]', True),
    ("0.19.4", "0.19.4", "max_thumbnail_size: 256", False), ("0.19.19", "0.19.19", "max_thumbnail_size: 256", True),
    ("0.19.4", "0.19.4", 'proxy_bypass_domains: ["i.imgur.com"]', False),
    ("0.19.20", "0.19.20", 'proxy_bypass_domains: ["i.imgur.com"]', True),
]


@pytest.mark.parametrize("image,version,line,accepted", PICTRS_KEYS_BY_VERSION,
                         ids=[f"{v}-{line.split(':')[0]}-{'ok' if ok else 'refused'}" for _i, v, line, ok in PICTRS_KEYS_BY_VERSION])
def test_config_pictrs_keys_newer_than_the_binary_are_refused(lemmy: LemmyRunner, image: str, version: str, line: str,
                                                              accepted: bool) -> None:
    """Config: `pictrs` denies unknown fields, so `max_thumbnail_size` (0.19.6) and `proxy_bypass_domains` (0.19.8)
    stop older releases at startup: the settings panic, exit 101, before the version banner."""
    key = line.split(":")[0]
    proc = lemmy.start(image, env={"STANDIN_VERSION": version}, extra_extra=f"  pictrs: {{\n    {line}\n  }}\n")
    if accepted:
        proc.wait_ready()
        assert f"Lemmy v{version}\n" in proc.container.logs()[0]
        return
    assert proc.container.wait_exit() == 101
    out, err = proc.container.logs()
    assert "Failed to load settings file" in err and f"unknown field `{key}` in `pictrs`" in err, err
    assert "Lemmy v" not in out


def test_config_newer_top_level_keys_are_ignored_by_older_releases(lemmy: LemmyRunner) -> None:
    """Config: the top level does not deny unknown fields, so 0.19.6's `federation` and 0.19.11's `json_logging` are
    ignored by 0.19.4 (and 0.19.5's `worker_count` by 0.19.20: every started config carries it)."""
    extra = "  federation: {\n    concurrent_sends_per_instance: 2\n  }\n  json_logging: true\n"
    lemmy.start("0.19.4", extra_extra=extra).wait_ready()


@pytest.mark.parametrize("version,honoured", [("0.19.3", False), ("0.19.4", True), ("0.19.20", True)])
def test_initialize_with_default_settings_only_from_0_19_4(lemmy: LemmyRunner, version: str, honoured: bool) -> None:
    """LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS (0.19.4+) skips the config file and says so; 0.19.3 ignores the variable
    and still needs the file."""
    env = {"LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS": "1"}
    code, out, err = lemmy.run_to_exit(version, args=["--version"], mount="/nowhere.hjson", env=env)
    if honoured:
        assert code == 0, err
        assert "LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS was set, any configuration file has been ignored." in out
        assert f"lemmy_server {version}\n" in out
    else:
        assert code == 101, out + err
        assert "Failed to load settings file" in err and "cannot read config file /config/config.hjson" in err
        assert "LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS" not in out


def test_config_default_location_and_lemmy_config_location(lemmy: LemmyRunner) -> None:
    """Config: read from /config/config.hjson by default, or from LEMMY_CONFIG_LOCATION."""
    code, _out, err = lemmy.run_to_exit(mount="/elsewhere/lemmy.hjson")
    assert code != 0 and "cannot read config file /config/config.hjson" in err
    proc = lemmy.start(mount="/elsewhere/lemmy.hjson", env={"LEMMY_CONFIG_LOCATION": "/elsewhere/lemmy.hjson"})
    proc.wait_ready()


@pytest.mark.parametrize("style", ["uri", "parts", "env_override"])
def test_config_database_uri_parts_and_env_override(lemmy: LemmyRunner, postgres: PgDatabase, style: str) -> None:
    """Config: database as `uri`, as parts, or overridden whole by LEMMY_DATABASE_URL."""
    port = free_port()
    env: dict[str, str] = {}
    if style == "uri":
        database = f'uri: "{postgres.uri}"'
    elif style == "parts":
        database = (f"user: {postgres.user}\n password: \"{postgres.password}\"\n host: 127.0.0.1\n port: {postgres.port}\n"
                    f" database: {postgres.dbname}")
    else:
        database = 'uri: "postgres://nobody:wrong@127.0.0.1:1/nothing"'
        env["LEMMY_DATABASE_URL"] = postgres.uri
    path = lemmy.config(port, body=f"{{\n hostname: lemmy.test\n port: {port}\n database: {{\n {database}\n }}\n}}\n")
    proc = lemmy.start(port=port, config_path=path, env=env)
    proc.wait_ready()
    assert postgres.query("SELECT count(*) FROM local_site")[0][0] == 1


def test_config_database_parts_default_to_lemmy_at_localhost(lemmy: LemmyRunner) -> None:
    """Config: without a database section the parts default to lemmy:password@localhost:5432/lemmy."""
    path = lemmy.config(0, body="{\n hostname: lemmy.test\n port: 1\n}\n")
    proc = lemmy.start(config_path=path, network="none")
    assert proc.container.wait_exit() != 0
    err = proc.container.logs()[1]
    assert "Error connecting to database" in err and "localhost" in err and "5432" in err


def test_config_defaults_bind_all_on_port_8536(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Config: `bind` defaults to 0.0.0.0 and `port` to 8536 (checked in a bridge-network container)."""
    assert postgres.bridge_host, "the docker bridge network has no gateway address"
    path = lemmy.config(0, body=f'{{\n hostname: lemmy.test\n database: {{ uri: "postgres://{postgres.user}:{postgres.password}@'
                                f'{postgres.bridge_host}:{postgres.port}/{postgres.dbname}" }}\n}}\n')
    proc = lemmy.start(config_path=path, network="bridge")
    address = wait_until(lambda: proc.container.inspect("{{.NetworkSettings.IPAddress}}"), 30, "the container's bridge address")
    wait_until(lambda: http_request(8536, "/.well-known/nodeinfo", host=address, timeout=2).status == 200, 60,
               f"the stand-in to serve on {address}:8536")


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_need_a_config(lemmy: LemmyRunner, flag: str) -> None:
    """CLI: --version/--help exit 0, but only after the config loaded (or with LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS)."""
    code, _out, err = lemmy.run_to_exit(args=[flag], mount="/nowhere.hjson")
    assert code != 0 and "Failed to load settings file" in err
    code, out, _err = lemmy.run_to_exit(args=[flag])
    assert code == 0
    assert ("lemmy_server 0.19.20" in out) if flag == "--version" else ("--federate-process-count" in out)
    code, out, _err = lemmy.run_to_exit(args=[flag], mount="/nowhere.hjson", env={"LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS": "1"})
    assert code == 0 and out


@pytest.mark.parametrize("args,message", [
    (["--frobnicate"], "unexpected argument '--frobnicate' found"),
    (["--federate-process-index", "two"], "invalid value 'two' for '--federate-process-index"),
    (["--federate-process-count=1.5"], "invalid value '1.5' for '--federate-process-count"),
    (["--disable-http-server=yes"], "unexpected value 'yes'"),
], ids=["unknown-flag", "index-not-int", "count-not-int", "bool-flag-with-value"])
def test_bad_command_line_exits_2(lemmy: LemmyRunner, args: list[str], message: str) -> None:
    """CLI: clap-like errors exit 2 before anything starts."""
    code, out, err = lemmy.run_to_exit(args=args)
    assert code == 2
    assert message in err
    assert "Lemmy v" not in out


@pytest.mark.parametrize("version", ["0.19.4", "0.19.20"])
@pytest.mark.parametrize("env", [{"LEMMY_DISABLE_HTTP_SERVER": "1"}, {"LEMMY_DISABLE_SCHEDULED_TASKS": "True"},
                                 {"LEMMY_FEDERATE_PROCESS_INDEX": "x"}], ids=["bool-1", "bool-True", "index-x"])
def test_env_forms_validated_from_0_19_4(lemmy: LemmyRunner, version: str, env: dict[str, str]) -> None:
    """Env: LEMMY_DISABLE_* accept only true/false and LEMMY_FEDERATE_* only integers (exit 2 otherwise)."""
    code, _out, err = lemmy.run_to_exit(version, env=env)
    assert code == 2
    assert "invalid value" in err
    if "LEMMY_DISABLE_HTTP_SERVER" in env:
        assert "[possible values: true, false]" in err


def test_env_forms_ignored_before_0_19_4(lemmy: LemmyRunner) -> None:
    """Env: 0.19.3 ignores LEMMY_DISABLE_* (even invalid values): it still serves HTTP."""
    proc = lemmy.start("0.19.3", env={"LEMMY_DISABLE_HTTP_SERVER": "true", "LEMMY_DISABLE_SCHEDULED_TASKS": "1",
                                      "LEMMY_FEDERATE_PROCESS_COUNT": "x"})
    proc.wait_ready()


@pytest.mark.parametrize("how", ["flags", "env"])
def test_all_three_disable_flags_migrate_and_exit_0_from_0_19_4(lemmy: LemmyRunner, postgres: PgDatabase, how: str) -> None:
    """0.19.4+: with all three --disable-* (flags or env) the process migrates, initialises the site and exits 0."""
    if how == "flags":
        code, out, _err = lemmy.run_to_exit("0.19.4", args=["--disable-http-server", "--disable-scheduled-tasks",
                                                            "--disable-activity-sending"])
    else:
        code, out, _err = lemmy.run_to_exit("0.19.4", env={"LEMMY_DISABLE_HTTP_SERVER": "true", "LEMMY_DISABLE_SCHEDULED_TASKS": "true",
                                                           "LEMMY_DISABLE_ACTIVITY_SENDING": "true"})
    assert code == 0, out
    assert postgres.query("SELECT count(*) FROM __diesel_schema_migrations")[0][0] > 0
    assert postgres.query("SELECT count(*) FROM local_site_rate_limit")[0][0] == 1


def test_all_three_disable_flags_keep_running_before_0_19_4(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """0.19.3: with all three --disable-* flags the process migrates, then waits for a signal."""
    proc = lemmy.start("0.19.3", ["--disable-http-server", "--disable-scheduled-tasks", "--disable-activity-sending"])
    wait_until(lambda: "Startup complete" in proc.container.logs()[0], 60, "the end of startup")
    assert postgres.query("SELECT count(*) FROM local_site")[0][0] == 1
    assert proc.stop() == 0  # docker kill fails if the container already exited on its own
    assert "Received SIGTERM" in proc.container.logs()[0]


@pytest.mark.parametrize("pool_line,expected", [("", 30), ("    pool_size: 7\n", 7), ("    pool_size: 1\n", 2)],
                         ids=["default-30", "configured", "minimum-2"])
def test_prometheus_metrics_show_pool_size(lemmy: LemmyRunner, postgres: PgDatabase, pool_line: str, expected: int) -> None:
    """Config: `prometheus` serves /metrics (also without HTTP server); pool_size defaults to 30, at least 2."""
    metrics_port = free_port()
    path = lemmy.config(0, body=(f'{{\n  hostname: lemmy.test\n  database: {{\n    uri: "{postgres.uri}"\n{pool_line}  }}\n'
                                 f"  prometheus: {{\n    bind: 127.0.0.1\n    port: {metrics_port}\n  }}\n}}\n"))
    lemmy.start(args=["--disable-http-server"], config_path=path)
    reply = wait_until(lambda: http_request(metrics_port, "/metrics", timeout=2), 60, "the metrics endpoint")
    assert f"lemmy_db_pool_max_connections {expected}\n" in reply.body.decode()


def test_prometheus_bind_failure_only_loses_metrics(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Config: if the prometheus port is taken, only that thread panics; the process keeps serving."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = free_port()
        extra = f"  prometheus: {{\n    bind: 127.0.0.1\n    port: {taken.getsockname()[1]}\n  }}\n"
        proc = lemmy.start(port=port, extra_extra=extra)
        proc.wait_ready()
        wait_until(lambda: "Prometheus server cannot bind to 127.0.0.1:" in proc.container.logs()[1], 30, "the prometheus panic line")
        assert "thread '<unnamed>' panicked at src/prometheus_metrics.rs" in proc.container.logs()[1]
        assert proc.get("/api/v3/site").status == 200


def test_prometheus_text_format_like_lemmy(lemmy: LemmyRunner, postgres: PgDatabase) -> None:
    """Metrics: /metrics only, GET only, Lemmy's three gauges with HELP and TYPE lines, actix's text/plain content type."""
    metrics_port = free_port()
    extra = f"  prometheus: {{\n    bind: 127.0.0.1\n    port: {metrics_port}\n  }}\n"
    proc = lemmy.start(extra_extra=extra)
    proc.wait_ready()
    proc.get("/api/v3/site")
    reply = wait_until(lambda: http_request(metrics_port, "/metrics", timeout=2), 60, "the metrics endpoint")
    assert reply.status == 200
    assert reply.headers["content-type"] == "text/plain; charset=utf-8"
    lines = reply.body.decode().splitlines()
    names = ["lemmy_db_pool_available_connections", "lemmy_db_pool_connections", "lemmy_db_pool_max_connections"]
    for name in names:
        assert f"# TYPE {name} gauge" in lines
        assert any(line.startswith(f"# HELP {name} ") for line in lines)
    values = {line.split()[0]: float(line.split()[1]) for line in lines if not line.startswith("#")}
    assert sorted(values) == names
    assert values["lemmy_db_pool_max_connections"] == 30
    assert 0 <= values["lemmy_db_pool_connections"] <= 30
    assert values["lemmy_db_pool_available_connections"] <= values["lemmy_db_pool_connections"]
    assert http_request(metrics_port, "/", timeout=2).status == 404
    assert http_request(metrics_port, "/metrics", method="POST", body=b"", timeout=2).status == 404


def test_prometheus_bind_must_be_an_ip(lemmy: LemmyRunner) -> None:
    """Config: prometheus.bind is an IP address; a host name fails the whole config, not only the metrics."""
    path = lemmy.config(free_port(), extra="  prometheus: {\n    bind: localhost\n    port: 10002\n  }\n")
    code, _out, err = lemmy.run_to_exit(config_path=path)
    assert code != 0
    assert "Failed to load settings file" in err and "prometheus.bind" in err
