# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this module util is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

"""Adopting a host installed by lemmy-ansible: read its settings, map them to this collection's inventory.

lemmy-ansible (1.5.x) runs one compose project per domain in ``<lemmy_base_dir>/<domain>/``:
``docker-compose.yml``, ``lemmy.hjson`` (Lemmy's config, 0600, uid 1000), ``volumes/pictrs`` (pict-rs's
``/mnt``: ``sled-repo`` and ``files``, owner 991) and ``volumes/postgres`` (the database cluster). Compose
names the containers ``<project>-<service>-1``, the project being the directory name normalised.

This module parses ``lemmy.hjson`` (a subset parser of Hjson, enough for every file Lemmy reads: comments,
quoteless keys and values, optional commas, quoted and multi-line strings) and turns the settings into the
starter inventory. Pure Python, no Ansible imports.
"""

from __future__ import annotations

import re
import typing as t

# The groups of the collection; an adopted host starts in all of them (the "small" topology).
GROUPS = ("lemmy_proxy", "lemmy_ui", "lemmy_api", "lemmy_federation", "lemmy_scheduler", "pictrs", "lemmy_db")
# Connection variables copied from the lemmy-ansible inventory host into the starter inventory.
CONNECTION_KEYS = ("ansible_host", "ansible_port", "ansible_user", "ansible_connection", "ansible_python_interpreter", "ansible_become")
# The compose services whose containers hold or write data, stopped before the final dump (postgres last).
WRITER_SERVICES = ("proxy", "lemmy-ui", "lemmy", "pictrs", "pictrs-safety", "anubis", "postfix")
# Lemmy's rate-limit columns (table local_site_rate_limit), as the collection's lemmy_rate_limits keys.
RATE_LIMIT_KEYS = (
    "message", "message_per_second", "post", "post_per_second", "register", "register_per_second", "image",
    "image_per_second", "comment", "comment_per_second", "search", "search_per_second", "import_user_settings",
    "import_user_settings_per_second",
)
# The hjson keys the collection's roles write themselves (the rest goes to lemmy_server_extra_config).
MANAGED_KEYS = ("database", "hostname", "bind", "port", "tls_enabled", "pictrs", "setup", "email")


class HjsonError(ValueError):
    """lemmy.hjson cannot be read; the message names the line and column."""


class AdoptError(ValueError):
    """The host cannot be adopted as it is; ``problems`` lists every reason with its fix."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# --------------------------------------------------------------------------- hjson

_PUNCTUATION = "{}[],:"


class _Reader:
    def __init__(self, text: str) -> None:
        self.text = text.replace("\r\n", "\n")
        self.pos = 0

    def where(self) -> str:
        line = self.text.count("\n", 0, self.pos) + 1
        column = self.pos - (self.text.rfind("\n", 0, self.pos) + 1) + 1
        return "line %d, column %d" % (line, column)

    def fail(self, what: str) -> t.NoReturn:
        raise HjsonError("lemmy.hjson %s: %s" % (self.where(), what))

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip(self, newlines: bool = True) -> None:
        """Skip white space and comments (# ..., // ..., /* ... */)."""
        text = self.text
        while self.pos < len(text):
            char = text[self.pos]
            if char == "\n" and not newlines:
                return
            if char in " \t\n\ufeff":
                self.pos += 1
            elif char == "#" or text.startswith("//", self.pos):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                if end < 0:
                    self.fail("a /* comment is never closed")
                self.pos = end + 2
            else:
                return

    def document(self) -> dict[str, t.Any]:
        self.skip()
        if self.peek() == "{":
            self.pos += 1
            value = self.members("}")
        else:
            # Hjson allows the braces of the root object to be left out.
            value = self.members("")
        self.skip()
        if self.pos < len(self.text):
            self.fail("unexpected %r after the end of the document" % self.peek())
        return value

    def members(self, closing: str) -> dict[str, t.Any]:
        result: dict[str, t.Any] = {}
        while True:
            self.skip()
            char = self.peek()
            if closing and char == closing:
                self.pos += 1
                return result
            if not char:
                if closing:
                    self.fail("the object is never closed with %r" % closing)
                return result
            if char == ",":
                self.pos += 1
                continue
            key = self.key()
            self.skip()
            if self.peek() != ":":
                self.fail("expected ':' after the key %r" % key)
            self.pos += 1
            self.skip()
            if key in result:
                self.fail("the key %r is given twice" % key)
            result[key] = self.value()

    def key(self) -> str:
        char = self.peek()
        if char in "\"'":
            return self.quoted(char)
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _PUNCTUATION + " \t\n":
            self.pos += 1
        if start == self.pos:
            self.fail("expected a key, found %r" % char)
        return self.text[start:self.pos]

    def value(self) -> t.Any:
        char = self.peek()
        if char == "{":
            self.pos += 1
            return self.members("}")
        if char == "[":
            self.pos += 1
            return self.elements()
        if self.text.startswith("'''", self.pos):
            return self.multiline()
        if char in "\"'":
            return self.quoted(char)
        if not char or char in ",:]}":
            self.fail("expected a value, found %s" % (repr(char) if char else "the end of the file"))
        return self.quoteless()

    def elements(self) -> list[t.Any]:
        result = []
        while True:
            self.skip()
            char = self.peek()
            if char == "]":
                self.pos += 1
                return result
            if not char:
                self.fail("the list is never closed with ']'")
            if char == ",":
                self.pos += 1
                continue
            result.append(self.value())

    def quoted(self, quote: str) -> str:
        opening = self.pos
        self.pos += 1
        out = []
        escapes = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "/": "/", "\\": "\\", '"': '"', "'": "'"}
        while True:
            if self.pos >= len(self.text):
                self.fail("a string is never closed with %s" % quote)
            char = self.text[self.pos]
            if char == quote:
                self.pos += 1
                return "".join(out)
            if char == "\n":
                self.pos = opening
                self.fail("the string opened here runs past the end of its line; close it with %s" % quote)
            if char == "\\":
                code = self.text[self.pos + 1 : self.pos + 2]
                if code == "u":
                    digits = self.text[self.pos + 2 : self.pos + 6]
                    if not re.match(r"^[0-9A-Fa-f]{4}$", digits):
                        self.fail("bad \\u escape")
                    out.append(chr(int(digits, 16)))
                    self.pos += 6
                    continue
                if code not in escapes:
                    self.fail("unknown escape \\%s" % code)
                out.append(escapes[code])
                self.pos += 2
                continue
            out.append(char)
            self.pos += 1

    def multiline(self) -> str:
        # '''...''': the indentation of the opening quotes is removed from every line.
        indent = self.pos - (self.text.rfind("\n", 0, self.pos) + 1)
        self.pos += 3
        end = self.text.find("'''", self.pos)
        if end < 0:
            self.fail("a ''' string is never closed")
        body = self.text[self.pos:end]
        self.pos = end + 3
        lines = body.split("\n")
        if lines and not lines[0].strip():
            lines = lines[1:]
        if lines and not lines[-1].strip():
            lines = lines[:-1]
        return "\n".join(line[indent:] if line[:indent].strip() == "" else line.lstrip() for line in lines)

    def quoteless(self) -> t.Any:
        # A quoteless value runs to the end of the line. Numbers, true, false and null are typed only
        # when nothing but a comma or a comment follows them on that line.
        start = self.pos
        end = self.text.find("\n", start)
        end = len(self.text) if end < 0 else end
        raw = self.text[start:end]
        literal = re.match(r"^(true|false|null|-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)\s*(?=,|\]|\}|#|//|/\*|$)", raw)
        if literal:
            self.pos = start + len(literal.group(1))
            word = literal.group(1)
            if word in ("true", "false"):
                return word == "true"
            if word == "null":
                return None
            return float(word) if any(c in word for c in ".eE") else int(word)
        self.pos = end
        return raw.strip()


def parse_hjson(text: str) -> dict[str, t.Any]:
    """The Hjson document as Python values; HjsonError names the line and column of a mistake."""
    if not isinstance(text, str):
        raise HjsonError("lemmy.hjson must be text, got %s" % type(text).__name__)
    return _Reader(text).document()


# --------------------------------------------------------------------------- compose facts


def compose_project_name(directory: str) -> str:
    """The project name Compose derives from a directory: its base name, lowercased, only [a-z0-9_-]."""
    base = directory.rstrip("/").rsplit("/", 1)[-1].lower()
    name = re.sub(r"[^a-z0-9_-]", "", base)
    return name.lstrip("_-")


def container_name(project: str, service: str) -> str:
    """Compose v2's name of a service's first container."""
    return "%s-%s-1" % (project, service)


def image_tag(image: t.Any) -> tuple[str, str | None]:
    """(repository, tag) of an image reference; a digest or no tag gives tag None."""
    text = str(image or "").strip()
    digest = "@" in text
    text = text.split("@", 1)[0]
    last = text.rsplit("/", 1)[-1]
    if ":" in last:
        repository, _sep, tag = text.rpartition(":")
        return repository, None if digest else tag
    return text, None


def environment_of(service: t.Mapping[str, t.Any]) -> dict[str, str]:
    """A compose service's environment as a dict, from its list (KEY=value) or mapping form."""
    env = service.get("environment") or {}
    result: dict[str, str] = {}
    if isinstance(env, t.Mapping):
        for key, value in env.items():
            result[str(key)] = "" if value is None else str(value)
    elif isinstance(env, list):
        for item in env:
            if isinstance(item, t.Mapping):
                for key, value in item.items():
                    result[str(key)] = "" if value is None else str(value)
            else:
                key, _sep, value = str(item).partition("=")
                result[key] = value
    return result


def bind_source(service: t.Mapping[str, t.Any], target: str, project_dir: str) -> str | None:
    """The host path a service mounts at ``target`` (relative sources resolved against the project directory)."""
    for volume in service.get("volumes") or []:
        if isinstance(volume, t.Mapping):
            source, dest = volume.get("source"), volume.get("target")
        else:
            parts = str(volume).split(":")
            if len(parts) < 2:
                continue
            source, dest = parts[0], parts[1]
        if dest and str(dest).rstrip("/") == target.rstrip("/") and source:
            source = str(source)
            if source.startswith("./"):
                return "%s/%s" % (project_dir.rstrip("/"), source[2:].rstrip("/"))
            if source.startswith("/"):
                return source.rstrip("/")
            return None  # a named volume
    return None


def _version_of(image: str, expected_repository: str, known: t.Sequence[str]) -> str | None:
    repository, tag = image_tag(image)
    if not repository.endswith(expected_repository) or tag is None:
        return None
    tag = tag.lstrip("v")
    return tag if tag in known else None


def _postgres_major(image: str) -> int | None:
    _repository, tag = image_tag(image)
    match = re.match(r"^(\d+)", tag or "")
    return int(match.group(1)) if match else None


def containers_from_docker_ps(rows: t.Sequence[t.Any]) -> list[dict[str, t.Any]]:
    """{name, service, state} from ``docker ps --format '{{json .}}'`` rows (Labels is "k=v,k=v") or ready dicts."""
    result = []
    for row in rows or []:
        if not isinstance(row, t.Mapping):
            continue
        if "service" in row:
            result.append({"name": row.get("name"), "service": row["service"], "state": row.get("state", "")})
            continue
        labels = row.get("Labels") or ""
        if isinstance(labels, str):
            labels = dict(part.partition("=")[::2] for part in labels.split(",") if "=" in part)
        service = labels.get("com.docker.compose.service") if isinstance(labels, t.Mapping) else None
        if service:
            result.append({"name": str(row.get("Names", "")).split(",", maxsplit=1)[0], "service": service, "state": str(row.get("State", ""))})
    return result


# --------------------------------------------------------------------------- the mapping


def read_database(config: t.Mapping[str, t.Any], env: t.Mapping[str, str]) -> dict[str, t.Any]:
    """Database name, user and password from lemmy.hjson (parts or uri), the compose env as fallback."""
    database = config.get("database") or {}
    if not isinstance(database, t.Mapping):
        database = {}
    result = {
        "name": database.get("database") or env.get("POSTGRES_DB") or "lemmy",
        "user": database.get("user") or env.get("POSTGRES_USER") or "lemmy",
        "password": database.get("password"),
        "host": database.get("host") or "localhost",
    }
    uri = database.get("uri") or database.get("connection")
    if isinstance(uri, str) and uri.startswith(("postgres://", "postgresql://")):
        match = re.match(r"^postgres(?:ql)?://(?:([^:@/]+)(?::([^@/]*))?@)?([^/:?]+)(?::\d+)?(?:/([^?]+))?", uri)
        if match:
            result["user"] = match.group(1) or result["user"]
            result["password"] = match.group(2) if match.group(2) is not None else result["password"]
            result["host"] = match.group(3)
            result["name"] = match.group(4) or result["name"]
    if result["password"] is None:
        result["password"] = env.get("POSTGRES_PASSWORD")
    return result


def adopt(
    host: str,
    host_vars: t.Mapping[str, t.Any],
    project_dir: str,
    lemmy_hjson: str,
    compose: t.Mapping[str, t.Any],
    known_versions: t.Sequence[str],
    containers: t.Sequence[t.Mapping[str, t.Any]] | None = None,
    rate_limits: t.Mapping[str, t.Any] | None = None,
    password_min_length: int = 12,
    tls_files: t.Mapping[str, t.Any] | None = None,
) -> dict[str, t.Any]:
    """Everything the adoption needs to know about one lemmy-ansible host, or AdoptError listing every problem.

    ``containers`` are the project's containers as ``docker ps`` shows them ({name, service, state});
    ``rate_limits`` the row of local_site_rate_limit read from the running database; ``tls_files`` the
    certificate and key lemmy-ansible's certbot keeps for the domain ({certificate, key}), when they exist.
    """
    problems: list[str] = []
    warnings: list[str] = []
    try:
        config = parse_hjson(lemmy_hjson)
    except HjsonError as error:
        raise AdoptError(["%s; fix the file on %s (%s/lemmy.hjson) or restore it from lemmy-ansible's template" % (error, host, project_dir)])
    services = compose.get("services") if isinstance(compose, t.Mapping) else None
    if not isinstance(services, t.Mapping):
        raise AdoptError(["%s/docker-compose.yml on %s has no services; is this a lemmy-ansible directory?" % (project_dir, host)])
    for needed in ("lemmy", "postgres", "pictrs"):
        if not isinstance(services.get(needed), t.Mapping):
            problems.append(
                "%s/docker-compose.yml on %s has no %s service; lemmy-ansible 1.5 runs lemmy, lemmy-ui, pictrs and postgres in one project"
                % (project_dir, host, needed)
            )
    if problems:
        raise AdoptError(problems)

    project = compose_project_name(project_dir)
    domain = config.get("hostname")
    if not isinstance(domain, str) or not re.match(r"^[A-Za-z0-9.-]+$", domain or ""):
        problems.append("lemmy.hjson on %s: hostname is %r; it must be the instance's domain" % (host, domain))

    postgres_env = environment_of(services["postgres"])
    database = read_database(config, postgres_env)
    password = database.pop("password")
    if not isinstance(password, str) or not password:
        problems.append("lemmy.hjson on %s has no database password (database.password or database.uri); add it, it is in passwords/postgres.psk" % host)
    elif len(password) < password_min_length:
        problems.append(
            "the database password on %s has %d characters but this collection's postgresql role needs at least %d; "
            "change it in lemmy-ansible first (ALTER ROLE ... PASSWORD and lemmy.hjson), then adopt" % (host, len(password), password_min_length)
        )
    if database["host"] not in ("postgres", "localhost", "127.0.0.1"):
        warnings.append(
            "lemmy.hjson on %s points at the database host %s, not the compose postgres service; the dump is still taken from the postgres container"
            % (host, database["host"])
        )

    pictrs_config = config.get("pictrs") if isinstance(config.get("pictrs"), t.Mapping) else {}
    pictrs_env = environment_of(services["pictrs"])
    api_key = pictrs_config.get("api_key") or pictrs_env.get("PICTRS__SERVER__API_KEY")
    if not isinstance(api_key, str) or not api_key:
        problems.append("no pict-rs API key on %s: set pictrs.api_key in lemmy.hjson (lemmy-ansible uses the database password)" % host)
    repo_type = (pictrs_env.get("PICTRS__REPO__TYPE") or "sled").lower()
    if repo_type != "sled":
        problems.append(
            "pict-rs on %s uses the %s repo; adopting it is not supported (lemmy-ansible supports only sled), migrate pict-rs back to sled or adopt by hand"
            % (host, repo_type)
        )
    store_type = (pictrs_env.get("PICTRS__STORE__TYPE") or "filesystem").lower()
    pictrs_dir = bind_source(services["pictrs"], "/mnt", project_dir)
    if pictrs_dir is None:
        problems.append("the pictrs service on %s mounts no host directory at /mnt (lemmy-ansible uses ./volumes/pictrs); its files cannot be found" % host)
    postgres_dir = bind_source(services["postgres"], "/var/lib/postgresql/data", project_dir)

    lemmy_image = str(services["lemmy"].get("image") or "")
    ui_image = str((services.get("lemmy-ui") or {}).get("image") or "")
    version = _version_of(lemmy_image, "lemmy", known_versions)
    ui_version = _version_of(ui_image, "lemmy-ui", known_versions) if ui_image else version
    if version is None:
        problems.append(
            "the lemmy image on %s is %r; this collection adopts Lemmy %s to %s only, upgrade with lemmy-ansible first"
            % (host, lemmy_image, known_versions[0], known_versions[-1])
        )
    if ui_image and ui_version is None:
        problems.append("the lemmy-ui image on %s is %r, not a known release; pin it to a release in lemmy-ansible first" % (host, ui_image))
    pictrs_image = str(services["pictrs"].get("image") or "")
    postgres_image = str(services["postgres"].get("image") or "")

    by_service: dict[str, dict[str, t.Any]] = {}
    containers = None if containers is None else containers_from_docker_ps(containers)
    for item in containers or []:
        if item.get("service"):
            by_service[str(item["service"])] = dict(item)
    names = {service: by_service.get(service, {}).get("name") or container_name(project, service) for service in services}
    if containers is not None:
        postgres = by_service.get("postgres")
        if postgres is None:
            problems.append(
                "no container of compose project %s runs the postgres service on %s (expected %s); start the stack with lemmy-ansible first"
                % (project, host, container_name(project, "postgres"))
            )
        elif str(postgres.get("state", "")).lower() != "running" and not str(postgres.get("state", "")).lower().startswith("up"):
            problems.append(
                "the postgres container %s on %s is %s; start it (docker start %s) so it can be dumped"
                % (postgres["name"], host, postgres.get("state"), postgres["name"])
            )

    if problems:
        raise AdoptError(problems)

    group_vars: dict[str, t.Any] = {
        "lemmy_domain": domain,
        "lemmy_version": version,
        "pictrs_repo_type": "sled",
    }
    if ui_version and ui_version != version:
        group_vars["lemmy_ui_version"] = ui_version
    if database["name"] != "lemmy":
        group_vars["lemmy_database_name"] = database["name"]
    if database["user"] != "lemmy":
        group_vars["lemmy_database_user"] = database["user"]
    limits = read_rate_limits(rate_limits)
    if limits:
        group_vars["lemmy_rate_limits"] = limits
    email = config.get("email")
    if isinstance(email, t.Mapping) and email:
        group_vars["lemmy_server_email"] = dict(email)
        if str(email.get("smtp_server", "")).startswith("postfix:"):
            warnings.append(
                "lemmy.hjson on %s sends mail through the compose postfix container (%s), which stops with the stack; "
                "point lemmy_server_email.smtp_server at a mail relay the new processes can reach" % (host, email.get("smtp_server"))
            )
    extra = {key: value for key, value in config.items() if key not in MANAGED_KEYS}
    if extra:
        group_vars["lemmy_server_extra_config"] = extra

    host_entry: dict[str, t.Any] = {key: host_vars[key] for key in CONNECTION_KEYS if host_vars.get(key) not in (None, "")}
    if pictrs_dir:
        # pict-rs keeps its files where they are: the role mounts this directory at /mnt as compose did.
        host_entry["pictrs_data_dir"] = pictrs_dir
    if isinstance(tls_files, t.Mapping) and tls_files.get("certificate") and tls_files.get("key"):
        # certbot keeps renewing them (lemmy-ansible's cron); nginx reads them where they are.
        host_entry.update(nginx_tls_enabled=True, nginx_tls_certificate=tls_files["certificate"], nginx_tls_certificate_key=tls_files["key"])
    else:
        warnings.append(
            "no certbot certificate for %s was found on %s; the starter inventory serves plain HTTP, set nginx_tls_enabled, "
            "nginx_tls_certificate and nginx_tls_certificate_key for HTTPS" % (domain, host)
        )
    if store_type == "object_storage":
        host_entry["pictrs_store_type"] = "object_storage"
        warnings.append(
            "pict-rs on %s stores files in object storage; set pictrs_object_storage (endpoint, bucket_name, region, "
            "access_key, secret_key) in the starter inventory before the cutover" % host
        )
    inventory = {
        "all": {
            "hosts": {host: host_entry},
            "children": dict(
                [(group, {"hosts": {host: None}}) for group in GROUPS]
                + [("lemmy_ansible", {"hosts": {host: {"lemmy_ansible_dir": project_dir}}})]
            ),
        }
    }
    secrets = {"lemmy_database_password": password, "pictrs_api_key": api_key}

    postgres_major = _postgres_major(postgres_image)
    if repo_type == "sled" and not (pictrs_image.endswith(":0.5") or ":0.5." in pictrs_image):
        warnings.append("pict-rs on %s runs %s; this collection runs pict-rs 0.5 (pictrs_image), whose sled repo format is that of 0.5" % (host, pictrs_image))
    return {
        "host": host,
        "domain": domain,
        "project": project,
        "project_dir": project_dir,
        "containers": names,
        "stop_order": [
            {"name": names[s], "timeout": stop_timeout(s)}
            for s in [s for s in WRITER_SERVICES if s in names] + [s for s in sorted(services) if s not in WRITER_SERVICES and s != "postgres"]
        ],
        "postgres_stop": {"name": names["postgres"], "timeout": stop_timeout("postgres")},
        "postgres_container": names["postgres"],
        "paths": {
            "lemmy_hjson": "%s/lemmy.hjson" % project_dir,
            "compose": "%s/docker-compose.yml" % project_dir,
            "pictrs": pictrs_dir,
            "postgres": postgres_dir,
            "backup": "%s/fediscale-backup" % project_dir,
        },
        "database": database,
        "versions": {
            "lemmy": version,
            "lemmy_ui": ui_version,
            "pictrs_image": pictrs_image,
            "postgres_image": postgres_image,
            "postgres_major": postgres_major,
        },
        "pictrs": {"repo_type": repo_type, "store_type": store_type},
        "inventory": inventory,
        "group_vars": group_vars,
        "secrets": secrets,
        "warnings": warnings,
    }


def stop_timeout(service: str) -> int:
    """Seconds docker stop waits for a compose service: lemmy's senders save their queue state (up to 60 s),
    postgres finishes its shutdown checkpoint; the rest get compose's own 10 s."""
    return 60 if service in ("lemmy", "postgres") else 10


def read_rate_limits(row: t.Mapping[str, t.Any] | None) -> dict[str, int]:
    """The instance's own rate limits (a local_site_rate_limit row) as lemmy_rate_limits, or {} if unknown."""
    if not isinstance(row, t.Mapping):
        return {}
    limits = {}
    for key in RATE_LIMIT_KEYS:
        value = row.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            continue
        limits[key] = value
    return limits


def restore_mode(source_major: int | None, target_major: int | None) -> dict[str, t.Any]:
    """How to move the database into the collection's PostgreSQL.

    A plain SQL dump (pg_dump of the source server) restored with psql works across major versions in
    both directions for Lemmy's schema, where a custom-format dump from a newer pg_dump is refused by an
    older pg_restore. An older target than the source is allowed with a warning.
    """
    warnings = []
    if source_major is not None and target_major is not None and target_major < source_major:
        warnings.append(
            "the lemmy-ansible database runs PostgreSQL %d and the target runs %d; the plain SQL dump is restored with "
            "ON_ERROR_STOP, so an incompatible statement stops the restore with the new database left empty; set "
            "postgresql_version to %d or newer if your distribution has it" % (source_major, target_major, source_major)
        )
    return {"format": "plain", "warnings": warnings}
