# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Placement planner for a horizontally scaled Lemmy fleet.

The planner turns the inventory (group membership, a few per-host variables and the global
settings) into the complete placement: every process on every host, the nginx upstreams, the
federation shard numbering, the database connection budget and the per-process rate limits.
It validates everything first and reports *every* problem at once, each naming the host or the
variable, what is wrong and how to fix it.

Pure Python, no Ansible imports: it is unit- and property-tested on its own.
"""

from __future__ import annotations

import ipaddress
import json
import math
import re
import typing as t

from ansible_collections.fediscale.lemmy.plugins.module_utils._releases import ORDER as _RELEASE_ORDER
from ansible_collections.fediscale.lemmy.plugins.module_utils._releases import rate_limit_column
from ansible_collections.fediscale.lemmy.plugins.module_utils._releases import strategy_for
from ansible_collections.fediscale.lemmy.plugins.module_utils._vip import plan_vip as _plan_vip
from ansible_collections.fediscale.lemmy.plugins.module_utils._vip import PLAN_LEVEL_KEYS as _VIP_KEYS
from ansible_collections.fediscale.lemmy.plugins.module_utils._vip import SETTING_DEFAULTS as _VIP_DEFAULTS

# Lemmy releases this collection knows: the release table's (_releases.ORDER), the one list of them.
# A caller may inject its own list.
KNOWN_VERSIONS = _RELEASE_ORDER

GROUP_NAMES = (
    "lemmy_proxy",
    "lemmy_ui",
    "lemmy_api",
    "lemmy_federation",
    "lemmy_scheduler",
    "pictrs",
    "lemmy_db",
)

# Order of kinds inside one host, in the process list and the table.
KIND_ORDER = ("api", "ui", "federation", "scheduler", "pictrs")

# Duties as CLI flags (every 0.19 release has them).
# All three --disable-* flags: the process runs the pending migrations and exits (0.19.4 to 0.19.20).
MIGRATE_ARGS = ("--disable-http-server", "--disable-scheduled-tasks", "--disable-activity-sending")
API_ARGS = ("--disable-scheduled-tasks", "--disable-activity-sending")
SCHEDULER_ARGS = ("--disable-http-server", "--disable-activity-sending")
FEDERATION_ARGS = ("--disable-http-server", "--disable-scheduled-tasks")
# The kinds that run lemmy_server (and so can serve Prometheus metrics).
SERVER_KINDS = ("api", "federation", "scheduler")
# The kinds nginx balances and a rolling upgrade drains.
DRAINED_KINDS = ("api", "ui")

# Lemmy's own rate-limit defaults (table local_site_rate_limit). The count keys are the bucket
# capacity; the *_per_second keys are, despite their name, the refill interval in seconds.
RATE_LIMIT_DEFAULTS = {
    "message": 180,
    "message_per_second": 60,
    "post": 6,
    "post_per_second": 600,
    "register": 10,
    "register_per_second": 3600,
    "image": 6,
    "image_per_second": 3600,
    "comment": 6,
    "comment_per_second": 600,
    "search": 60,
    "search_per_second": 600,
    "import_user_settings": 1,
    "import_user_settings_per_second": 86400,
}
RATE_LIMIT_COUNT_KEYS = tuple(k for k in RATE_LIMIT_DEFAULTS if not k.endswith("_per_second"))
# Before 0.19.11 the register bucket defaulted to 3.
REGISTER_DEFAULT_BEFORE_0_19_11 = 3

STATIC_STRATEGIES = ("object_storage", "ip_hash", "sticky", "single")
API_BALANCING = ("round_robin", "ip_hash")
PICTRS_REPO_TYPES = ("sled", "postgres")

# Defaults of the global settings. Pool 10 x 7 lemmy_server processes (the medium example) = 70
# connections, well inside 200 - 10 reserved.
SETTING_DEFAULTS = {
    "lemmy_domain": None,
    "lemmy_version": None,
    "lemmy_ui_version": None,
    "database_password_set": False,
    "pictrs_repo_type": "sled",
    "lemmy_ui_static_strategy": "ip_hash",
    "lemmy_ui_static_bucket": None,
    "lemmy_ui_static_s3_endpoint": None,
    "nginx_api_balancing": "round_robin",
    "nginx_trusted_proxies": [],
    "lemmy_database_host": None,
    "lemmy_database_pool_size": 10,
    "lemmy_database_max_connections": 200,
    "lemmy_database_reserved_connections": 10,
    # pict-rs 0.5 sizes its own Postgres pool from the CPUs it sees: the role caps them, the plan budgets the pool.
    "pictrs_cpus": 4,
    "nginx_static_origin": None,
    # host:port that lemmy-ui's server-side rendering calls instead of the plan's choice (plan_ssr).
    "lemmy_ui_internal_host": None,
    "lemmy_rate_limits": {},
    "lemmy_federation_enabled": True,
    # Each lemmy_server process serves Prometheus metrics on its own port (lemmy_prometheus_base_port + n).
    "lemmy_prometheus": False,
    # The images each kind of process runs (plan "images"): a full reference wins over repository + the plan's version.
    "lemmy_server_image": None,
    "lemmy_server_image_repository": "dessalines/lemmy",
    "lemmy_ui_image": None,
    "lemmy_ui_image_repository": "dessalines/lemmy-ui",
    "pictrs_image": "asonix/pictrs:0.5.16",
    # Derived in a no_log task, never the secrets themselves: {name: {kind, length, differs_on}}.
    "secret_facts": {},
}

# The proxies' virtual address (lemmy_proxy_vip, ...): _vip.py.
SETTING_DEFAULTS.update(_VIP_DEFAULTS)

# Settings that are no longer read, with the one that replaces each.
DROPPED_SETTINGS = {
    "pictrs_database_pool_size": (
        "pict-rs 0.5 has no pool-size setting, it opens 8 x CPUs + min(CPUs, 4) connections per process; "
        "remove it and set pictrs_cpus instead (default 4, so 36 connections per pict-rs process)"
    ),
}

# The variables the plan reads once for the whole fleet (on the controller). Every host must see the
# same value, or the roles that read it on a host would disagree with the plan. playbooks/tasks/plan.yml
# passes each host's effective value of these (a unit test keeps both lists equal).
PLAN_LEVEL_KEYS = (
    "lemmy_domain",
    "lemmy_version",
    "lemmy_ui_version",
    "pictrs_repo_type",
    "pictrs_cpus",
    "pictrs_database_pool_size",
    "lemmy_ui_static_strategy",
    "lemmy_ui_static_bucket",
    "lemmy_ui_static_s3_endpoint",
    "nginx_static_origin",
    "lemmy_ui_internal_host",
    "nginx_api_balancing",
    "nginx_trusted_proxies",
    "lemmy_database_host",
    "lemmy_database_pool_size",
    "lemmy_database_max_connections",
    "lemmy_database_reserved_connections",
    "lemmy_rate_limits",
    "lemmy_federation_enabled",
    "lemmy_prometheus",
    "lemmy_server_image",
    "lemmy_server_image_repository",
    "lemmy_ui_image",
    "lemmy_ui_image_repository",
    "pictrs_image",
)

PLAN_LEVEL_KEYS += _VIP_KEYS

# Secrets: the plan sees only their kind, length and the hosts whose value differs from the controller's.
SECRET_KEYS = (
    "lemmy_database_password",
    "pictrs_api_key",
    "lemmy_admin_password",
    "lemmy_ui_static_s3_access_key",
    "lemmy_ui_static_s3_secret_key",
)
SECRET_KINDS = ("missing", "string", "integer", "float", "boolean", "list", "mapping", "other")
# Lemmy's own limits for a local user's password (crates/utils/src/utils/validation.rs).
ADMIN_PASSWORD_LENGTH = (10, 60)
# The postgresql role refuses a shorter database password; it reads this bound from the plan
# (database.password_min_length), so the rule has one source.
DATABASE_PASSWORD_MIN_LENGTH = 12

# Per-host count variables and the group whose hosts read them.
COUNT_GROUPS = (
    ("lemmy_api_processes", "lemmy_api"),
    ("lemmy_ui_processes", "lemmy_ui"),
    ("lemmy_federation_processes", "lemmy_federation"),
    ("lemmy_federation_indices", "lemmy_federation"),
    ("lemmy_scheduler_processes", "lemmy_scheduler"),
)
# More processes of one kind on one host than this is a typo, not a plan (and would exhaust the controller).
MAX_PROCESSES_PER_HOST = 256
MAX_PICTRS_CPUS = 1024
# PostgreSQL's MAX_BACKENDS: max_connections cannot be set higher.
POSTGRESQL_MAX_CONNECTIONS = 262143

HOST_VAR_DEFAULTS = {
    "lemmy_api_base_port": 8536,
    "lemmy_ui_base_port": 1234,
    "pictrs_port": 8080,
    # Lemmy's own default metrics port (src/prometheus_metrics.rs); the host's n-th lemmy_server process gets base + n - 1.
    "lemmy_prometheus_base_port": 10002,
    # roles/nginx/defaults/main.yml (a unit test keeps them equal)
    "nginx_listen_port": 80,
    "nginx_tls_port": 443,
    "nginx_tls_enabled": False,
    "nginx_internal_enabled": True,
    "nginx_internal_port": 8480,
}
HOST_VAR_KEYS = (
    "inventory_hostname",
    "ansible_host",
    "lemmy_host_address",
    "lemmy_api_processes",
    "lemmy_ui_processes",
    "lemmy_federation_processes",
    "lemmy_scheduler_processes",
    "lemmy_federation_indices",
    "lemmy_api_base_port",
    "lemmy_ui_base_port",
    "pictrs_port",
    "nginx_listen_port",
    "nginx_tls_enabled",
    "nginx_tls_port",
    "lemmy_prometheus_base_port",
    "lemmy_prometheus_bind",
    "nginx_internal_enabled",
    "nginx_internal_port",
)

_CLEAN_INT = re.compile(r"^\s*[0-9]+\s*$")
# [registry[:port]/]name[/name...][:tag][@sha256:digest], lower-case names as Docker requires.
_IMAGE_REFERENCE = re.compile(
    r"^[a-z0-9][a-z0-9._-]*(?::[0-9]+)?(?:/[a-z0-9][a-z0-9._-]*)*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
_DOMAIN = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$")
# S3 bucket names: 3-63 characters of lowercase letters, digits, dots and hyphens, alphanumeric at both ends.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
# What lemmy-ui accepts as LEMMY_UI_LEMMY_INTERNAL_HOST: host:port, an IPv6 literal bracketed.
_SSR_ADDRESS = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):[0-9]{1,5}$")

# What roles/nginx accepts for nginx_static_origin: a scheme and an authority, no path.
_ORIGIN = re.compile(r"^https?://[^/\s?#]+$")
_URL = re.compile(r"^https?://[^/\s?#]+(/\S*)?$")
_BOOL_STRINGS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


class PlanError(Exception):
    """The inventory cannot be planned. ``problems`` lists every problem, one sentence each."""

    def __init__(self, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = list(problems)
        self.warnings = list(warnings or [])
        super().__init__(format_problems(self.problems))


def format_problems(problems: list[str]) -> str:
    """One header line, then one problem per line."""
    count = len(problems)
    header = "The inventory cannot be planned: %d problem%s found. Fix all of them, then run again:" % (count, "" if count == 1 else "s")
    return "\n".join([header] + ["- " + p for p in problems])


def show(value: t.Any) -> str:
    """Render a value as the admin wrote it: strings quoted, numbers and lists as YAML-ish JSON."""
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return repr(value)


def natural_key(name: str) -> tuple:
    """Sort key that orders web2 before web10; the name itself breaks ties (web01 vs web1)."""
    parts: list[tuple[int, int, str]] = []
    for chunk in re.split(r"([0-9]+)", name):
        if not chunk:
            continue
        if chunk.isdigit():
            parts.append((0, int(chunk), ""))
        else:
            parts.append((1, 0, chunk))
    return (tuple(parts), name)


def parse_positive_int(value: t.Any) -> int | None:
    """Return a positive int, or None if the value is not one.

    Accepts ints and clean integer strings such as "2" (INI inventories give strings);
    refuses booleans, floats, "2.0", "two", 0 and negatives.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    if isinstance(value, str) and _CLEAN_INT.match(value):
        number = int(value)
        return number if number > 0 else None
    return None


def parse_bool(value: t.Any) -> bool | None:
    """Return a bool, or None if the value is not a clear boolean."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _BOOL_STRINGS:
        return _BOOL_STRINGS[value.strip().lower()]
    return None


def version_key(version: str) -> tuple:
    """Sort key for dotted release numbers; non-numeric parts sort first."""
    key: list[tuple[int, int, str]] = []
    for part in re.split(r"[.\-]", version):
        key.append((1, int(part), "") if part.isdigit() else (0, 0, part))
    return tuple(key)


def shard_of(instance_id: int, count: int) -> int:
    """The 1-based shard index of the sender that owns an instance: Lemmy's ``id % N == i - 1``."""
    return instance_id % count + 1


def hostport(address: str, port: int) -> str:
    """address:port, with IPv6 literals bracketed as nginx wants them."""
    if ":" in address and not address.startswith("["):
        return "[%s]:%d" % (address, port)
    return "%s:%d" % (address, port)


def bare(address: str) -> str:
    """An address without the brackets of an IPv6 literal, as getent and set_real_ip_from want it."""
    return address[1:-1] if address.startswith("[") and address.endswith("]") else address


def _suggest_count(value: t.Any) -> int:
    """A positive integer to suggest in a message, derived from the bad value when possible."""
    words = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8}
    if isinstance(value, str) and value.strip().lower() in words:
        return words[value.strip().lower()]
    number: float | None = None
    if isinstance(value, float) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return 2
    if number is not None and math.isfinite(number) and 1 <= number <= MAX_PROCESSES_PER_HOST and number == int(number):
        return int(number)
    return 2 if (isinstance(value, bool) or value != 0) else 1


def split_address(value: str) -> tuple[str, str | None]:
    """Split an address as written into (host, port text or None).

    Host names, IPv4 and bare IPv6 literals have no port; ``[v6]`` has none either; ``host:1``
    and ``[v6]:1`` do. Raises ValueError for text that is neither (such as ``a:b:c``).
    """
    text = value.strip()
    if text.startswith("["):
        match = re.match(r"^\[([^\]]+)\](?::(.*))?$", text)
        if not match:
            raise ValueError("unbalanced brackets")
        ipaddress.IPv6Address(match.group(1).split("%")[0])
        return match.group(1), match.group(2)
    if text.count(":") >= 2:
        ipaddress.IPv6Address(text.split("%")[0])
        return text, None
    if ":" in text:
        host, port = text.split(":", 1)
        return host, port
    return text, None


def bucket_name_problem(name: str) -> str | None:
    """What S3's bucket naming rules say against ``name``, or None when it is a valid name."""
    if not 3 <= len(name) <= 63:
        return "it has %d characters and S3 allows 3 to 63" % len(name)
    if not _BUCKET.match(name):
        return "S3 allows only lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    if ".." in name:
        return "S3 forbids two dots in a row"
    if re.match(r"^\d+\.\d+\.\d+\.\d+$", name):
        return "S3 forbids names formatted as an IP address"
    for prefix in ("xn--", "sthree-", "amzn-s3-demo-"):
        if name.startswith(prefix):
            return 'S3 reserves the prefix "%s"' % prefix
    for suffix in ("-s3alias", "--ol-s3", "--x-s3", "--table-s3", ".mrap"):
        if name.endswith(suffix):
            return 'S3 reserves the suffix "%s"' % suffix
    return None


def pictrs_pool_size(cpus: int) -> int:
    """Connections one pict-rs 0.5 process opens to Postgres: 8 x CPUs + min(CPUs, 4)."""
    return 8 * cpus + min(cpus, 4)


def _hosts_text(hosts: t.Sequence[str], limit: int = 6) -> str:
    shown = list(hosts[:limit])
    more = len(hosts) - len(shown)
    return ", ".join(shown) + (" and %d more" % more if more > 0 else "")


class _Planner:
    """One planning run. Collects problems instead of stopping at the first."""

    def __init__(
        self,
        groups: t.Mapping[str, t.Any],
        host_vars: t.Mapping[str, t.Any],
        settings: t.Mapping[str, t.Any],
        known_versions: t.Sequence[str] | None,
        excluded_hosts: t.Any = None,
        host_settings: t.Any = None,
    ) -> None:
        self.raw_groups = groups if isinstance(groups, t.Mapping) else {}
        self.raw_host_vars = host_vars if isinstance(host_vars, t.Mapping) else {}
        self.raw_settings = settings if isinstance(settings, t.Mapping) else {}
        self.known_versions = tuple(str(v) for v in (known_versions if known_versions else KNOWN_VERSIONS))
        self.problems: list[str] = []
        self.warnings: list[str] = []
        if not isinstance(groups, t.Mapping):
            self.problems.append("groups is %s; pass a mapping of group name to a list of host names" % show(groups))
        if not isinstance(host_vars, t.Mapping):
            self.problems.append("host_vars is %s; pass a mapping of host name to that host's variables" % show(host_vars))
        if not isinstance(settings, t.Mapping):
            self.problems.append("settings is %s; pass a mapping of the global variables" % show(settings))
        self.raw_host_settings = host_settings if isinstance(host_settings, t.Mapping) else {}
        if host_settings is not None and not isinstance(host_settings, t.Mapping):
            self.problems.append("host_settings is %s; pass a mapping of host name to that host's values of the plan-level variables" % show(host_settings))
        self.excluded = self.read_excluded(excluded_hosts)
        # Group members before the exclusion, for the messages and the placement checks.
        self.inventory_groups: dict[str, list[str]] = {}

    # ------------------------------------------------------------------ helpers
    def problem(self, text: str) -> None:
        self.problems.append(text)

    def warn(self, text: str) -> None:
        self.warnings.append(text)

    def setting(self, key: str) -> t.Any:
        value = self.raw_settings.get(key)
        if value is None or (isinstance(value, str) and value.strip() == "" and key not in ("lemmy_domain", "lemmy_version")):
            return SETTING_DEFAULTS.get(key)
        return value

    def host_var(self, host: str, key: str) -> t.Any:
        values = self.raw_host_vars.get(host)
        if not isinstance(values, t.Mapping):
            return None
        return values.get(key)

    def newest_version(self) -> str:
        return sorted(self.known_versions, key=version_key)[-1]

    def known_range(self) -> str:
        ordered = sorted(self.known_versions, key=version_key)
        if len(ordered) > 3:
            return "%s ... %s" % (ordered[0], ordered[-1])
        return ", ".join(ordered)

    # ------------------------------------------------------------------ groups
    def read_excluded(self, value: t.Any) -> list[str]:
        if value is None:
            return []
        if isinstance(value, str) or not isinstance(value, t.Sequence):
            self.problem("lemmy_plan_excluded_hosts is %s; set it to a list of inventory host names, such as [\"web2\"], or leave it unset" % show(value))
            return []
        names: set[str] = set()
        for position, entry in enumerate(value):
            if not isinstance(entry, str) or not entry.strip():
                self.problem("lemmy_plan_excluded_hosts[%d] is %s; list inventory host names only" % (position, show(entry)))
                continue
            names.add(entry.strip())
        return sorted(names)

    def excluded_from(self, group: str) -> str:
        """A note for messages about an empty or shrunk group: which hosts the exclusion took out of it."""
        gone = [h for h in self.inventory_groups.get(group, []) if h in self.excluded]
        if not gone:
            return ""
        return " (lemmy_plan_excluded_hosts removed %s from it)" % ", ".join(gone)

    def read_groups(self) -> dict[str, list[str]]:
        result: dict[str, list[str]] = {}
        for name in GROUP_NAMES:
            members = self.raw_groups.get(name)
            if members is None:
                result[name] = []
                continue
            if isinstance(members, str) or not isinstance(members, t.Sequence):
                self.problem("group %s is %s; it must be a list of inventory host names" % (name, show(members)))
                result[name] = []
                continue
            hosts: set[str] = set()
            for member in members:
                if not isinstance(member, str) or not member.strip():
                    self.problem("group %s contains %s; it must list inventory host names" % (name, show(member)))
                    continue
                hosts.add(member)
            self.inventory_groups[name] = sorted(hosts, key=natural_key)
            result[name] = [h for h in self.inventory_groups[name] if h not in self.excluded]
        if self.excluded:
            placed = {h for members in self.inventory_groups.values() for h in members}
            unknown = [h for h in self.excluded if h not in placed]
            if unknown:
                self.warn("lemmy_plan_excluded_hosts names %s, which no Lemmy group holds; nothing to exclude there" % ", ".join(unknown))
            gone = [h for h in self.excluded if h in placed]
            if gone:
                self.warn(
                    "planning without %s (lemmy_plan_excluded_hosts): their processes are not planned and nginx does not list them; "
                    "run the plan again without the exclusion once they are reachable" % ", ".join(gone)
                )
        return result

    # ------------------------------------------------------------------ settings
    def read_version(self, key: str, value: t.Any) -> str | None:
        newest = self.newest_version()
        if value is None or (isinstance(value, str) and not value.strip()):
            self.problem('%s is not set; set it to a release such as "%s" in group_vars/all' % (key, newest))
            return None
        text = str(value).strip()
        if not isinstance(value, str):
            self.problem('%s is %s, not a string; quote it, for example %s: "%s"' % (key, show(value), key, newest))
            return None
        if text.lower() in ("latest", "dev", "nightly", "main"):
            self.problem(
                '%s is %s; floating tags are refused because a rolling upgrade needs an exact release: set it to one such as "%s"' % (key, show(value), newest)
            )
            return None
        if text.startswith("v") and text[1:] in self.known_versions:
            self.problem('%s is %s; write the release without the "v", as "%s"' % (key, show(value), text[1:]))
            return None
        if text not in self.known_versions:
            self.problem(
                '%s is %s, which is not a release this collection knows (%s); set it to one of them such as "%s"'
                % (key, show(value), self.known_range(), newest)
            )
            return None
        return text

    def read_image_reference(self, key: str, tagged: bool, example: str) -> str | None:
        """An image reference (``tagged``) or a repository without tag, as docker takes it; None when refused.

        ``example`` is what the message suggests for this key: a full reference, or a repository.
        """
        value = self.setting(key)
        if value is None:
            return None
        text = value.strip() if isinstance(value, str) else None
        last = (text or "").rsplit("/", 1)[-1]
        if text is None or not _IMAGE_REFERENCE.match(text):
            self.problem("%s is %s; set it to an image reference such as %s" % (key, show(value), example))
            return None
        if tagged and ":" not in last and "@" not in last:
            self.problem(
                "%s is %s, which names no tag, so Docker would run :latest and an upgrade could not tell versions apart; "
                "add the tag, such as %s:%s" % (key, show(value), text, example.rsplit(":", 1)[-1])
            )
            return None
        if not tagged and (":" in last or "@" in last):
            self.problem(
                "%s is %s, which names a tag or digest; give the repository alone (the plan appends lemmy_version), "
                "or set the full reference in the matching *_image variable" % (key, show(value))
            )
            return None
        return text

    def read_images(self, version: str | None, ui_version: str | None) -> dict[str, str | None]:
        """The image of each kind: the full reference when set, else repository:version (every host runs the same)."""
        images: dict[str, str | None] = {}
        newest = self.newest_version()
        for kind, image_key, repository_key, tag in (
            ("server", "lemmy_server_image", "lemmy_server_image_repository", version),
            ("ui", "lemmy_ui_image", "lemmy_ui_image_repository", ui_version),
        ):
            default_repository = str(SETTING_DEFAULTS[repository_key])
            image = self.read_image_reference(image_key, tagged=True, example="%s:%s" % (default_repository, tag or newest))
            repository = self.read_image_reference(repository_key, tagged=False, example=default_repository)
            if image is None and self.setting(image_key) is None and repository and tag:
                image = "%s:%s" % (repository, tag)
            images[kind] = image
        images["pictrs"] = self.read_image_reference("pictrs_image", tagged=True, example=str(SETTING_DEFAULTS["pictrs_image"]))
        return images

    def read_choice(self, key: str, choices: t.Sequence[str]) -> str:
        value = self.setting(key)
        if isinstance(value, str) and value.strip() in choices:
            return value.strip()
        self.problem("%s is %s; set it to one of %s" % (key, show(value), ", ".join(choices)))
        return str(SETTING_DEFAULTS[key])

    def read_setting_int(self, key: str, minimum: int = 1) -> int | None:
        value = self.setting(key)
        number: int | None
        if minimum == 0 and (value == 0 or value == "0") and not isinstance(value, bool):
            number = 0
        else:
            number = parse_positive_int(value)
        if number is None or number < minimum:
            example = SETTING_DEFAULTS[key]
            kind = "a positive integer" if minimum >= 1 else "a whole number of 0 or more"
            self.problem("%s is %s; set it to %s such as %s" % (key, show(value), kind, example))
            return None
        return number

    def read_settings(self) -> dict[str, t.Any]:
        out: dict[str, t.Any] = {}
        unknown = sorted((str(k) for k in self.raw_settings if k not in SETTING_DEFAULTS and k not in DROPPED_SETTINGS and k != "database_password_set"))
        if unknown:
            self.warn("settings: ignored unknown key(s) %s; known keys are %s" % (", ".join(unknown), ", ".join(sorted(SETTING_DEFAULTS))))

        domain = self.raw_settings.get("lemmy_domain")
        if domain is None or (isinstance(domain, str) and not domain.strip()):
            self.problem("lemmy_domain is not set; set it to the instance's public host name, such as lemmy.example.org, in group_vars/all")
            out["domain"] = None
        elif not isinstance(domain, str) or not _DOMAIN.match(domain.strip()):
            self.problem("lemmy_domain is %s; set it to the bare public host name, such as lemmy.example.org (no scheme, port or path)" % show(domain))
            out["domain"] = None
        else:
            out["domain"] = domain.strip().lower()

        out["version"] = self.read_version("lemmy_version", self.raw_settings.get("lemmy_version"))
        ui_raw = self.raw_settings.get("lemmy_ui_version")
        if ui_raw is None or (isinstance(ui_raw, str) and not ui_raw.strip()):
            out["ui_version"] = out["version"]
        else:
            out["ui_version"] = self.read_version("lemmy_ui_version", ui_raw)
            if out["ui_version"] and out["version"] and out["ui_version"] != out["version"]:
                self.warn(
                    "lemmy_ui_version %s differs from lemmy_version %s; lemmy-ui releases are made to match the backend of the same number"
                    % (out["ui_version"], out["version"])
                )

        for key, replacement in DROPPED_SETTINGS.items():
            if self.raw_settings.get(key) is not None:
                self.problem("%s is set (%s) but no longer read: %s" % (key, show(self.raw_settings.get(key)), replacement))

        out["pictrs_repo_type"] = self.read_choice("pictrs_repo_type", PICTRS_REPO_TYPES)
        out["static_strategy"] = self.read_choice("lemmy_ui_static_strategy", STATIC_STRATEGIES)
        out["api_balancing"] = self.read_choice("nginx_api_balancing", API_BALANCING)
        if out["static_strategy"] == "object_storage":
            self.read_object_storage()

        out["trusted_proxies"] = self.read_trusted_proxies()

        enabled = parse_bool(self.setting("lemmy_federation_enabled"))
        if enabled is None:
            self.problem("lemmy_federation_enabled is %s; set it to true or false" % show(self.setting("lemmy_federation_enabled")))
            enabled = True
        out["federation_enabled"] = enabled

        prometheus = parse_bool(self.setting("lemmy_prometheus"))
        if prometheus is None:
            self.problem("lemmy_prometheus is %s; set it to true or false" % show(self.setting("lemmy_prometheus")))
            prometheus = False
        out["prometheus"] = prometheus
        out["images"] = self.read_images(out["version"], out["ui_version"])

        db_host = self.setting("lemmy_database_host")
        if db_host is not None and (not isinstance(db_host, str) or any(c.isspace() for c in db_host.strip()) or "/" in db_host):
            self.problem("lemmy_database_host is %s; set it to the external PostgreSQL server's host name or address" % show(db_host))
            db_host = None
        if isinstance(db_host, str):
            fix = self.address_port_problem(db_host, lambda h, p: "set lemmy_database_host: %s and lemmy_database_port: %s" % (h, p))
            if fix:
                self.problem("lemmy_database_host is %s, %s" % (show(db_host), fix))
                db_host = None
        out["database_host"] = db_host.strip() if isinstance(db_host, str) else None
        out["pool_size"] = self.read_setting_int("lemmy_database_pool_size")
        if out["pool_size"] is not None and out["pool_size"] < 2:
            self.problem("lemmy_database_pool_size is %d; Lemmy always opens at least 2 connections per process, set it to 2 or more" % out["pool_size"])
            out["pool_size"] = None
        out["max_connections"] = self.read_setting_int("lemmy_database_max_connections")
        if out["max_connections"] is not None and out["max_connections"] > POSTGRESQL_MAX_CONNECTIONS:
            self.problem(
                "lemmy_database_max_connections is %d, above PostgreSQL's limit of %d; set it to what the server can hold, such as 200"
                % (out["max_connections"], POSTGRESQL_MAX_CONNECTIONS)
            )
            out["max_connections"] = None
        out["reserved"] = self.read_setting_int("lemmy_database_reserved_connections", minimum=0)
        out["pictrs_cpus"] = self.read_setting_int("pictrs_cpus")
        if out["pictrs_cpus"] is not None and out["pictrs_cpus"] > MAX_PICTRS_CPUS:
            self.problem("pictrs_cpus is %d; set it to the CPUs pict-rs may use, at most %d, such as 4" % (out["pictrs_cpus"], MAX_PICTRS_CPUS))
            out["pictrs_cpus"] = None
        out["pictrs_pool_size"] = pictrs_pool_size(out["pictrs_cpus"]) if out["pictrs_cpus"] is not None else None
        out["rate_limits_wanted"] = self.read_rate_limits(out["version"])
        return out

    def read_object_storage(self) -> None:
        """lemmy_ui_static_strategy: object_storage needs a valid bucket, an http(s) endpoint and an origin nginx can proxy to."""
        other = "or choose another lemmy_ui_static_strategy (ip_hash, sticky, single)"
        bucket = self.setting("lemmy_ui_static_bucket")
        if not isinstance(bucket, str) or not bucket.strip():
            self.problem(
                "lemmy_ui_static_bucket is %s but lemmy_ui_static_strategy is object_storage; set it to the bucket name, such as lemmy-static, %s"
                % ("not set" if bucket is None else show(bucket), other)
            )
        else:
            wrong = bucket_name_problem(bucket)
            if wrong:
                self.problem("lemmy_ui_static_bucket is %s, which S3 refuses (%s); choose a name such as lemmy-static" % (show(bucket), wrong))
        endpoint = self.setting("lemmy_ui_static_s3_endpoint")
        if not isinstance(endpoint, str) or not endpoint.strip():
            self.problem(
                "lemmy_ui_static_s3_endpoint is %s but lemmy_ui_static_strategy is object_storage; set it to the S3 endpoint URL, "
                "such as https://s3.example.org, %s" % ("not set" if endpoint is None else show(endpoint), other)
            )
        elif not _URL.match(endpoint.strip()):
            self.problem(
                "lemmy_ui_static_s3_endpoint is %s, which is not an http:// or https:// URL; write it with its scheme, such as https://%s"
                % (show(endpoint), endpoint.strip().split("://")[-1].strip("/") or "s3.example.org")
            )
        origin = self.setting("nginx_static_origin")
        if not isinstance(origin, str) or not origin.strip():
            self.problem(
                "nginx_static_origin is %s but lemmy_ui_static_strategy is object_storage; set it to the S3 base URL as the proxy hosts "
                "reach it, such as https://s3.example.org (nginx proxies /static/ to <origin>/<bucket>/static/), %s"
                % ("not set" if origin is None else show(origin), other)
            )
        elif not _ORIGIN.match(origin.strip()):
            hint = origin.strip().rstrip("/")
            if not re.match(r"^https?://", hint):
                hint = "https://" + hint.split("://")[-1]
            hint = re.sub(r"^(https?://[^/]+).*$", r"\1", hint)
            self.problem(
                "nginx_static_origin is %s; set it to the scheme and host of the S3 server only, without a path, such as %s"
                % (show(origin), hint if _ORIGIN.match(hint) else "https://s3.example.org")
            )

    def address_port_problem(self, value: str, port_fix: t.Callable[[str, str], str]) -> str | None:
        """What is wrong with an address, as a message tail, or None. ``port_fix(host, port)`` says how to fix a port."""
        try:
            host, port = split_address(value)
        except ValueError:
            return "which is neither a host name nor an IP address; write a host name, an IPv4 address or an IPv6 address (bracketed or bare)"
        if port is not None:
            return "which carries a port; %s" % port_fix(host, port or "its port")
        if not host:
            return "which has no host; write a host name or IP address"
        return None

    def read_trusted_proxies(self) -> list[str]:
        value = self.setting("nginx_trusted_proxies")
        if isinstance(value, str) or not isinstance(value, t.Sequence):
            self.problem('nginx_trusted_proxies is %s; set it to a list of CIDRs of your outer load balancers, such as ["10.0.0.0/24"], or []' % show(value))
            return []
        result: list[str] = []
        for position, entry in enumerate(value):
            label = "nginx_trusted_proxies[%d]" % position
            if not isinstance(entry, str) or not entry.strip():
                self.problem("%s is %s; write each entry as a CIDR string such as 10.0.0.0/24" % (label, show(entry)))
                continue
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                self.problem("%s is %s, which is not a CIDR; write it like 10.0.0.0/24 or 2001:db8::/48" % (label, show(entry)))
                continue
            if network.prefixlen == 0:
                self.problem(
                    "%s is %s, which trusts every address, so any client could forge its IP and dodge rate limits; "
                    "list only your outer load balancers' addresses" % (label, show(entry))
                )
                continue
            result.append(entry.strip())
        return result

    def read_rate_limits(self, version: str | None) -> dict[str, int]:
        wanted = dict(RATE_LIMIT_DEFAULTS)
        if version and version_key(version) < version_key("0.19.11"):
            wanted["register"] = REGISTER_DEFAULT_BEFORE_0_19_11
        given = self.setting("lemmy_rate_limits")
        if not isinstance(given, t.Mapping):
            self.problem("lemmy_rate_limits is %s; set it to a mapping such as {post: 6, post_per_second: 600}, or leave it unset" % show(given))
            return wanted
        for key in sorted(given, key=str):
            value = given[key]
            if key not in RATE_LIMIT_DEFAULTS:
                self.problem("lemmy_rate_limits has unknown key %s; use Lemmy's keys: %s" % (show(key), ", ".join(RATE_LIMIT_DEFAULTS)))
                continue
            number = parse_positive_int(value)
            if number is None:
                self.problem("lemmy_rate_limits.%s is %s; set it to a positive integer such as %d" % (key, show(value), RATE_LIMIT_DEFAULTS[key]))
                continue
            wanted[key] = number
        return wanted

    # ------------------------------------------------------------------ hosts
    def address_of(self, host: str) -> str:
        fixes: dict[str, t.Callable[[str, str], str]] = {
            "lemmy_host_address": lambda h, p: (
                "give the address alone (lemmy_host_address: %s): the ports come from lemmy_api_base_port, lemmy_ui_base_port and pictrs_port" % h
            ),
            "ansible_host": lambda h, p: "set ansible_host: %s and ansible_port: %s" % (h, p),
        }
        address: str | None = None
        for key in ("lemmy_host_address", "ansible_host"):
            value = self.host_var(host, key)
            if value is None or (isinstance(value, str) and not value.strip()):
                continue
            if not isinstance(value, str) or any(c.isspace() for c in value.strip()) or "/" in value:
                self.problem("host %s: %s is %s; set it to a host name or IP address other hosts can reach it by" % (host, key, show(value)))
                address = address or host
                continue
            wrong = self.address_port_problem(value, fixes[key])
            if wrong:
                self.problem("host %s: %s is %s, %s" % (host, key, show(value), wrong))
                address = address or host
                continue
            address = address or value.strip()
        return address or host

    def count_of(self, host: str, key: str, group: str) -> int | None:
        value = self.host_var(host, key)
        if value is None:
            return 1
        number = parse_positive_int(value)
        if number is not None and number > MAX_PROCESSES_PER_HOST:
            self.problem(
                "host %s: %s is %d; at most %d processes of one kind run on one host, spread them over more hosts of group %s"
                % (host, key, number, MAX_PROCESSES_PER_HOST, group)
            )
            return None
        if number is None:
            if value == 0 or value == "0":
                self.problem("host %s: %s is 0; set it to a positive integer such as 1, or remove %s from group %s" % (host, key, host, group))
            else:
                self.problem("host %s: %s is %s; set it to a positive integer such as %d" % (host, key, show(value), _suggest_count(value)))
            return None
        return number

    def port_of(self, host: str, key: str) -> int | None:
        value = self.host_var(host, key)
        if value is None:
            return HOST_VAR_DEFAULTS[key]
        number = parse_positive_int(value)
        if number is None or number > 65535:
            self.problem("host %s: %s is %s; set it to a TCP port between 1 and 65535 such as %d" % (host, key, show(value), HOST_VAR_DEFAULTS[key]))
            return None
        return number

    def nginx_ports(self, groups: dict[str, list[str]]) -> list[tuple[str, str, int]]:
        """(host, name, port) of every port nginx listens on, from the nginx role's variables of each proxy host."""
        ports: list[tuple[str, str, int]] = []
        for host in groups["lemmy_proxy"]:
            listen = self.port_of(host, "nginx_listen_port")
            if listen is not None:
                ports.append((host, "nginx (nginx_listen_port)", listen))
            raw = self.host_var(host, "nginx_tls_enabled")
            tls = False if raw is None else parse_bool(raw)
            if tls is None:
                self.problem("host %s: nginx_tls_enabled is %s; set it to true or false" % (host, show(raw)))
            elif tls:
                port = self.port_of(host, "nginx_tls_port")
                if port is not None:
                    ports.append((host, "nginx (nginx_tls_port)", port))
            if self.internal_enabled(host):
                port = self.port_of(host, "nginx_internal_port")
                if port is not None:
                    ports.append((host, "nginx (nginx_internal_port)", port))
        return ports

    def internal_enabled(self, host: str) -> bool:
        """nginx_internal_enabled of a proxy host (default true); a value that is not a boolean is a problem."""
        raw = self.host_var(host, "nginx_internal_enabled")
        if raw is None:
            return bool(HOST_VAR_DEFAULTS["nginx_internal_enabled"])
        value = parse_bool(raw)
        if value is None:
            self.problem("host %s: nginx_internal_enabled is %s; set it to true or false" % (host, show(raw)))
            return False
        return value

    def plan_ssr(self, groups: dict[str, list[str]], addresses: dict[str, str], api: list[dict[str, t.Any]]) -> dict[str, t.Any]:
        """Where lemmy-ui's server-side rendering sends its API calls (host:port, IPv6 bracketed).

        The internal nginx of the first proxy (its API pool skips stopped and starting processes and drains
        never reload it); without it the edge's plain-HTTP port; behind TLS without it the first API process.
        """
        proxies = groups["lemmy_proxy"]
        if proxies:
            proxy = proxies[0]
            internal = parse_bool(self.host_var(proxy, "nginx_internal_enabled"))
            if internal is None or internal:  # unset: the default (true); a bad value is reported by nginx_ports
                port = self.port_of(proxy, "nginx_internal_port")
                if port is not None:
                    return {"address": hostport(addresses[proxy], port), "via": "internal", "host": proxy}
            else:
                raw = self.host_var(proxy, "nginx_tls_enabled")
                if not (parse_bool(raw) if raw is not None else False):
                    port = self.port_of(proxy, "nginx_listen_port")
                    if port is not None:
                        return {"address": hostport(addresses[proxy], port), "via": "edge", "host": proxy}
        if api and api[0]["drain_key"]:
            return {"address": api[0]["drain_key"], "via": "api", "host": api[0]["host"]}
        return {"address": None, "via": None, "host": None}

    def ssr_override(self, ssr: dict[str, t.Any]) -> dict[str, t.Any]:
        """lemmy_ui_internal_host, when set, replaces the planned SSR address; lemmy-ui wants host:port, no scheme."""
        value = self.setting("lemmy_ui_internal_host")
        if value is None:
            return ssr
        if not isinstance(value, str) or not _SSR_ADDRESS.match(value.strip()):
            hint = str(value).strip().rsplit("://", maxsplit=1)[-1].split("/")[0] or "lemmy-internal.example:8537"
            if not re.search(r":[0-9]+$", hint):
                hint += ":8537"
            self.problem(
                "lemmy_ui_internal_host is %s; set it to the host:port lemmy-ui renders through, without a scheme or path, "
                "such as %s, or leave it unset for the plan's choice (%s)" % (show(value), hint, ssr["address"] or "none")
            )
            return ssr
        return {"address": value.strip(), "via": "lemmy_ui_internal_host", "host": None}

    def check_counts_outside_their_group(self, groups: dict[str, list[str]]) -> None:
        """A count on a host outside the group that reads it would be silently ignored: refuse it."""
        for host in sorted(self.raw_host_vars, key=lambda h: natural_key(str(h))):
            if not isinstance(host, str) or host in self.excluded:
                continue
            for key, group in COUNT_GROUPS:
                if group == "lemmy_federation" and parse_bool(self.setting("lemmy_federation_enabled")) is False:
                    continue  # parked while federation is off: nothing plans senders, and the counts wait for it to return
                value = self.host_var(host, key)
                if value is not None and host not in groups[group]:
                    self.problem(
                        "host %s: %s is set (%s) but %s is not in group %s, so nothing would read it; add %s to group %s, "
                        "or remove %s from the host (and from any group_vars that reach it)" % (host, key, show(value), host, group, host, group, key)
                    )

    def check_host_settings(self, every_host: list[str]) -> None:
        """Plan-level variables must have one value: the controller's, which the plan reads, on every planned host."""
        for key in PLAN_LEVEL_KEYS:
            controller = self.raw_settings.get(key)
            wanted = show(controller)
            values: dict[str, list[str]] = {}
            shown: dict[str, t.Any] = {}
            for host in every_host:
                mine = self.raw_host_settings.get(host)
                if not isinstance(mine, t.Mapping) or key not in mine:
                    continue
                text = show(mine[key])
                if text != wanted:
                    values.setdefault(text, []).append(host)
                    shown[text] = mine[key]
            if not values:
                continue
            where = "; ".join("%s on %s" % ("not set" if shown[text] is None else text, _hosts_text(hosts)) for text, hosts in sorted(values.items()))
            if key in DROPPED_SETTINGS:
                self.problem("%s is set on hosts (%s) but no longer read: %s" % (key, where, DROPPED_SETTINGS[key]))
                continue
            self.problem(
                "%s differs between hosts and the controller: %s, but %s on the controller, whose value the plan uses for the whole fleet; "
                "set it only in group_vars/all (or with -e), not on a group below all or on a host" % (key, where, "not set" if controller is None else wanted)
            )

    def secret_fact(self, facts: t.Mapping[str, t.Any], name: str) -> tuple[str, int | None, list[str]]:
        """(kind, length or None when unknown, hosts whose value differs) for one secret."""
        fact = facts.get(name)
        if not isinstance(fact, t.Mapping):
            if name == "lemmy_database_password" and name not in facts:
                # Older callers pass only whether the password is set.
                return ("string" if parse_bool(self.raw_settings.get("database_password_set")) else "missing"), None, []
            return "missing", 0, []
        kind = fact.get("kind")
        kind = kind if isinstance(kind, str) and kind in SECRET_KINDS else "other"
        length = fact.get("length")
        length = length if isinstance(length, int) and not isinstance(length, bool) and length >= 0 else None
        differs = fact.get("differs_on")
        hosts = [h for h in differs if isinstance(h, str)] if isinstance(differs, t.Sequence) and not isinstance(differs, str) else []
        return kind, length, hosts

    def check_secrets(self, groups: dict[str, list[str]], settings: dict[str, t.Any], every_host: list[str]) -> None:
        facts = self.raw_settings.get("secret_facts")
        if facts is None:
            facts = {}
        if not isinstance(facts, t.Mapping):
            self.problem("secret_facts is %s; pass a mapping of secret name to {kind, length, differs_on}" % show(facts))
            facts = {}
        required = ["lemmy_database_password", "pictrs_api_key", "lemmy_admin_password"]
        if settings["static_strategy"] == "object_storage":
            required += ["lemmy_ui_static_s3_access_key", "lemmy_ui_static_s3_secret_key"]
        planned = set(every_host)
        for name in required:
            kind, length, differs = self.secret_fact(facts, name)
            why = " (lemmy_ui_static_strategy is object_storage)" if name.startswith("lemmy_ui_static_s3_") else ""
            if kind == "missing" or (kind == "string" and length == 0):
                self.problem("%s is not set or is empty%s; set it in a vaulted file such as group_vars/all/vault.yml" % (name, why))
                continue
            if kind in ("integer", "float"):
                self.problem(
                    '%s is a bare YAML number (%s), not a string; quote it, as %s: "...", since YAML reads unquoted digits as a number '
                    "and drops leading zeros" % (name, "an integer" if kind == "integer" else "a float", name)
                )
                continue
            if kind == "boolean":
                self.problem('%s is a YAML boolean (an unquoted yes, no, true or false), not a string; quote it, as %s: "..."' % (name, name))
                continue
            if kind != "string":
                self.problem("%s is a %s, not a string; set it to one string in a vaulted file" % (name, "value of another kind" if kind == "other" else kind))
                continue
            if name == "lemmy_admin_password" and length is not None and not ADMIN_PASSWORD_LENGTH[0] <= length <= ADMIN_PASSWORD_LENGTH[1]:
                self.problem(
                    "lemmy_admin_password has %d characters; Lemmy accepts %d to %d, choose one of that length"
                    % (length, ADMIN_PASSWORD_LENGTH[0], ADMIN_PASSWORD_LENGTH[1])
                )
            if name == "lemmy_database_password" and groups["lemmy_db"] and length is not None and length < DATABASE_PASSWORD_MIN_LENGTH:
                self.problem(
                    "lemmy_database_password has %d characters, but the postgresql role on %s refuses fewer than %d; choose a longer one"
                    % (length, groups["lemmy_db"][0], DATABASE_PASSWORD_MIN_LENGTH)
                )
            elsewhere = sorted((h for h in differs if h in planned), key=natural_key)
            if elsewhere:
                self.problem(
                    "%s has another value on %s than on the controller, whose value the plan checks (values not shown); "
                    "set it only in group_vars/all (or a vault file there), not on a group below all or on a host" % (name, _hosts_text(elsewhere))
                )

    def check_shared_addresses(self, addresses: dict[str, str]) -> None:
        owners: dict[str, list[str]] = {}
        for host, address in addresses.items():
            key = address.strip("[]").lower()
            try:
                key = str(ipaddress.ip_address(key.split("%")[0]))
            except ValueError:
                pass
            owners.setdefault(key, []).append(host)
        for key in sorted(owners):
            hosts = sorted(owners[key], key=natural_key)
            if len(hosts) > 1:
                self.problem(
                    "hosts %s %s have the address %s, so their processes and ports would collide on one machine; give each host its own "
                    "ansible_host or lemmy_host_address, or merge them into one inventory host in several groups"
                    % (" and ".join(hosts), "both" if len(hosts) == 2 else "all", addresses[hosts[0]])
                )

    # ------------------------------------------------------------------ the plan
    def run(self) -> dict[str, t.Any]:
        groups = self.read_groups()
        settings = self.read_settings()

        every_host = sorted({h for name in GROUP_NAMES for h in groups[name]}, key=natural_key)
        self.check_counts_outside_their_group(groups)
        self.check_host_settings(every_host)
        self.check_secrets(groups, settings, every_host)
        addresses = {host: self.address_of(host) for host in every_host}
        self.check_shared_addresses(addresses)
        # The proxies' VRRP view; every inventory proxy stays a peer, even one left out of this run.
        proxies = self.inventory_groups.get("lemmy_proxy", [])
        vip = _plan_vip(self.raw_settings, proxies, {h: addresses.get(h) or self.address_of(h) for h in proxies}, addresses, self.problem)
        processes: list[dict[str, t.Any]] = []

        def add(host: str, kind: str, name: str, slot: int, port: int | None, args: t.Sequence[str]) -> dict[str, t.Any]:
            entry = {
                "host": host,
                "address": addresses[host],
                "name": name,
                "kind": kind,
                "slot": slot,
                "port": port,
                "shard_index": None,
                "shard_count": None,
                "args": list(args),
            }
            processes.append(entry)
            return entry

        # API and UI: numbered by local slot, ports from the host's base port.
        for kind, group, count_key, port_key in (
            ("api", "lemmy_api", "lemmy_api_processes", "lemmy_api_base_port"),
            ("ui", "lemmy_ui", "lemmy_ui_processes", "lemmy_ui_base_port"),
        ):
            for host in groups[group]:
                count = self.count_of(host, count_key, group)
                base = self.port_of(host, port_key)
                if count is None:
                    continue
                if base is not None and base + count - 1 > 65535:
                    self.problem("host %s: %s %d with %s %d runs past port 65535; lower %s" % (host, port_key, base, count_key, count, port_key))
                    base = None
                for slot in range(1, count + 1):
                    add(host, kind, "lemmy-%s-%d" % (kind, slot), slot, None if base is None else base + slot - 1, API_ARGS if kind == "api" else ())

        if not groups["lemmy_api"]:
            self.problem(
                "group lemmy_api has no hosts%s; put at least one host in it to serve the API and federation inboxes" % self.excluded_from("lemmy_api")
            )
        if not groups["lemmy_ui"]:
            self.problem("group lemmy_ui has no hosts%s; put at least one host in it to serve the web interface" % self.excluded_from("lemmy_ui"))
        if not groups["lemmy_proxy"]:
            self.problem("group lemmy_proxy has no hosts%s; put at least one host in it to run nginx in front of the fleet" % self.excluded_from("lemmy_proxy"))

        shard_count = self.plan_federation(groups, settings, add)
        scheduler = self.plan_scheduler(groups, add)
        pictrs_hosts = self.plan_pictrs(groups, settings, add)
        database = self.plan_database(groups, settings, addresses, processes)

        processes.sort(key=lambda p: (natural_key(p["host"]), KIND_ORDER.index(p["kind"]), p["slot"]))
        if settings["prometheus"]:
            self.plan_metrics(processes)
        self.check_ports(processes, self.nginx_ports(groups))

        api = [p for p in processes if p["kind"] == "api"]
        ui = [p for p in processes if p["kind"] == "ui"]
        if settings["static_strategy"] == "single" and len(ui) > 1:
            self.warn(
                "lemmy_ui_static_strategy is single but there are %d UI processes; during a rolling upgrade pages from one version "
                "will ask another for its /static/<hash>/ files and get 404s; use object_storage, ip_hash or sticky" % len(ui)
            )
        rate_limits = self.plan_rate_limits(settings, len(api))
        for proc in processes:
            # The upstream server as nginx writes it, and so the name of its drain marker.
            proc["drain_key"] = hostport(proc["address"], proc["port"]) if proc["kind"] in DRAINED_KINDS and proc["port"] is not None else None
        ssr = self.plan_ssr(groups, addresses, api)
        if vip is not None and ssr["via"] == "internal":
            # Through the proxies' virtual address, so renders follow it when a proxy fails (the internal nginx runs on each).
            ssr["address"] = hostport(vip["address"], self.port_of(ssr["host"], "nginx_internal_port") or HOST_VAR_DEFAULTS["nginx_internal_port"])
        ssr = self.ssr_override(ssr)

        if self.problems:
            raise PlanError(self.problems, self.warnings)

        hosts: dict[str, dict[str, t.Any]] = {}
        for proc in processes:
            entry = hosts.setdefault(proc["host"], {"address": proc["address"], "processes": []})
            entry["processes"].append(proc["name"])
        return {
            **derived_views(processes, settings, database),
            "ssr": ssr,
            "domain": settings["domain"],
            "version": settings["version"],
            "ui_version": settings["ui_version"],
            # The image each kind runs: the roles and the upgrade read these, never a version of their own.
            "images": settings["images"],
            "processes": processes,
            "hosts": hosts,
            "upstreams": {
                "api": [p["drain_key"] for p in api],
                "ui": [p["drain_key"] for p in ui],
                "pictrs": [hostport(p["address"], p["port"]) for p in processes if p["kind"] == "pictrs"],
            },
            "federation": {"enabled": settings["federation_enabled"], "count": shard_count},
            "scheduler": scheduler,
            "pictrs": {"repo_type": settings["pictrs_repo_type"], "hosts": pictrs_hosts, "cpus": settings["pictrs_cpus"]},
            "database": database,
            "rate_limits": rate_limits,
            # The local_site_rate_limit column of each key, as the target release names it.
            "rate_limit_columns": {key: rate_limit_column(settings["version"], key) for key in rate_limits},
            "trusted_proxies": settings["trusted_proxies"],
            "static_strategy": settings["static_strategy"],
            "api_balancing": settings["api_balancing"],
            "excluded_hosts": list(self.excluded),
            "vip": vip,
            "warnings": self.warnings,
        }

    def plan_federation(self, groups: dict[str, list[str]], settings: dict[str, t.Any], add: t.Callable[..., dict[str, t.Any]]) -> int:
        members = groups["lemmy_federation"]
        if not settings["federation_enabled"]:
            if members:
                self.warn(
                    "lemmy_federation_enabled is false, so the hosts in group lemmy_federation (%s) run no sender; "
                    "remove them from the group or set lemmy_federation_enabled: true" % ", ".join(members)
                )
            return 0

        # (host, slot) in natural host order, then local slot: the order that numbers the shards.
        slots: list[tuple[str, int]] = []
        counts_known = True
        pins_broken = False
        pinned_hosts: list[tuple[str, int, list[t.Any]]] = []
        for host in members:
            count = self.count_of(host, "lemmy_federation_processes", "lemmy_federation")
            if count is None:
                counts_known = False
                continue
            slots.extend((host, slot) for slot in range(1, count + 1))
            pins = self.host_var(host, "lemmy_federation_indices")
            if pins is None:
                continue
            if isinstance(pins, str) or not isinstance(pins, t.Sequence):
                self.problem(
                    "host %s: lemmy_federation_indices is %s; set it to a list with one shard index per sender process, such as %s"
                    % (host, show(pins), show(list(range(1, count + 1))))
                )
                pins_broken = True
                continue
            if len(pins) != count:
                self.problem(
                    "host %s: lemmy_federation_indices has %d entr%s but lemmy_federation_processes is %d; give exactly one index per sender process"
                    % (host, len(pins), "y" if len(pins) == 1 else "ies", count)
                )
                pins_broken = True
            pinned_hosts.append((host, count, list(pins)[:count]))
        total = len(slots)
        if total == 0:
            if counts_known:
                self.problem(
                    "group lemmy_federation has no sender process%s, so no activity would leave this instance; "
                    "put at least one host in lemmy_federation, or set lemmy_federation_enabled: false" % self.excluded_from("lemmy_federation")
                )
            return 0

        # Resolve the pins now that N is known.
        pin_of: dict[tuple[str, int], int] = {}
        owners: dict[int, list[str]] = {}
        for host, count, pins in pinned_hosts:
            for position, raw in enumerate(pins):
                number = parse_positive_int(raw)
                if number is None:
                    self.problem(
                        "host %s: lemmy_federation_indices[%d] is %s; use whole numbers from 1 to %d (the number of sender processes)"
                        % (host, position, show(raw), total)
                    )
                    pins_broken = True
                    continue
                if number > total:
                    if counts_known:
                        self.problem(
                            "host %s: lemmy_federation_indices has %d, but there are only %d sender processes in total; use indices from 1 to %d"
                            % (host, number, total, total)
                        )
                    pins_broken = True
                    continue
                owners.setdefault(number, []).append("%s slot %d" % (host, position + 1))
                pin_of[(host, position + 1)] = number
        for number in sorted(owners):
            if len(owners[number]) > 1:
                self.problem(
                    "federation index %d is pinned by %d senders (%s); each index from 1 to %d must be used exactly once: fix lemmy_federation_indices"
                    % (number, len(owners[number]), ", ".join(owners[number]), total)
                )
                pins_broken = True

        # Unpinned senders take the smallest free indices, in (host, slot) order.
        free = [i for i in range(1, total + 1) if i not in owners]
        unpinned = [host_slot for host_slot in slots if host_slot not in pin_of]
        assignment = dict(pin_of)
        assignment.update(zip(unpinned, free))
        if pins_broken or not counts_known:
            taken = set(assignment.values())
            if counts_known:
                for index in range(1, total + 1):
                    if index not in taken:
                        self.problem(
                            "no sender process has federation index %d of 1..%d, so instances with id %% %d == %d would get no activities; "
                            "fix lemmy_federation_indices so every index is used exactly once" % (index, total, total, index - 1)
                        )
            return total

        for host, slot in slots:
            index = assignment[(host, slot)]
            entry = add(
                host,
                "federation",
                "lemmy-federation-%d" % index,
                slot,
                None,
                FEDERATION_ARGS + ("--federate-process-index", str(index), "--federate-process-count", str(total)),
            )
            entry["shard_index"] = index
            entry["shard_count"] = total
        return total

    def plan_scheduler(self, groups: dict[str, list[str]], add: t.Callable[..., dict[str, t.Any]]) -> dict[str, t.Any] | None:
        members = groups["lemmy_scheduler"]
        if not members:
            self.problem(
                "group lemmy_scheduler has no hosts%s; put exactly one host in it: without a scheduler hot ranks go stale, "
                "bans never expire and dead instances are never revived" % self.excluded_from("lemmy_scheduler")
            )
            return None
        if len(members) > 1:
            self.problem(
                "group lemmy_scheduler has %d hosts (%s); scheduled tasks must run in exactly one process, keep one host in the group"
                % (len(members), ", ".join(members))
            )
        host = members[0]
        value = self.host_var(host, "lemmy_scheduler_processes")
        if value is not None and parse_positive_int(value) != 1:
            self.problem("host %s: lemmy_scheduler_processes is %s; exactly one scheduler process may run, set it to 1 or remove it" % (host, show(value)))
        if len(members) == 1:
            add(host, "scheduler", "lemmy-scheduler", 1, None, SCHEDULER_ARGS)
        return {"host": host, "name": "lemmy-scheduler"}

    def plan_pictrs(self, groups: dict[str, list[str]], settings: dict[str, t.Any], add: t.Callable[..., dict[str, t.Any]]) -> list[str]:
        members = groups["pictrs"]
        if not members:
            self.problem("group pictrs has no hosts%s; put one host in it to store and serve the instance's images" % self.excluded_from("pictrs"))
        elif len(members) > 1 and settings["pictrs_repo_type"] == "sled":
            self.problem(
                "group pictrs has %d hosts (%s) but pictrs_repo_type is sled, a local file that cannot be shared; "
                "keep one host, or set pictrs_repo_type: postgres (pict-rs 0.5+ with object storage) to run several" % (len(members), ", ".join(members))
            )
        for host in members:
            add(host, "pictrs", "pictrs", 1, self.port_of(host, "pictrs_port"), ())
        return list(members)

    def plan_database(
        self, groups: dict[str, list[str]], settings: dict[str, t.Any], addresses: dict[str, str], processes: list[dict[str, t.Any]]
    ) -> dict[str, t.Any]:
        members = groups["lemmy_db"]
        external = settings["database_host"]
        host: str | None = None
        address: str | None = None
        if len(members) > 1:
            self.problem(
                "group lemmy_db has %d hosts (%s); this collection runs one PostgreSQL server, keep one host in the group "
                "or remove them all and point lemmy_database_host at an external server" % (len(members), ", ".join(members))
            )
        if members:
            host = members[0]
            address = addresses[host]
            if external and external not in (host, address):
                self.warn(
                    "lemmy_database_host is %s but group lemmy_db holds %s; the plan uses %s, remove lemmy_database_host or empty lemmy_db"
                    % (show(external), host, host)
                )
        elif external:
            host = external
            address = external
        else:
            self.problem(
                "no database: group lemmy_db has no host%s and lemmy_database_host is not set; put one host in lemmy_db, "
                "or set lemmy_database_host to your external PostgreSQL server" % self.excluded_from("lemmy_db")
            )

        lemmy_count = sum(1 for p in processes if p["kind"] in ("api", "federation", "scheduler"))
        pictrs_count = sum(1 for p in processes if p["kind"] == "pictrs") if settings["pictrs_repo_type"] == "postgres" else 0
        pool = settings["pool_size"]
        pictrs_pool = settings["pictrs_pool_size"] if pictrs_count else 0
        maximum = settings["max_connections"]
        reserved = settings["reserved"]
        needed: int | None = None
        if pool is not None and pictrs_pool is not None:
            needed = lemmy_count * pool + pictrs_count * pictrs_pool
        if needed is not None and maximum is not None and reserved is not None and needed > maximum - reserved:
            available = maximum - reserved
            fit = (available - pictrs_count * pictrs_pool) // lemmy_count if lemmy_count else 0
            fix = "raise lemmy_database_max_connections to at least %d" % (needed + reserved)
            if fit >= 2:
                fix = "lower lemmy_database_pool_size to %d or %s" % (fit, fix)
            if pictrs_count and settings["pictrs_cpus"] > 1:
                fix += ", or lower pictrs_cpus"
            pictrs_part = ""
            if pictrs_count:
                cpus = settings["pictrs_cpus"]
                pictrs_part = " + %d pict-rs x %d (8 x pictrs_cpus %d + %d)" % (pictrs_count, pictrs_pool, cpus, min(cpus, 4))
            self.problem(
                "database: the plan needs %d connections (%d lemmy_server processes x lemmy_database_pool_size %d%s) "
                "but lemmy_database_max_connections %d leaves only %d after %d reserved; %s"
                % (needed, lemmy_count, pool, pictrs_part, maximum, available, reserved, fix)
            )
        return {
            "host": host,
            "address": address,
            "managed": bool(members),
            "pool_size": pool,
            "pictrs_pool_size": pictrs_pool if pictrs_count and pictrs_pool is not None else 0,
            "password_min_length": DATABASE_PASSWORD_MIN_LENGTH,
            "max_connections": maximum,
            "reserved": reserved,
            "connections_needed": needed,
        }

    def check_ports(self, processes: list[dict[str, t.Any]], nginx: t.Sequence[tuple[str, str, int]] = ()) -> None:
        users: dict[tuple[str, int], list[tuple[str, str]]] = {}
        port_keys = {"api": "lemmy_api_base_port", "ui": "lemmy_ui_base_port", "pictrs": "pictrs_port"}
        for host, name, port in nginx:
            users.setdefault((host, port), []).append((name, name[len("nginx (") : -1]))
        for proc in processes:
            if proc["port"] is not None:
                users.setdefault((proc["host"], proc["port"]), []).append((proc["name"], port_keys[proc["kind"]]))
            if proc.get("metrics"):
                users.setdefault((proc["host"], proc["metrics"]["port"]), []).append((proc["name"] + " metrics", "lemmy_prometheus_base_port"))
        for (host, port), owners in sorted(users.items(), key=lambda item: (natural_key(item[0][0]), item[0][1])):
            if len(owners) < 2:
                continue
            names = [name for name, _key in owners]
            keys = sorted({key for _name, key in owners})
            if any(key.startswith("nginx_") for key in keys):
                fix = "change %s on %s so the ports differ" % (" or ".join(keys), host)
            elif "lemmy_prometheus_base_port" in keys:
                fix = "change %s on %s so the port ranges do not overlap" % (" or ".join(keys), host)
            else:
                fix = "change lemmy_api_base_port, lemmy_ui_base_port or pictrs_port on %s so the port ranges do not overlap" % host
            self.problem("host %s: %s %s want port %d; %s" % (host, " and ".join(names), "both" if len(names) == 2 else "all", port, fix))

    def plan_metrics(self, processes: list[dict[str, t.Any]]) -> None:
        """Give every lemmy_server process of a host its own metrics port, in the host's process order.

        Lemmy's prometheus.bind is an IP address (a host name fails the config), so the bind is
        lemmy_prometheus_bind or else the host's address when that is an IP literal.
        """
        by_host: dict[str, list[dict[str, t.Any]]] = {}
        for proc in processes:
            if proc["kind"] in SERVER_KINDS:
                by_host.setdefault(proc["host"], []).append(proc)
        for host, procs in by_host.items():
            base = self.port_of(host, "lemmy_prometheus_base_port")
            if base is not None and base + len(procs) - 1 > 65535:
                self.problem(
                    "host %s: lemmy_prometheus_base_port %d with %d lemmy_server processes runs past port 65535; lower lemmy_prometheus_base_port"
                    % (host, base, len(procs))
                )
                base = None
            bind = self.metrics_bind(host, procs[0]["address"])
            if base is None or bind is None:
                continue
            for number, proc in enumerate(procs):
                proc["metrics"] = {"bind": bind, "port": base + number, "target": hostport(proc["address"], base + number)}

    def metrics_bind(self, host: str, address: str) -> str | None:
        raw = self.host_var(host, "lemmy_prometheus_bind")
        value = address if raw is None or (isinstance(raw, str) and not raw.strip()) else raw
        if isinstance(value, str):
            try:
                return str(ipaddress.ip_address(value.strip().strip("[]")))
            except ValueError:
                pass
        if raw is None:
            self.problem(
                "host %s: lemmy_prometheus is true but the host's address %s is not an IP address, and Lemmy binds its metrics only to an "
                "IP; set lemmy_prometheus_bind on the host to its IP (or 0.0.0.0), or lemmy_host_address to an IP" % (host, show(address))
            )
        else:
            self.problem("host %s: lemmy_prometheus_bind is %s; set it to an IP address such as 0.0.0.0 or the host's own IP" % (host, show(raw)))
        return None

    def plan_rate_limits(self, settings: dict[str, t.Any], api_count: int) -> dict[str, int]:
        wanted = settings["rate_limits_wanted"]
        if settings["api_balancing"] != "round_robin" or api_count <= 1:
            return dict(wanted)
        per_process = dict(wanted)
        for key in RATE_LIMIT_COUNT_KEYS:
            per_process[key] = -(-wanted[key] // api_count)
        return per_process


def build_plan(
    groups: t.Mapping[str, t.Any],
    host_vars: t.Mapping[str, t.Any],
    settings: t.Mapping[str, t.Any],
    known_versions: t.Sequence[str] | None = None,
    excluded_hosts: t.Sequence[str] | None = None,
    host_settings: t.Mapping[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Plan the fleet, or raise PlanError listing every problem.

    ``excluded_hosts`` (lemmy_plan_excluded_hosts) are taken out of every group before planning.
    ``host_settings`` maps each host to its own values of PLAN_LEVEL_KEYS; any that differ from
    ``settings`` (the controller's) are refused.
    """
    return _Planner(groups, host_vars, settings, known_versions, excluded_hosts, host_settings).run()


def _unique(items: t.Iterable[str]) -> list[str]:
    seen: list[str] = []
    for item in items:
        if item not in seen:
            seen.append(item)
    return seen


def derived_views(processes: list[dict[str, t.Any]], settings: t.Mapping[str, t.Any], database: t.Mapping[str, t.Any]) -> dict[str, t.Any]:
    """What playbooks and roles read instead of working it out from the process list themselves.

    ``processes`` are the plan's, sorted, each with its ``drain_key``. Host lists keep the plan's host order
    (natural); address lists are sorted.
    """
    def hosts_of(kinds: t.Sequence[str]) -> list[str]:
        return _unique(p["host"] for p in processes if p["kind"] in kinds)

    api = [p for p in processes if p["kind"] == "api"]
    ui = [p for p in processes if p["kind"] == "ui"]
    first_api = dict(api[0]) if api else None
    first_ui = dict(ui[0]) if ui else None
    client_kinds = SERVER_KINDS + (("pictrs",) if settings["pictrs_repo_type"] == "postgres" else ())
    release = strategy_for(settings["version"]) if settings["version"] else {}
    renderers = sorted({bare(p["address"]) for p in ui})
    return {
        "first_api": first_api,
        "first_ui": first_ui,
        # Inventory groups for add_host: the hosts that run each part of the fleet.
        "host_groups": {
            "lemmy_plan_app_hosts": hosts_of(KIND_ORDER),
            "lemmy_plan_lemmy_hosts": hosts_of(SERVER_KINDS + ("ui",)),
            "lemmy_plan_server_hosts": hosts_of(SERVER_KINDS),
            "lemmy_plan_ui_hosts": hosts_of(("ui",)),
            "lemmy_plan_federation_hosts": hosts_of(("federation",)),
            "lemmy_plan_pictrs_hosts": hosts_of(("pictrs",)),
            "lemmy_plan_db_host": [database["host"]] if database.get("managed") and database.get("host") else [],
            "lemmy_plan_first_api_host": [first_api["host"]] if first_api else [],
            "lemmy_plan_first_ui_host": [first_ui["host"]] if first_ui else [],
        },
        # Every process nginx drains, by name per host: {host: {name: "address:port"}}.
        "drain_keys": {
            host: {p["name"]: p["drain_key"] for p in processes if p["host"] == host and p["drain_key"]}
            for host in hosts_of(DRAINED_KINDS)
        },
        # The addresses PostgreSQL must let in (pict-rs only with the postgres repo), IPv6 without brackets.
        "database_clients": sorted({bare(p["address"]) for p in processes if p["kind"] in client_kinds}),
        # The lemmy-ui hosts whose server-side rendering calls the API through nginx with the browser's address.
        "ui_renderers": renderers,
        # set_real_ip_from: the outer balancers and the renderers.
        "real_ip_from": sorted(set(settings["trusted_proxies"]) | set(renderers)),
        # How the target release migrates and reports its version (_releases.strategy_for).
        "release": release,
        "migrate": {"args": list(MIGRATE_ARGS), "strategy": release.get("migrate")},
    }


def render_table(plan: t.Mapping[str, t.Any]) -> list[str]:
    """The plan's processes as aligned text lines: host, address, process, kind, shard i/N, port."""
    header = ("HOST", "ADDRESS", "PROCESS", "KIND", "SHARD", "PORT")
    rows = [header]
    for proc in plan["processes"]:
        shard = "%d/%d" % (proc["shard_index"], proc["shard_count"]) if proc["shard_index"] else "-"
        port = str(proc["port"]) if proc["port"] is not None else "-"
        rows.append((proc["host"], proc["address"], proc["name"], proc["kind"], shard, port))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    return ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]


def render_summary(plan: t.Mapping[str, t.Any]) -> list[str]:
    """A few lines that sum up the plan beside the table."""
    kinds = [p["kind"] for p in plan["processes"]]
    database = plan["database"]
    federation = plan["federation"]
    lines = [
        "Lemmy %s (lemmy-ui %s) for %s" % (plan["version"], plan["ui_version"], plan["domain"]),
        "API processes: %d (%s), UI processes: %d (static assets: %s)"
        % (kinds.count("api"), plan["api_balancing"], kinds.count("ui"), plan["static_strategy"]),
        "federation senders: %s" % ("%d" % federation["count"] if federation["enabled"] else "disabled"),
        "scheduler: %s on %s" % (plan["scheduler"]["name"], plan["scheduler"]["host"]),
        "pict-rs: %d (%s repo)" % (kinds.count("pictrs"), plan["pictrs"]["repo_type"]),
        "database: %s%s, %d of %d connections needed (%d reserved, pool %d per lemmy_server process)"
        % (
            database["host"],
            "" if database["managed"] else " (external)",
            database["connections_needed"],
            database["max_connections"] - database["reserved"],
            database["reserved"],
            database["pool_size"],
        ),
        "rate limits per API process: %s" % ", ".join("%s=%s" % (k, plan["rate_limits"][k]) for k in RATE_LIMIT_DEFAULTS),
    ]
    if plan["api_balancing"] == "round_robin" and kinds.count("api") > 1:
        lines.append(
            "  (round_robin spreads a client over %d API processes, so its budget is about %d x the counts above; "
            "rounding up can exceed a small wanted limit, use nginx_api_balancing: ip_hash for exact limits)" % (kinds.count("api"), kinds.count("api"))
        )
    lines += [
        "trusted proxies: %s" % (", ".join(plan["trusted_proxies"]) or "none"),
    ]
    return lines
