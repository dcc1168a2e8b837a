# SPDX-License-Identifier: GPL-3.0-or-later
"""Stand-in for lemmy_server 0.19.x, used only by the lab and the contract tests.

It follows the observable contract of the real server (CLI, config, startup
order, migrations, HTTP routes, rate limiter, scheduler, federation sharding,
shutdown) as written down in the project's Lemmy facts. See ../README.md.
"""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import hjson
import psycopg2
import psycopg2.pool

VERSION = os.environ.get("STANDIN_VERSION", "0.19.20")


def _vt(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


V = _vt(VERSION)
V_ENV_FLAGS = (0, 19, 4)      # env forms of the CLI flags, nodeinfo 2.1, sender asserts, all-disabled exit
V_R_ACTIVITY = (0, 19, 7)     # site_aggregates_activity moved into schema r
V_IMAGE_MODE = (0, 19, 4)     # pictrs.image_mode accepted
V_DEFAULT_SETTINGS = (0, 19, 4)  # LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS honoured
V_MAX_THUMBNAIL = (0, 19, 6)  # pictrs.max_thumbnail_size accepted
V_PROXY_BYPASS = (0, 19, 8)   # pictrs.proxy_bypass_domains accepted
# The pictrs section denies unknown fields, so a key newer than the binary stops startup.
PICTRS_KEYS_SINCE = {"image_mode": V_IMAGE_MODE, "max_thumbnail_size": V_MAX_THUMBNAIL, "proxy_bypass_domains": V_PROXY_BYPASS}


def env_float(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        return default


MIGRATION_SECONDS = env_float("STANDIN_MIGRATION_SECONDS", 3.0)
SCHEDULER_PERIOD = max(1.0, env_float("STANDIN_SCHEDULER_PERIOD_SECONDS", 5.0))
SENDER_PERIOD = max(0.2, env_float("STANDIN_SENDER_PERIOD_SECONDS", 2.0))
# Lemmy's SAVE_STATE_EVERY_TIME is a fixed 60 s; the variable is the stand-in's own test knob.
SAVE_STATE_EVERY = env_float("STANDIN_SAVE_STATE_SECONDS", 60.0)
WORKER_EXIT_TIMEOUT = 30.0


def _container_id() -> str:
    patterns = (("/proc/self/mountinfo", r"/containers/([0-9a-f]{64})/"), ("/proc/self/cgroup", r"([0-9a-f]{64})"))
    for path, pattern in patterns:
        try:
            with open(path, encoding="utf-8") as handle:
                found = re.findall(pattern, handle.read())
        except OSError:
            continue
        if found:
            return found[-1][:12]
    return ""


_CID = _container_id()
PROCESS_ID = f"{socket.gethostname()}/{_CID}/{os.getpid()}" if _CID else f"{socket.gethostname()}/{os.getpid()}"


def log(level: str, target: str, msg: str) -> None:
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    sys.stdout.write(f"{now} {level:>5} {target}: {msg}\n")
    sys.stdout.flush()


def panic_line(where: str, msg: str) -> None:
    sys.stderr.write(f"thread '{where}' panicked at {msg}\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- settings

class SettingsError(Exception):
    pass


SUB_SECTIONS: dict[str, dict[str, Any]] = {
    "pictrs": {"url": "http://localhost:8080/", "api_key": None, "image_mode": "StoreLinkPreviews",
               "cache_external_link_previews": None, "proxy_bypass_domains": ["i.imgur.com"],
               "upload_timeout": 30, "max_thumbnail_size": 512},
    "email": {"smtp_server": None, "smtp_login": None, "smtp_password": None, "smtp_from_address": None, "tls_type": "none"},
    "setup": {"admin_username": None, "admin_password": None, "site_name": None, "admin_email": None},
    "prometheus": {"bind": "127.0.0.1", "port": 10002},
}
REQUIRED_FIELDS = {"email": ("smtp_server", "smtp_from_address"), "setup": ("admin_username", "admin_password", "site_name")}
DB_DEFAULTS: dict[str, Any] = {"user": "lemmy", "password": "password", "host": "localhost", "port": 5432, "database": "lemmy",
                               "pool_size": 30 if V >= (0, 19, 2) else 95}


def _check_int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise SettingsError(f"invalid type: {type(value).__name__} {value!r}, expected an integer for key `{name}`")
    if not low <= value <= high:
        raise SettingsError(f"invalid value: integer `{value}`, expected {low}..={high} for key `{name}`")
    return value


def _check_str(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise SettingsError(f"invalid type: {type(value).__name__} {value!r}, expected a string for key `{name}`")
    return value


def load_settings() -> dict[str, Any]:
    """Read and validate the config like Settings::init (deser_hjson + serde rules)."""
    if os.environ.get("LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS") is not None and V >= V_DEFAULT_SETTINGS:
        print("LEMMY_INITIALIZE_WITH_DEFAULT_SETTINGS was set, any configuration file has been ignored.")
        print("Use with other environment variables to configure this instance further; e.g. LEMMY_DATABASE_URL.", flush=True)
        raw: dict[str, Any] = {"hostname": "unset"}
    else:
        path = os.environ.get("LEMMY_CONFIG_LOCATION", "config/config.hjson")
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise SettingsError(f"cannot read config file {os.path.abspath(path)}: {exc.strerror}") from exc
        try:
            raw = hjson.loads(text)
        except Exception as exc:  # pylint: disable=broad-exception-caught  # hjson raises several types
            raise SettingsError(f"{path}: hjson syntax error: {exc}") from exc
        if not isinstance(raw, dict):
            raise SettingsError(f"{path}: expected a map at the top level")
        hostname = raw.get("hostname")
        if hostname is None or hostname == "unset":
            raise SettingsError("Hostname variable is not set!")
    settings: dict[str, Any] = {"hostname": _check_str(raw.get("hostname"), "hostname"),
                                "bind": _check_str(raw.get("bind", "0.0.0.0"), "bind"),
                                "port": _check_int(raw.get("port", 8536), "port", 0, 65535),
                                "tls_enabled": raw.get("tls_enabled", True)}
    for name, defaults in SUB_SECTIONS.items():
        section = raw.get(name, {} if name == "pictrs" else None)
        if section is None:
            settings[name] = None
            continue
        if not isinstance(section, dict):
            raise SettingsError(f"invalid type for `{name}`: expected a map")
        allowed = set(defaults)
        if name == "pictrs":
            allowed -= {key for key, since in PICTRS_KEYS_SINCE.items() if V < since}
        for key in section:
            if key not in allowed:
                raise SettingsError(f"unknown field `{key}` in `{name}`, expected one of {', '.join(f'`{k}`' for k in sorted(allowed))}")
        for key in REQUIRED_FIELDS.get(name, ()):
            if section.get(key) is None:
                raise SettingsError(f"missing field `{key}` in `{name}`")
        merged = dict(defaults)
        merged.update(section)
        settings[name] = merged
    if settings["prometheus"] is not None:
        _check_int(settings["prometheus"]["port"], "prometheus.port", 0, 65535)
        # bind is a std::net::IpAddr: a host name fails the whole config, like serde does.
        try:
            ipaddress.ip_address(_check_str(settings["prometheus"]["bind"], "prometheus.bind"))
        except ValueError as exc:
            raise SettingsError(f"invalid IP address syntax for key `prometheus.bind`: {settings['prometheus']['bind']!r}") from exc
    db = raw.get("database", {}) or {}
    if not isinstance(db, dict):
        raise SettingsError("invalid type for `database`: expected a map")
    pool_size = max(2, _check_int(db.get("pool_size", DB_DEFAULTS["pool_size"]), "database.pool_size", 0, 10000))
    if os.environ.get("LEMMY_DATABASE_URL"):
        uri = os.environ["LEMMY_DATABASE_URL"]
    elif db.get("uri"):
        uri = _check_str(db["uri"], "database.uri")
    else:
        parts = dict(DB_DEFAULTS)
        parts.update({k: v for k, v in db.items() if k in DB_DEFAULTS})
        q = urllib.parse.quote
        uri = (f"postgres://{q(str(parts['user']), safe='')}:{q(str(parts['password']), safe='')}@{parts['host']}:"
               f"{_check_int(parts['port'], 'database.port', 1, 65535)}/{q(str(parts['database']), safe='')}")
    settings["database_uri"] = uri
    settings["pool_size"] = pool_size
    url = settings["pictrs"]["url"]
    settings["pictrs"]["url"] = _check_str(url, "pictrs.url")
    return settings


# --------------------------------------------------------------------------- command line

HELP = """A link aggregator for the fediverse

Usage: lemmy_server [OPTIONS]

Options:
      --disable-scheduled-tasks
          Don't run scheduled tasks.{e1}
      --disable-http-server
          Disables the HTTP server.{e2}
      --disable-activity-sending
          Disable sending outgoing ActivityPub messages.{e3}
      --federate-process-index <FEDERATE_PROCESS_INDEX>
          The index of this outgoing federation process. [default: 1]{e4}
      --federate-process-count <FEDERATE_PROCESS_COUNT>
          How many outgoing federation processes you are starting in total. [default: 1]{e5}
  -h, --help
          Print help
  -V, --version
          Print version
"""


class UsageError(Exception):
    pass


BOOL_FLAGS = {"--disable-scheduled-tasks": ("LEMMY_DISABLE_SCHEDULED_TASKS", "disable_scheduled_tasks"),
              "--disable-http-server": ("LEMMY_DISABLE_HTTP_SERVER", "disable_http_server"),
              "--disable-activity-sending": ("LEMMY_DISABLE_ACTIVITY_SENDING", "disable_activity_sending")}
INT_FLAGS = {"--federate-process-index": ("LEMMY_FEDERATE_PROCESS_INDEX", "federate_process_index", "<FEDERATE_PROCESS_INDEX>"),
             "--federate-process-count": ("LEMMY_FEDERATE_PROCESS_COUNT", "federate_process_count", "<FEDERATE_PROCESS_COUNT>")}


def _parse_i32(value: str, flag: str, meta: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", value):
        raise UsageError(f"invalid value '{value}' for '{flag} {meta}': invalid digit found in string")
    number = int(value)
    if not -2 ** 31 <= number < 2 ** 31:
        raise UsageError(f"invalid value '{value}' for '{flag} {meta}': number too large to fit in target type")
    return number


def parse_args(argv: list[str]) -> dict[str, Any]:
    """Parse like the clap-derived CmdArgs: flags beat env vars (env only from 0.19.4)."""
    args: dict[str, Any] = {"disable_scheduled_tasks": False, "disable_http_server": False, "disable_activity_sending": False,
                            "federate_process_index": 1, "federate_process_count": 1}
    seen: set[str] = set()
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg in ("-h", "--help"):
            env_doc = V >= V_ENV_FLAGS
            extra = {f"e{n}": (f"\n\n          [env: {e}=]" if env_doc else "")
                     for n, e in enumerate([v[0] for v in BOOL_FLAGS.values()] + [v[0] for v in INT_FLAGS.values()], start=1)}
            sys.stdout.write(HELP.format(**extra))
            sys.exit(0)
        if arg in ("-V", "--version"):
            sys.stdout.write(f"lemmy_server {VERSION}\n")
            sys.exit(0)
        name, eq, value = arg.partition("=")
        if name in BOOL_FLAGS:
            if eq:
                raise UsageError(f"unexpected value '{value}' for '{name}' found; no more were expected")
            if name in seen:
                raise UsageError(f"the argument '{name}' cannot be used multiple times")
            seen.add(name)
            args[BOOL_FLAGS[name][1]] = True
        elif name in INT_FLAGS:
            _env, key, meta = INT_FLAGS[name]
            if not eq:
                if i + 1 >= len(argv) or argv[i + 1].startswith("-"):
                    raise UsageError(f"a value is required for '{name} {meta}' but none was supplied")
                i += 1
                value = argv[i]
            if name in seen:
                raise UsageError(f"the argument '{name} {meta}' cannot be used multiple times")
            seen.add(name)
            args[key] = _parse_i32(value, name, meta)
        else:
            raise UsageError(f"unexpected argument '{arg}' found")
        i += 1
    if V >= V_ENV_FLAGS:
        for name, (env, key) in BOOL_FLAGS.items():
            value = os.environ.get(env)
            if name in seen or not value:
                continue
            if value not in ("true", "false"):
                raise UsageError(f"invalid value '{value}' for '{name}'\n  [possible values: true, false]")
            args[key] = value == "true"
        for name, (env, key, meta) in INT_FLAGS.items():
            value = os.environ.get(env)
            if name in seen or not value:
                continue
            args[key] = _parse_i32(value, name, meta)
    return args


# --------------------------------------------------------------------------- schema

FUNCS_RANK = """
CREATE FUNCTION {s}hot_rank(score numeric, published timestamptz) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN (now() - published) > '0 days' AND (now() - published) < '7 days'
                 THEN log(greatest(2, score + 2)) / power((EXTRACT(EPOCH FROM (now() - published)) / 3600) + 2, 1.8)
                 ELSE 0.0 END $$;
CREATE FUNCTION {s}scaled_rank(score numeric, published timestamptz, users_active_month numeric) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT {s}hot_rank(score, published) / log(2 + users_active_month) $$;
CREATE FUNCTION {s}controversy_rank(upvotes numeric, downvotes numeric) RETURNS double precision
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN downvotes <= 0 OR upvotes <= 0 THEN 0
                 ELSE (upvotes + downvotes) * CASE WHEN upvotes > downvotes THEN downvotes::float / upvotes::float
                                                  ELSE upvotes::float / downvotes::float END END $$;
"""
FUNC_ACTIVITY = """
CREATE FUNCTION {s}site_aggregates_activity(i text) RETURNS integer LANGUAGE sql STABLE
    AS $$ SELECT count(*)::integer FROM person WHERE local AND last_active > now() - i::interval $$;
"""

BASE_SQL = """
CREATE TABLE instance (id serial PRIMARY KEY, domain varchar(255) NOT NULL UNIQUE, published timestamptz NOT NULL DEFAULT now(),
    updated timestamptz, software varchar(255), version varchar(255));
CREATE TABLE federation_allowlist (instance_id int PRIMARY KEY REFERENCES instance ON DELETE CASCADE,
    published timestamptz NOT NULL DEFAULT now(), updated timestamptz);
CREATE TABLE federation_blocklist (instance_id int PRIMARY KEY REFERENCES instance ON DELETE CASCADE,
    published timestamptz NOT NULL DEFAULT now(), updated timestamptz);
CREATE TABLE site (id serial PRIMARY KEY, name varchar(20) NOT NULL, sidebar text, published timestamptz NOT NULL DEFAULT now(),
    updated timestamptz, icon text, banner text, description varchar(150), actor_id varchar(255) NOT NULL UNIQUE,
    last_refreshed_at timestamptz NOT NULL DEFAULT now(), inbox_url varchar(255) NOT NULL, private_key text, public_key text NOT NULL,
    instance_id int NOT NULL UNIQUE REFERENCES instance ON DELETE CASCADE, CONSTRAINT site_name_key UNIQUE (name));
CREATE TABLE local_site (id serial PRIMARY KEY, site_id int NOT NULL UNIQUE REFERENCES site ON DELETE CASCADE,
    site_setup boolean NOT NULL DEFAULT false, enable_downvotes boolean NOT NULL DEFAULT true, enable_nsfw boolean NOT NULL DEFAULT true,
    community_creation_admin_only boolean NOT NULL DEFAULT false, require_email_verification boolean NOT NULL DEFAULT false,
    application_question text, private_instance boolean NOT NULL DEFAULT false, default_theme text NOT NULL DEFAULT 'browser',
    default_post_listing_type text NOT NULL DEFAULT 'Local', legal_information text, hide_modlog_mod_names boolean NOT NULL DEFAULT true,
    application_email_admins boolean NOT NULL DEFAULT false, slur_filter_regex text, actor_name_max_length int NOT NULL DEFAULT 20,
    federation_enabled boolean NOT NULL DEFAULT true, captcha_enabled boolean NOT NULL DEFAULT false,
    captcha_difficulty varchar(255) NOT NULL DEFAULT 'medium', published timestamptz NOT NULL DEFAULT now(), updated timestamptz,
    registration_mode text NOT NULL DEFAULT 'RequireApplication', reports_email_admins boolean NOT NULL DEFAULT false,
    federation_signed_fetch boolean NOT NULL DEFAULT false);
CREATE TABLE local_site_rate_limit (local_site_id int PRIMARY KEY REFERENCES local_site ON DELETE CASCADE,
    message int NOT NULL DEFAULT 180, message_per_second int NOT NULL DEFAULT 60, post int NOT NULL DEFAULT 6,
    post_per_second int NOT NULL DEFAULT 600, register int NOT NULL DEFAULT 3, register_per_second int NOT NULL DEFAULT 3600,
    image int NOT NULL DEFAULT 6, image_per_second int NOT NULL DEFAULT 3600, comment int NOT NULL DEFAULT 6,
    comment_per_second int NOT NULL DEFAULT 600, search int NOT NULL DEFAULT 60, search_per_second int NOT NULL DEFAULT 600,
    published timestamptz NOT NULL DEFAULT now(), updated timestamptz, import_user_settings int NOT NULL DEFAULT 1,
    import_user_settings_per_second int NOT NULL DEFAULT 86400);
CREATE TABLE site_aggregates (site_id int PRIMARY KEY REFERENCES site ON DELETE CASCADE, users bigint NOT NULL DEFAULT 1,
    posts bigint NOT NULL DEFAULT 0, comments bigint NOT NULL DEFAULT 0, communities bigint NOT NULL DEFAULT 0,
    users_active_day bigint NOT NULL DEFAULT 0, users_active_week bigint NOT NULL DEFAULT 0,
    users_active_month bigint NOT NULL DEFAULT 0, users_active_half_year bigint NOT NULL DEFAULT 0);
CREATE TABLE person (id serial PRIMARY KEY, name varchar(255) NOT NULL, display_name varchar(255), local boolean NOT NULL DEFAULT true,
    actor_id varchar(255) NOT NULL UNIQUE, instance_id int NOT NULL REFERENCES instance ON DELETE CASCADE,
    published timestamptz NOT NULL DEFAULT now(), last_active timestamptz NOT NULL DEFAULT now());
CREATE TABLE local_user (id serial PRIMARY KEY, person_id int NOT NULL UNIQUE REFERENCES person ON DELETE CASCADE,
    password_encrypted text NOT NULL, email text UNIQUE, admin boolean NOT NULL DEFAULT false);
CREATE TABLE community (id serial PRIMARY KEY, name varchar(255) NOT NULL, title varchar(255) NOT NULL, local boolean NOT NULL DEFAULT true,
    actor_id varchar(255) NOT NULL UNIQUE, instance_id int NOT NULL REFERENCES instance ON DELETE CASCADE,
    published timestamptz NOT NULL DEFAULT now());
CREATE TABLE post (id serial PRIMARY KEY, name varchar(200) NOT NULL, url varchar(512), body text,
    creator_id int NOT NULL REFERENCES person ON DELETE CASCADE, community_id int NOT NULL REFERENCES community ON DELETE CASCADE,
    local boolean NOT NULL DEFAULT true, ap_id varchar(255) NOT NULL UNIQUE, published timestamptz NOT NULL DEFAULT now());
CREATE TABLE post_aggregates (post_id int PRIMARY KEY REFERENCES post ON DELETE CASCADE, score bigint NOT NULL DEFAULT 0,
    upvotes bigint NOT NULL DEFAULT 0, downvotes bigint NOT NULL DEFAULT 0, published timestamptz NOT NULL DEFAULT now(),
    hot_rank double precision NOT NULL DEFAULT 0.0001, controversy_rank double precision NOT NULL DEFAULT 0);
CREATE TABLE comment (id serial PRIMARY KEY, content text NOT NULL, creator_id int NOT NULL REFERENCES person ON DELETE CASCADE,
    post_id int NOT NULL REFERENCES post ON DELETE CASCADE, local boolean NOT NULL DEFAULT true, ap_id varchar(255) NOT NULL UNIQUE,
    published timestamptz NOT NULL DEFAULT now());
CREATE TABLE image_upload (id serial PRIMARY KEY, local_user_id int REFERENCES local_user ON DELETE CASCADE,
    pictrs_alias text NOT NULL UNIQUE, pictrs_delete_token text NOT NULL, published timestamptz NOT NULL DEFAULT now());
CREATE TABLE sent_activity (id bigserial PRIMARY KEY, ap_id text NOT NULL UNIQUE, data json NOT NULL,
    sensitive boolean NOT NULL DEFAULT false, published timestamptz NOT NULL DEFAULT now(), send_inboxes text[] NOT NULL DEFAULT '{}',
    send_community_followers_of int, send_all_instances boolean NOT NULL DEFAULT true, actor_type text NOT NULL DEFAULT 'person',
    actor_apub_id text);
CREATE TABLE received_activity (ap_id text PRIMARY KEY, published timestamptz NOT NULL DEFAULT now(),
    standin_inbox text, standin_process text);
CREATE TABLE federation_queue_state (instance_id int PRIMARY KEY REFERENCES instance ON DELETE CASCADE, last_successful_id bigint,
    fail_count int NOT NULL DEFAULT 0, last_retry timestamptz, last_successful_published_time timestamptz);
CREATE TABLE standin_scheduler_tick (id bigserial PRIMARY KEY, tick_at timestamptz NOT NULL, process text NOT NULL,
    version text NOT NULL, ok boolean NOT NULL, error text, recorded_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE standin_federation_owner (instance_id int NOT NULL, process text NOT NULL, shard_index int NOT NULL,
    shard_count int NOT NULL, version text NOT NULL, first_seen timestamptz NOT NULL DEFAULT now(),
    seen_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (instance_id, process));
""" + FUNCS_RANK.format(s="") + FUNC_ACTIVITY.format(s="")

NOOP = "SELECT 1"

# (release that first ships it, diesel version key, name, up SQL). Keys and names of the
# migrations listed in the facts are Lemmy's; the stand-in's base schema and the SQL bodies are
# its own, shaped only where an old binary can observe the difference.
MIGRATIONS: list[tuple[tuple[int, ...], str, str, str]] = [
    ((0, 19, 0), "00000000000000", "standin_0.19.0_schema", BASE_SQL),
    ((0, 19, 2), "2024-01-02-094916", "site-name-not-unique", "ALTER TABLE site DROP CONSTRAINT site_name_key"),
    ((0, 19, 4), "2023-10-24-131607", "proxy_links",
     "ALTER TABLE image_upload RENAME TO local_image; CREATE TABLE remote_image (id serial PRIMARY KEY, link text NOT NULL UNIQUE,"
     " published timestamptz NOT NULL DEFAULT now())"),
    ((0, 19, 4), "2024-02-24-034523", "replaceable-schema",
     "DROP FUNCTION scaled_rank(numeric, timestamptz, numeric); DROP FUNCTION hot_rank(numeric, timestamptz);"
     " DROP FUNCTION controversy_rank(numeric, numeric)"),
    ((0, 19, 4), "2024-02-28-144211", "hide_posts",
     "CREATE TABLE post_hide (post_id int NOT NULL REFERENCES post ON DELETE CASCADE, person_id int NOT NULL REFERENCES person"
     " ON DELETE CASCADE, published timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (person_id, post_id))"),
    ((0, 19, 4), "2024-03-06-201637", "url_blocklist",
     "CREATE TABLE local_site_url_blocklist (id serial PRIMARY KEY, url text NOT NULL UNIQUE, published timestamptz NOT NULL"
     " DEFAULT now(), updated timestamptz)"),
    ((0, 19, 4), "2024-05-04-140749", "separate_triggers", NOOP),
    ((0, 19, 5), "2024-06-17-160323", "fix_post_aggregates_featured_local", NOOP),
    ((0, 19, 6), "2024-09-16-174833", "add_image_detail_table",
     "ALTER TABLE remote_image DROP COLUMN id; ALTER TABLE remote_image ADD PRIMARY KEY (link);"
     " CREATE TABLE image_details (link text PRIMARY KEY, width int NOT NULL, height int NOT NULL, content_type text NOT NULL)"),
    ((0, 19, 6), "2024-10-04-000001", "ap_id_triggers", NOOP),
    ((0, 19, 6), "2024-10-04-000002", "exponential_controversy", NOOP),
    ((0, 19, 6), "2024-10-04-000003", "increase_post_url_max_length", "ALTER TABLE post ALTER COLUMN url TYPE varchar(2000)"),
    ((0, 19, 7), "2024-11-12-090437", "move-triggers", "DROP FUNCTION site_aggregates_activity(text)"),
    ((0, 19, 10), "2025-03-01-000001", "ban-remove-content-pm", NOOP),
    ((0, 19, 10), "2025-03-01-000002", "enable_english_for_all", NOOP),
    ((0, 19, 11), "2025-03-20-000001", "donation-dialog",
     "ALTER TABLE local_site ADD COLUMN disable_donation_dialog boolean NOT NULL DEFAULT false"),
    ((0, 19, 11), "2025-03-20-000002", "search-alt-text-of-posts", "ALTER TABLE post ADD COLUMN alt_text text"),
    ((0, 19, 11), "2025-04-07-100344", "registration-rate-limit",
     "ALTER TABLE local_site_rate_limit ALTER COLUMN register SET DEFAULT 10; UPDATE local_site_rate_limit SET register = 10"
     " WHERE register = 3"),
    ((0, 19, 12), "2025-05-15-000001", "local_user_trigger", NOOP),
    ((0, 19, 12), "2025-05-15-000002", "missing_post_indexes", "CREATE INDEX idx_post_community ON post (community_id)"),
    ((0, 19, 13), "2025-07-29-152742", "add_indexes_for_aggregates_activity",
     "CREATE INDEX idx_person_last_active ON person (last_active)"),
    ((0, 19, 14), "2025-07-29-152743", "post-aggregates-creator-community-indexes",
     "CREATE INDEX idx_post_creator_community ON post (creator_id, community_id)"),
]


def binary_migrations() -> list[tuple[str, str, str]]:
    return sorted((key, name, sql) for rel, key, name, sql in MIGRATIONS if rel <= V)


def replaceable_schema_sql() -> str:
    """The `r` schema rebuilt with the last pending migration (0.19.4+)."""
    sql = "DROP SCHEMA IF EXISTS r CASCADE; CREATE SCHEMA r;" + FUNCS_RANK.format(s="r.")
    if V >= V_R_ACTIVITY:
        sql += FUNC_ACTIVITY.format(s="r.")
    return sql


class MigrationError(Exception):
    pass


def run_migrations(dsn: str) -> int:
    """Apply this release's pending migrations like diesel's harness (no cross-process lock)."""
    try:
        conn = psycopg2.connect(dsn)
    except psycopg2.Error as exc:
        raise ConnectionError(str(exc).strip()) from exc
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS __diesel_schema_migrations (version varchar(50) PRIMARY KEY,"
                        " run_on timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP)")
            cur.execute("SELECT version FROM __diesel_schema_migrations")
            applied = {row[0] for row in cur.fetchall()}
        pending = [m for m in binary_migrations() if m[0] not in applied]
        if not pending:
            return 0
        conn.autocommit = False
        step = MIGRATION_SECONDS / len(pending)
        for number, (key, name, sql) in enumerate(pending, start=1):
            log("INFO", "lemmy_db_schema::utils", f"Running migration {key}_{name}")
            with conn:
                with conn.cursor() as cur:
                    cur.execute(sql)
                    if number == len(pending) and V >= V_ENV_FLAGS:
                        cur.execute(replaceable_schema_sql())
                    time.sleep(step)
                    cur.execute("INSERT INTO __diesel_schema_migrations (version) VALUES (%s)", (key,))
        return len(pending)
    except psycopg2.Error as exc:
        raise MigrationError(str(exc).strip()) from exc
    finally:
        conn.close()


# --------------------------------------------------------------------------- database pool

class Pool:
    """A small blocking pool: at most pool_size connections, opened lazily."""

    def __init__(self, dsn: str, size: int) -> None:
        self.size = size
        self._pool = psycopg2.pool.ThreadedConnectionPool(0, size, dsn)
        self._slots = threading.BoundedSemaphore(size)
        self._busy = 0
        self._lock = threading.Lock()

    def stats(self) -> tuple[int, int]:
        with self._lock:
            return self.size, self._busy

    def gauges(self) -> tuple[int, int, int]:
        """(open connections, maximum, idle ones), what deadpool's status() gives Lemmy's metrics."""
        with self._lock:
            opened = len(self._pool._pool) + len(self._pool._used)  # pylint: disable=protected-access
            return opened, self.size, max(0, opened - self._busy)

    def run(self, work: Callable[[Any], Any]) -> Any:
        if not self._slots.acquire(timeout=30):
            raise RuntimeError("Timed out waiting for a database connection")
        with self._lock:
            self._busy += 1
        conn = None
        broken = False
        try:
            conn = self._pool.getconn()
            with conn:
                with conn.cursor() as cur:
                    return work(cur)
        except (psycopg2.OperationalError, psycopg2.InterfaceError):
            broken = True
            raise
        finally:
            if conn is not None:
                self._pool.putconn(conn, close=broken or bool(conn.closed))
            with self._lock:
                self._busy -= 1
            self._slots.release()

    def fetchall(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        def work(cur: Any) -> list[tuple[Any, ...]]:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
        result: list[tuple[Any, ...]] = self.run(work)
        return result

    def fetchone(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> None:
        self.run(lambda cur: cur.execute(sql, params))


# --------------------------------------------------------------------------- rate limiter

RATE_ACTIONS = ("message", "post", "register", "image", "comment", "search", "import_user_settings")


class RateLimiter:
    """Per-process token buckets (capacity tokens refilled over *_per_second seconds)."""

    def __init__(self, limits: dict[str, tuple[int, int]]) -> None:
        self.limits = limits
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def _take(self, action: str, key: str, multiplier: int, now: float) -> bool:
        capacity, secs = self.limits[action]
        capacity *= multiplier
        tokens, last = self._buckets.get((action, key), (float(capacity), now))
        if secs > 0:
            tokens = min(float(capacity), tokens + (now - last) * capacity / secs)
        if tokens < 1.0:
            self._buckets[(action, key)] = (tokens, now)
            return False
        self._buckets[(action, key)] = (tokens - 1.0, now)
        return True

    def check(self, action: str, ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
        now = time.monotonic()
        with self._lock:
            if isinstance(ip, ipaddress.IPv4Address):
                return self._take(action, str(ip), 1, now)
            groups = [(48, 16), (56, 4), (64, 1)]
            allowed = True
            for prefix, multiplier in groups:
                net = ipaddress.IPv6Network(f"{ip}/{prefix}", strict=False)
                allowed = self._take(action, str(net), multiplier, now) and allowed
            return allowed


def _header_text(value: str) -> bool:
    """http's HeaderValue::to_str(): only visible ASCII and tabs; other values are skipped."""
    return all(ch == "\t" or " " <= ch <= "~" for ch in value)


def _bare_address(value: str) -> str:
    """actix's bare_address(): drop the port and the IPv6 brackets (an unbracketed IPv6 keeps only its first group)."""
    if value.startswith("["):
        return value.split("]:")[0].lstrip("[").rstrip("]")
    return value.split(":")[0]


def realip(headers: Any, peer: str) -> str:
    """actix's ConnectionInfo::realip_remote_addr(): first `for=` of Forwarded, else left-most X-Forwarded-For, else peer.

    The XFF value is taken as it is (no port stripping); a header present but empty still wins over the peer.
    """
    for forwarded in headers.get_all("Forwarded") or []:
        if not _header_text(forwarded):
            continue
        for part in forwarded.split(";"):
            for pair in part.split(","):
                name, sep, value = pair.strip().partition("=")
                if sep and name.strip().lower() == "for":
                    return _bare_address(value.strip().strip('"'))
    xff = headers.get("X-Forwarded-For")
    if xff is not None and _header_text(xff):
        return xff.split(",")[0].strip()
    return peer


def _rust_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """IpAddr::from_str: no zone index, no surrounding text."""
    if not text or "%" in text or text.strip() != text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _rust_socket_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """SocketAddr::from_str: `a.b.c.d:port` or `[v6]:port` / `[v6%scope]:port`, port 0..=65535."""
    match = re.fullmatch(r"\[([^\]%]+)(?:%[0-9]+)?\]:([0-9]+)", text) or re.fullmatch(r"([0-9.]+):([0-9]+)", text)
    if not match or int(match.group(2)) > 65535:
        return None
    ip = _rust_ip(match.group(1))
    wanted = ipaddress.IPv6Address if text.startswith("[") else ipaddress.IPv4Address
    return ip if isinstance(ip, wanted) else None


def parse_ip(addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """Lemmy's parse_ip(): `[v6]`, a bare address, or an address with a port."""
    if addr.endswith("]"):
        inner = addr[:-1]
        return _rust_ip(inner[1:]) if inner else None
    return _rust_ip(addr) or _rust_socket_ip(addr)


def client_ip(headers: Any, peer: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """The rate-limit key: unparsable addresses count as 127.0.0.1; IPv4-mapped IPv6 peers stay IPv6, as in Lemmy."""
    return parse_ip(realip(headers, peer)) or ipaddress.IPv4Address("127.0.0.1")


# --------------------------------------------------------------------------- the process

AP_TYPES = ("application/activity+json", "application/ld+json")


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime.datetime):
        return value.astimezone(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
    return str(value)


def rust_rem(a: int, b: int) -> int:
    return a - b * int(a / b)


class Server:
    def __init__(self, settings: dict[str, Any], args: dict[str, Any]) -> None:
        self.settings = settings
        self.args = args
        self.hostname = settings["hostname"]
        self.local_domain = self.hostname.split(":")[0]
        self.scheme = "https" if settings.get("tls_enabled", True) is not False else "http"
        self.base_url = f"{self.scheme}://{self.hostname}"
        self.ready = False
        self.migrating = False
        self.closing = False
        self.stop = threading.Event()
        self.in_flight = 0
        self.in_flight_lock = threading.Lock()
        self.pool: Pool | None = None
        self.limiter = RateLimiter({a: (10 ** 9, 1) for a in RATE_ACTIONS})
        self.httpd: ThreadingHTTPServer | None = None
        self.sender: Sender | None = None
        self.threads: list[threading.Thread] = []

    # ---- startup

    def start(self) -> int:
        args = self.args
        http = not args["disable_http_server"]
        scheduler = not args["disable_scheduled_tasks"]
        sending = not args["disable_activity_sending"]
        if http:
            try:
                self.httpd = make_http_server(self, self.settings["bind"], self.settings["port"])
            except OSError as exc:
                sys.stderr.write(f"Error: {exc.strerror or exc} (binding {self.settings['bind']}:{self.settings['port']})\n")
                return 1
            thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.2}, name="http", daemon=True)
            thread.start()
            log("INFO", "lemmy_server", f"Starting HTTP server at {self.settings['bind']}:{self.settings['port']} (503 until ready)")
        self.migrating = True
        try:
            count = run_migrations(self.settings["database_uri"])
        except ConnectionError as exc:
            panic_line("main", f"crates/db_schema/src/utils.rs:\nError connecting to database: {exc}")
            return 101
        except MigrationError as exc:
            sys.stderr.write(f"Error: Couldn't run DB Migrations: {exc}\n")
            log("ERROR", "lemmy_server", f"Couldn't run DB Migrations: {exc}")
            return 1
        finally:
            self.migrating = False
        log("INFO", "lemmy_db_schema::utils", f"{count} pending migrations applied" if count else "No migrations pending")
        self.pool = Pool(self.settings["database_uri"], self.settings["pool_size"])
        try:
            self.initialize_local_site()
            self.load_rate_limits()
        except psycopg2.Error as exc:
            sys.stderr.write(f"Error: {str(exc).strip()}\n")
            return 1
        if scheduler:
            self._spawn(Scheduler(self).run, "scheduler")
        if self.settings["prometheus"] is not None:
            self._spawn(self.serve_metrics, "prometheus")
        self.ready = True
        log("INFO", "lemmy_server", "Startup complete" + (", serving the API" if http else ""))
        if sending:
            self.sender = Sender(self)
            self._spawn(self.sender.run, "federate")
        if not (http or scheduler or sending) and V >= V_ENV_FLAGS:
            log("INFO", "lemmy_server", "Nothing to run (all --disable-* flags set): exiting after migrations")
            return 0
        while not self.stop.wait(0.5):
            pass
        return self.shutdown()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def initialize_local_site(self) -> None:
        assert self.pool is not None
        setup = self.settings["setup"]

        def work(cur: Any) -> None:
            cur.execute("LOCK TABLE local_site IN EXCLUSIVE MODE")
            cur.execute("SELECT id FROM local_site LIMIT 1")
            if cur.fetchone():
                return
            log("INFO", "lemmy_server::code_migrations", "No Local Site found, creating it.")
            cur.execute("INSERT INTO instance (domain) VALUES (%s) ON CONFLICT (domain) DO UPDATE SET domain = EXCLUDED.domain"
                        " RETURNING id", (self.local_domain,))
            instance_id = cur.fetchone()[0]
            if setup:
                cur.execute("INSERT INTO person (name, actor_id, instance_id) VALUES (%s, %s, %s) RETURNING id",
                            (setup["admin_username"], f"{self.base_url}/u/{setup['admin_username']}", instance_id))
                person_id = cur.fetchone()[0]
                digest = hashlib.sha256(str(setup["admin_password"]).encode()).hexdigest()
                cur.execute("INSERT INTO local_user (person_id, password_encrypted, email, admin) VALUES (%s, %s, %s, true)",
                            (person_id, digest, setup.get("admin_email")))
            name = setup["site_name"] if setup else "New Site"
            cur.execute("INSERT INTO site (name, actor_id, inbox_url, public_key, instance_id) VALUES (%s, %s, %s, %s, %s) RETURNING id",
                        (name, f"{self.base_url}/", f"{self.base_url}/site_inbox", "standin-public-key", instance_id))
            site_id = cur.fetchone()[0]
            cur.execute("INSERT INTO local_site (site_id, site_setup) VALUES (%s, %s) RETURNING id", (site_id, bool(setup)))
            local_site_id = cur.fetchone()[0]
            cur.execute("INSERT INTO local_site_rate_limit (local_site_id) VALUES (%s)", (local_site_id,))
            cur.execute("INSERT INTO site_aggregates (site_id) VALUES (%s)", (site_id,))

        self.pool.run(work)

    def load_rate_limits(self) -> None:
        assert self.pool is not None
        columns = [c for a in RATE_ACTIONS for c in (a, f"{a}_per_second")]
        row = self.pool.fetchone(f"SELECT {', '.join(columns)} FROM local_site_rate_limit LIMIT 1")
        if row is None:
            raise psycopg2.DataError("local_site_rate_limit has no row")
        self.limiter = RateLimiter({a: (int(row[2 * i]), int(row[2 * i + 1])) for i, a in enumerate(RATE_ACTIONS)})

    # ---- shutdown

    def request_stop(self, signum: int, _frame: Any) -> None:
        if not self.stop.is_set():
            log("INFO", "lemmy_server", f"Received {signal.Signals(signum).name}, shutting down gracefully")
        self.stop.set()
        if self.migrating:
            # Migrations are not interruptible gracefully; the open migration transaction rolls back.
            os._exit(1)  # pylint: disable=protected-access

    def shutdown(self) -> int:
        self.closing = True
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                with self.in_flight_lock:
                    if self.in_flight == 0:
                        break
                time.sleep(0.05)
        code = 0
        if self.sender is not None:
            code = self.sender.finish()
        log("INFO", "lemmy_server", "Shutdown complete")
        return code

    # ---- prometheus

    def serve_metrics(self) -> None:
        prom = self.settings["prometheus"]
        server = self

        class Metrics(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_args: Any) -> None:
                return

            def not_found(self) -> None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

            # actix answers 404 to any other path and to /metrics with another method (the route is GET only).
            do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = not_found

            def do_GET(self) -> None:  # noqa: N802 - http.server API
                if self.path.split("?")[0] != "/metrics":
                    self.not_found()
                    return
                opened, size, idle = server.pool.gauges() if server.pool else (0, 0, 0)
                # The prometheus crate's text encoding of Lemmy's three gauges (src/prometheus_metrics.rs), sorted by name.
                gauges = (("lemmy_db_pool_available_connections", "Number of available connections in the pool", idle),
                          ("lemmy_db_pool_connections", "Current number of connections in the pool", opened),
                          ("lemmy_db_pool_max_connections", "Maximum number of connections in the pool", size))
                body = "".join(f"# HELP {name} {text}\n# TYPE {name} gauge\n{name} {value}\n" for name, text, value in gauges).encode()
                self.send_response(200)
                # actix's body(String) content type; Prometheus parses it as the text format.
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        try:
            httpd = ThreadingHTTPServer((prom["bind"], int(prom["port"])), Metrics)
        except OSError as exc:
            # Lemmy panics in the metrics thread only: the process runs on without metrics (src/prometheus_metrics.rs).
            panic_line("<unnamed>", f"src/prometheus_metrics.rs:\nPrometheus server cannot bind to {prom['bind']}:{prom['port']}")
            return
        httpd.daemon_threads = True
        httpd.serve_forever(poll_interval=0.5)


# --------------------------------------------------------------------------- scheduler

class Scheduler:
    """Wall-clock aligned ticks (like clokwerk), each recorded in standin_scheduler_tick."""

    def __init__(self, server: Server) -> None:
        self.server = server

    def tick_sql(self) -> list[tuple[str, str]]:
        prefix = "r." if V >= V_ENV_FLAGS else ""
        activity = "r." if V >= V_R_ACTIVITY else ""
        return [("post hot_ranks", f"UPDATE post_aggregates SET hot_rank = {prefix}hot_rank(score::numeric, published)"
                                   " WHERE published > now() - interval '1 week'"),
                ("active counts", f"UPDATE site_aggregates SET users_active_day = {activity}site_aggregates_activity('1 day')")]

    def run(self) -> None:
        pool = self.server.pool
        assert pool is not None
        while True:
            now = time.time()
            tick = (int(now // SCHEDULER_PERIOD) + 1) * SCHEDULER_PERIOD
            if self.server.stop.wait(tick - now):
                return
            errors = []
            for what, sql in self.tick_sql():
                try:
                    pool.execute(sql)
                except psycopg2.Error as exc:
                    message = str(exc).strip().splitlines()[0]
                    errors.append(f"Failed to update {what}: {message}")
                    log("ERROR", "lemmy_server::scheduled_tasks", f"Failed to update {what}: {message}")
            try:
                pool.execute("INSERT INTO standin_scheduler_tick (tick_at, process, version, ok, error) VALUES (to_timestamp(%s), %s, %s, %s, %s)",
                             (tick, PROCESS_ID, VERSION, not errors, "; ".join(errors) or None))
            except psycopg2.Error as exc:
                log("ERROR", "lemmy_server::scheduled_tasks", f"Failed to record tick: {str(exc).strip()}")


# --------------------------------------------------------------------------- federation sender

class Sender:
    """SendManager: shard instances by id % count == index - 1 and keep federation_queue_state."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.index = server.args["federate_process_index"]
        self.count = server.args["federate_process_count"]
        self.panicked = False
        self.workers: dict[int, dict[str, Any]] = {}
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.last_summary: tuple[int, int] | None = None
        self.summary_at = 0.0

    def _panic(self, msg: str) -> None:
        self.panicked = True
        panic_line("tokio-runtime-worker", f"crates/federate/src/lib.rs:\n{msg}")

    def run(self) -> None:
        try:
            if V >= V_ENV_FLAGS:
                for cond, text in ((self.count > 0, "assertion failed: process_count > 0"),
                                   (self.index > 0, "assertion failed: process_index > 0"),
                                   (self.index <= self.count, "assertion failed: process_index <= process_count")):
                    if not cond:
                        self._panic(text)
                        return
            log("INFO", "lemmy_federate", f"Starting federation workers for process {self.index}/{self.count}")
            while not self.server.stop.is_set():
                try:
                    self.loop_once()
                except ZeroDivisionError:
                    self._panic("attempt to calculate the remainder with a divisor of zero")
                    return
                except psycopg2.Error as exc:
                    log("WARN", "lemmy_federate", f"error reading instances: {str(exc).strip()}")
                self.server.stop.wait(SENDER_PERIOD)
        finally:
            self.done.set()

    def loop_once(self) -> None:
        pool = self.server.pool
        assert pool is not None
        rows = pool.fetchall(
            "SELECT i.id, i.domain,"
            " CASE WHEN EXISTS (SELECT 1 FROM federation_allowlist) THEN EXISTS (SELECT 1 FROM federation_allowlist a WHERE a.instance_id = i.id)"
            " ELSE NOT EXISTS (SELECT 1 FROM federation_blocklist b WHERE b.instance_id = i.id) END,"
            " coalesce(i.updated, i.published) < now() - interval '3 days'"
            " FROM instance i ORDER BY i.id")
        owned = set()
        n_dead = 0
        for instance_id, domain, allowed, dead in rows:
            if domain == self.server.local_domain:
                continue
            if rust_rem(instance_id, self.count) != self.index - 1:
                continue
            if allowed and not dead:
                owned.add(instance_id)
            n_dead += int(bool(dead))
        summary = (len(owned), n_dead)
        if summary != self.last_summary or time.monotonic() - self.summary_at >= 60:
            log("INFO", "lemmy_federate", f"Federating to {len(owned)} instances ({n_dead} dead)")
            self.last_summary, self.summary_at = summary, time.monotonic()
        with self.lock:
            for instance_id in list(self.workers):
                if instance_id not in owned:
                    self.save(instance_id, self.workers.pop(instance_id))
            for instance_id in sorted(owned):
                if instance_id not in self.workers:
                    self.workers[instance_id] = self.start_worker(instance_id)
            if owned:
                pool.execute("INSERT INTO standin_federation_owner (instance_id, process, shard_index, shard_count, version)"
                             " SELECT unnest(%s::int[]), %s, %s, %s, %s ON CONFLICT (instance_id, process) DO UPDATE SET seen_at = now()",
                             (sorted(owned), PROCESS_ID, self.index, self.count, VERSION))
            latest = pool.fetchone("SELECT id, published FROM sent_activity ORDER BY id DESC LIMIT 1")
            now = time.monotonic()
            advanced = 0
            for state in self.workers.values():
                if latest is not None and (state["last_successful_id"] or 0) < latest[0]:
                    # Delivery is simulated: every activity counts as sent to every owned instance.
                    state["last_successful_id"], state["last_successful_published_time"] = latest
                    state["dirty"] = True
                    advanced += 1
            if advanced and latest is not None:
                log("INFO", "lemmy_federate", f"Sent activities up to id {latest[0]} to {advanced} instances")
            # Each worker writes its own state once SAVE_STATE_EVERY has passed since its last write.
            for instance_id, state in self.workers.items():
                if state["dirty"] and now - state["saved_at"] > SAVE_STATE_EVERY:
                    self.save(instance_id, state)

    def start_worker(self, instance_id: int) -> dict[str, Any]:
        pool = self.server.pool
        assert pool is not None
        row = pool.fetchone("SELECT last_successful_id, fail_count, last_retry, last_successful_published_time"
                            " FROM federation_queue_state WHERE instance_id = %s", (instance_id,))
        if row is not None:
            # A worker's last write time starts at the epoch, so its first progress is written at once.
            state = {"last_successful_id": row[0], "fail_count": row[1], "last_retry": row[2],
                     "last_successful_published_time": row[3], "dirty": False, "saved_at": float("-inf")}
            return state
        latest = pool.fetchone("SELECT coalesce(max(id), 0) FROM sent_activity")
        state = {"last_successful_id": latest[0] if latest else 0, "fail_count": 0, "last_retry": None,
                 "last_successful_published_time": None, "dirty": True, "saved_at": 0.0}
        self.save(instance_id, state)
        return state

    def save(self, instance_id: int, state: dict[str, Any]) -> None:
        pool = self.server.pool
        assert pool is not None
        pool.execute("INSERT INTO federation_queue_state (instance_id, last_successful_id, fail_count, last_retry,"
                     " last_successful_published_time) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (instance_id) DO UPDATE SET"
                     " last_successful_id = EXCLUDED.last_successful_id, fail_count = EXCLUDED.fail_count,"
                     " last_retry = EXCLUDED.last_retry, last_successful_published_time = EXCLUDED.last_successful_published_time",
                     (instance_id, state["last_successful_id"], state["fail_count"], state["last_retry"],
                      state["last_successful_published_time"]))
        state["dirty"] = False
        state["saved_at"] = time.monotonic()

    def finish(self) -> int:
        """Graceful stop: wait for the loop, then save every worker's state."""
        self.done.wait(WORKER_EXIT_TIMEOUT)
        if self.panicked:
            sys.stderr.write("Error: the federation task panicked (see above)\n")
            return 1
        with self.lock:
            for instance_id, state in self.workers.items():
                try:
                    self.save(instance_id, state)
                except psycopg2.Error as exc:
                    log("ERROR", "lemmy_federate", f"could not save state of instance {instance_id}: {str(exc).strip()}")
        log("INFO", "lemmy_federate", f"Saved federation state of {len(self.workers)} instances")
        return 0


# --------------------------------------------------------------------------- HTTP

API_BUCKETS = {("POST", "/api/v3/post"): "post", ("POST", "/api/v3/comment"): "comment",
               ("POST", "/api/v3/user/register"): "register", ("GET", "/api/v3/search"): "search",
               ("POST", "/api/v3/user/import_settings"): "import_user_settings"}


class Response:
    def __init__(self, status: int, body: bytes = b"", content_type: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def json_response(status: int, data: Any, headers: dict[str, str] | None = None, content_type: str = "application/json") -> Response:
    return Response(status, json.dumps(data).encode(), content_type, headers)


def rate_limited() -> Response:
    """LemmyErrorType::RateLimitError: like every LemmyError it answers 400 (not 429)."""
    return json_response(400, {"error": "rate_limit_error"})


def redirect(location: str, status: int = 307) -> Response:
    return Response(status, b"", None, {"Location": location})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "standin-lemmy"
    sys_version = ""
    timeout = 75
    app: Server

    def log_message(self, *_args: Any) -> None:
        return

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        app = self.app
        with app.in_flight_lock:
            app.in_flight += 1
        try:
            body = self._body()
            try:
                resp = self.route(self.command, body)
            except psycopg2.Error as exc:
                resp = json_response(400, {"error": "unknown", "message": str(exc).strip().splitlines()[0]})
            except Exception as exc:  # pylint: disable=broad-exception-caught  # answer every request
                traceback.print_exc()
                resp = json_response(500, {"error": "unknown", "message": str(exc)})
            self.send_response(resp.status)
            if resp.content_type:
                self.send_header("Content-Type", resp.content_type)
            for name, value in resp.headers.items():
                self.send_header(name, value)
            self.send_header("X-Standin-Process", PROCESS_ID)
            self.send_header("Content-Length", str(len(resp.body)))
            if app.closing:
                self.send_header("Connection", "close")
                self.close_connection = True
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(resp.body)
            self.wfile.flush()
        finally:
            with app.in_flight_lock:
                app.in_flight -= 1

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _handle

    # ---- routing

    def route(self, method: str, body: bytes) -> Response:
        app = self.app
        if not app.ready:
            return json_response(503, {"error": "Lemmy is currently starting"})
        parsed = urllib.parse.urlsplit(self.path)
        path, query = parsed.path, urllib.parse.parse_qs(parsed.query)
        ip = client_ip(self.headers, self.client_address[0])
        if method == "HEAD":
            method = "GET"
        if path.startswith("/api/v3/"):
            return self.api(method, path, query, ip)
        if method == "GET":
            if path in ("/nodeinfo/2.0.json", "/nodeinfo/2.1", "/nodeinfo/2.1.json", "/.well-known/nodeinfo", "/version"):
                return self.nodeinfo(path)
            if path.startswith("/feeds/"):
                return self.feed(path)
            if path == "/sitemap.xml":
                return self.sitemap()
        if path == "/pictrs" or path.startswith("/pictrs/"):
            return self.pictrs(method, path, parsed.query, body, ip)
        if method == "POST" and re.fullmatch(r"/(inbox|site_inbox|c/[^/]+/inbox|u/[^/]+/inbox)", path):
            return self.inbox(path, body)
        accept = self.headers.get("Accept", "")
        if method == "GET" and any(t in accept for t in AP_TYPES):
            return self.activitypub(path)
        return Response(404)

    def api(self, method: str, path: str, query: dict[str, list[str]], ip: Any) -> Response:
        app = self.app
        bucket = API_BUCKETS.get((method, path), "message")
        if not app.limiter.check(bucket, ip):
            return rate_limited()
        if method == "GET" and path == "/api/v3/site":
            return json_response(200, self.site_response())
        if method == "GET" and path == "/api/v3/post/list":
            return json_response(200, {"posts": []})
        if method == "GET" and path == "/api/v3/comment/list":
            return json_response(200, {"comments": []})
        if method == "GET" and path == "/api/v3/community/list":
            return json_response(200, {"communities": []})
        if method == "GET" and path == "/api/v3/search":
            return json_response(200, {"type_": "All", "comments": [], "posts": [], "communities": [], "users": []})
        if method == "GET" and path == "/api/v3/federated_instances":
            return json_response(200, self.federated_instances())
        if method == "GET" and path == "/api/v3/standin/whoami":
            with app.in_flight_lock:
                in_flight = app.in_flight
            return json_response(200, {"ip": str(ip), "process": PROCESS_ID, "version": VERSION, "in_flight": in_flight})
        if method == "GET" and path == "/api/v3/standin/sleep":
            seconds = min(60.0, float(query.get("seconds", ["1"])[0]))
            time.sleep(seconds)
            return json_response(200, {"slept": seconds, "process": PROCESS_ID})
        if method == "POST" and path == "/api/v3/user/register":
            return json_response(400, {"error": "registration_closed"})
        if method == "POST" and path in ("/api/v3/post", "/api/v3/comment", "/api/v3/user/import_settings"):
            return json_response(400, {"error": "not_logged_in"})
        return Response(404)

    def site_response(self) -> dict[str, Any]:
        pool = self.app.pool
        assert pool is not None

        def work(cur: Any) -> dict[str, Any]:
            out = {}
            for table, sql in (("site", "SELECT * FROM site ORDER BY id LIMIT 1"),
                               ("local_site", "SELECT * FROM local_site ORDER BY id LIMIT 1"),
                               ("local_site_rate_limit", "SELECT * FROM local_site_rate_limit LIMIT 1"),
                               ("counts", "SELECT * FROM site_aggregates LIMIT 1")):
                cur.execute(sql)
                row = cur.fetchone()
                names = [d[0] for d in cur.description]
                out[table] = {k: (_iso(v) if isinstance(v, datetime.datetime) else v) for k, v in zip(names, row or ())}
            return out

        view = pool.run(work)
        view["site"].pop("private_key", None)
        return {"site_view": view, "admins": [], "version": VERSION, "all_languages": [], "discussion_languages": [],
                "taglines": [], "custom_emojis": [], "blocked_urls": []}

    def federated_instances(self) -> dict[str, Any]:
        pool = self.app.pool
        assert pool is not None
        rows = pool.fetchall("SELECT i.id, i.domain, i.published, i.updated, q.last_successful_id, q.fail_count,"
                             " q.last_retry, q.last_successful_published_time FROM instance i"
                             " LEFT JOIN federation_queue_state q ON q.instance_id = i.id ORDER BY i.id")
        linked = []
        for row in rows:
            item: dict[str, Any] = {"id": row[0], "domain": row[1], "published": _iso(row[2]), "updated": _iso(row[3])}
            if row[4] is not None or row[5] is not None:
                item["federation_state"] = {"instance_id": row[0], "last_successful_id": row[4], "fail_count": row[5],
                                            "last_retry": _iso(row[6]), "last_successful_published_time": _iso(row[7])}
            linked.append(item)
        return {"federated_instances": {"linked": linked, "allowed": [], "blocked": []}}

    def nodeinfo(self, path: str) -> Response:
        app = self.app
        new = V >= V_ENV_FLAGS
        target = "/nodeinfo/2.1" if new else "/nodeinfo/2.0.json"
        if path == "/version" or (new and path in ("/nodeinfo/2.0.json", "/nodeinfo/2.1.json")):
            return redirect(target)
        if path == "/.well-known/nodeinfo":
            schema = "2.1" if new else "2.0"
            return json_response(200, {"links": [{"rel": f"http://nodeinfo.diaspora.software/ns/schema/{schema}",
                                                  "href": f"{app.base_url}{target}"}]},
                                 {"Cache-Control": "public, max-age=259200"})
        if path != target:
            return Response(404)
        assert app.pool is not None
        users = app.pool.fetchone("SELECT count(*) FROM local_user")
        software: dict[str, Any] = {"name": "lemmy", "version": VERSION}
        if new:
            software.update({"repository": "https://github.com/LemmyNet/lemmy", "homepage": "https://join-lemmy.org/"})
        data = {"version": "2.1" if new else "2.0", "software": software, "protocols": ["activitypub"],
                "usage": {"users": {"total": users[0] if users else 0, "activeHalfyear": 0, "activeMonth": 0},
                          "localPosts": 0, "localComments": 0},
                "openRegistrations": False, "services": {"inbound": [], "outbound": []}, "metadata": {}}
        return json_response(200, data, {"Cache-Control": "public, max-age=3600"})

    def feed(self, path: str) -> Response:
        app = self.app
        if not path.endswith(".xml"):
            return Response(404)
        title = path[len("/feeds/"):-len(".xml")]
        xml = (f'<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>{title} - {app.hostname}</title>'
               f"<link>{app.base_url}</link><description>{title}</description></channel></rss>\n")
        return Response(200, xml.encode(), "application/rss+xml")

    def sitemap(self) -> Response:
        app = self.app
        assert app.pool is not None
        rows = app.pool.fetchall("SELECT id FROM post WHERE local ORDER BY id DESC LIMIT 1000")
        urls = "".join(f"<url><loc>{app.base_url}/post/{r[0]}</loc></url>" for r in rows)
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">{urls}</urlset>\n'
        return Response(200, xml.encode(), "application/xml")

    def inbox(self, path: str, body: bytes) -> Response:
        app = self.app
        assert app.pool is not None
        try:
            activity = json.loads(body or b"null")
        except ValueError:
            return json_response(400, {"error": "invalid_activity"})
        if not isinstance(activity, dict) or not isinstance(activity.get("id"), str):
            return json_response(400, {"error": "invalid_activity"})
        app.pool.execute("INSERT INTO received_activity (ap_id, standin_inbox, standin_process) VALUES (%s, %s, %s)"
                         " ON CONFLICT (ap_id) DO NOTHING", (activity["id"], path, PROCESS_ID))
        return Response(200)

    def activitypub(self, path: str) -> Response:
        app = self.app
        base = app.base_url
        ctx = ["https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1"]
        obj: dict[str, Any] | None = None
        m = re.fullmatch(r"/(c|u)/([A-Za-z0-9_]+)", path)
        if path == "/":
            obj = {"type": "Application", "id": f"{base}/", "name": app.hostname, "inbox": f"{base}/site_inbox",
                   "outbox": f"{base}/site_outbox"}
        elif m and m.group(1) == "c":
            name = m.group(2)
            obj = {"type": "Group", "id": f"{base}/c/{name}", "preferredUsername": name, "inbox": f"{base}/c/{name}/inbox",
                   "outbox": f"{base}/c/{name}/outbox", "followers": f"{base}/c/{name}/followers",
                   "endpoints": {"sharedInbox": f"{base}/inbox"}}
        elif m:
            name = m.group(2)
            obj = {"type": "Person", "id": f"{base}/u/{name}", "preferredUsername": name, "inbox": f"{base}/u/{name}/inbox",
                   "outbox": f"{base}/u/{name}/outbox", "endpoints": {"sharedInbox": f"{base}/inbox"}}
        elif re.fullmatch(r"/post/\d+", path):
            obj = {"type": "Page", "id": f"{base}{path}", "attributedTo": f"{base}/u/admin", "name": f"Post {path[6:]}",
                   "to": ["https://www.w3.org/ns/activitystreams#Public"]}
        elif re.fullmatch(r"/comment/\d+", path):
            obj = {"type": "Note", "id": f"{base}{path}", "attributedTo": f"{base}/u/admin", "content": "",
                   "to": ["https://www.w3.org/ns/activitystreams#Public"]}
        if obj is None:
            return json_response(404, {"error": "not_found"})
        obj = {"@context": ctx, **obj}
        return json_response(200, obj, content_type="application/activity+json")

    def pictrs(self, method: str, path: str, query: str, body: bytes, ip: Any) -> Response:
        app = self.app
        url = app.settings["pictrs"]["url"]
        headers = {"X-Forwarded-For": self.client_address[0]}
        api_key = app.settings["pictrs"].get("api_key")
        if api_key:
            headers["x-api-token"] = str(api_key)
        upload = False
        if method == "POST" and path == "/pictrs/image":
            if not app.limiter.check("image", ip):
                return rate_limited()
            target = f"{url}image"
            headers["Content-Type"] = self.headers.get("Content-Type", "application/octet-stream")
            upload = True
        elif method == "GET" and path == "/pictrs/healthz":
            target = f"{url}healthz"
        elif method == "GET" and (m := re.fullmatch(r"/pictrs/image/delete/([^/]+)/([^/]+)", path)):
            target = f"{url}image/delete/{m.group(1)}/{m.group(2)}"
        elif method == "GET" and (m := re.fullmatch(r"/pictrs/image/([^/]+)", path)):
            params = urllib.parse.parse_qs(query)
            if "thumbnail" in params or "format" in params:
                fmt = params.get("format", ["jpg"])[0]
                extra = {"src": m.group(1)}
                if "thumbnail" in params:
                    extra["thumbnail"] = params["thumbnail"][0]
                target = f"{url}image/process.{fmt}?{urllib.parse.urlencode(extra)}"
            else:
                target = f"{url}image/original/{m.group(1)}"
        else:
            return Response(404)
        request = urllib.request.Request(target, data=body if method == "POST" else None, headers=headers, method=method)
        timeout = float(app.settings["pictrs"].get("upload_timeout") or 30)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310 - configured pict-rs URL
                status, data, ctype = reply.status, reply.read(), reply.headers.get("Content-Type")
        except urllib.error.HTTPError as exc:
            status, data, ctype = exc.code, exc.read(), exc.headers.get("Content-Type")
        except (urllib.error.URLError, OSError) as exc:
            return json_response(400, {"error": "pictrs_response_error", "message": str(exc)})
        if upload and status < 300:
            try:
                files = json.loads(data).get("files") or []
            except (ValueError, AttributeError):
                files = []
            table = "local_image" if V >= V_ENV_FLAGS else "image_upload"
            assert app.pool is not None
            for item in files:
                app.pool.execute(f"INSERT INTO {table} (pictrs_alias, pictrs_delete_token) VALUES (%s, %s)",
                                 (item.get("file"), item.get("delete_token", "")))
        return Response(status, data, ctype)


def make_http_server(app: Server, bind: str, port: int) -> ThreadingHTTPServer:
    handler = type("BoundHandler", (Handler,), {"app": app})
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server_class = type("StandinHTTPServer", (ThreadingHTTPServer,), {"address_family": family, "daemon_threads": True,
                                                                      "request_queue_size": 128})
    return server_class((bind, port), handler)


# --------------------------------------------------------------------------- main

def main(argv: list[str]) -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        panic_line("main", "crates/utils/src/settings/mod.rs:\nFailed to load settings file, see documentation "
                           f"(https://join-lemmy.org/docs/en/administration/configuration.html).: {exc}")
        return 101
    try:
        args = parse_args(argv)
    except UsageError as exc:
        sys.stderr.write(f"error: {exc}\n\nFor more information, try '--help'.\n")
        return 2
    print(f"Lemmy v{VERSION}", flush=True)
    server = Server(settings, args)
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    return server.start()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
