# SPDX-License-Identifier: GPL-3.0-or-later
"""Every role documents exactly the variables it defaults, so its README and spec never drift."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROLES_DIR = Path(__file__).resolve().parents[3] / "roles"
ROLES = sorted(p.name for p in ROLES_DIR.iterdir() if (p / "tasks").is_dir()) if ROLES_DIR.is_dir() else []


def _load(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle) or {}


@pytest.mark.parametrize("role", ROLES)
def test_role_has_argument_specs(role: str) -> None:
    spec = ROLES_DIR / role / "meta" / "argument_specs.yml"
    assert spec.is_file(), f"roles/{role}: add meta/argument_specs.yml describing every variable in defaults/main.yml"
    assert "main" in _load(spec).get("argument_specs", {}), f"roles/{role}: argument_specs.yml needs a 'main' entry point"


@pytest.mark.parametrize("role", ROLES)
def test_defaults_match_argument_specs(role: str) -> None:
    defaults_file = ROLES_DIR / role / "defaults" / "main.yml"
    defaults = set(_load(defaults_file)) if defaults_file.is_file() else set()
    spec = _load(ROLES_DIR / role / "meta" / "argument_specs.yml")
    # Each entry point lists its own options only; together they document every default.
    options = {name for entry in spec["argument_specs"].values() for name in (entry.get("options") or {})}
    undocumented = sorted(defaults - options)
    assert not undocumented, f"roles/{role}: document {undocumented} in meta/argument_specs.yml"


@pytest.mark.parametrize("role", ROLES)
def test_public_variables_carry_the_role_prefix(role: str) -> None:
    spec = _load(ROLES_DIR / role / "meta" / "argument_specs.yml")
    options = {name for entry in spec["argument_specs"].values() for name in (entry.get("options") or {})}
    # Shared inventory-model variables (lemmy_*, pictrs_*, nginx_*) are read by several roles.
    allowed = (f"{role}_", "lemmy_", "pictrs_", "nginx_", "postgresql_", "docker_engine_")
    wrong = sorted(name for name in options if not name.startswith(allowed))
    assert not wrong, f"roles/{role}: rename {wrong} with the role prefix '{role}_'"


@pytest.mark.parametrize("role", ROLES)
def test_readme_mentions_every_option(role: str) -> None:
    readme = ROLES_DIR / role / "README.md"
    assert readme.is_file(), f"roles/{role}: add a README.md"
    text = readme.read_text(encoding="utf-8")
    spec = _load(ROLES_DIR / role / "meta" / "argument_specs.yml")
    options = {name for entry in spec["argument_specs"].values() for name in (entry.get("options") or {})}
    missing = sorted(name for name in options if name not in text)
    assert not missing, f"roles/{role}: README.md does not explain {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_a_side_entry_point_lists_only_what_its_tasks_read(role: str) -> None:
    """An entry point other than main documents the options its own task file (or the role's vars) reads, not main's list."""
    spec = _load(ROLES_DIR / role / "meta" / "argument_specs.yml")["argument_specs"]
    role_vars = ROLES_DIR / role / "vars" / "main.yml"
    shared = role_vars.read_text(encoding="utf-8") if role_vars.is_file() else ""
    for entry, body in spec.items():
        if entry == "main":
            continue
        text = (ROLES_DIR / role / "tasks" / f"{entry}.yml").read_text(encoding="utf-8")
        # With the task files it includes.
        for included in re.findall(r"(?:include|import)_tasks: ([\w.]+\.yml)", text):
            text += (ROLES_DIR / role / "tasks" / included).read_text(encoding="utf-8")
        unread = sorted(name for name in (body.get("options") or {}) if name not in text and name not in shared)
        assert not unread, f"roles/{role}: the {entry} entry point lists {unread}, which tasks/{entry}.yml does not read"
