# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A regular expression inside a ``{{ }}`` template that Jinja receives with a doubled backslash
(``'\\\\s+'`` in a block scalar, ``'\\\\\\\\s+'`` in a double-quoted one) matches a literal backslash, so
the filter silently finds nothing. Conditionals (``when:``, ``that:``) are not affected."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

_ROOT = Path(__file__).resolve().parents[2]
_FOLDERS = ("roles", "playbooks", "extensions", "tests/load")


def _templates_with_doubled_backslashes(text: str) -> list[int]:
    lines = []
    for event in yaml.parse(text):
        if isinstance(event, yaml.ScalarEvent) and "{{" in event.value and "\\\\" in event.value:
            lines.append(event.start_mark.line + 1)
    return lines


def test_the_check_finds_the_mistake() -> None:
    assert _templates_with_doubled_backslashes("a: >-\n  {{ x | regex_replace('\\\\s+', ' ') }}\n") == [1]
    assert _templates_with_doubled_backslashes('a: "{{ x | regex_replace(\'\\\\\\\\s+\', \' \') }}"\n') == [1]
    assert _templates_with_doubled_backslashes('a: "{{ x | regex_replace(\'\\\\s+\', \' \') }}"\n') == []
    assert _templates_with_doubled_backslashes("a: >-\n  {{ x | regex_replace('\\s+', ' ') }}\n") == []


@pytest.mark.parametrize(
    "path", [p for folder in _FOLDERS for p in sorted((_ROOT / folder).rglob("*.yml"))], ids=lambda p: str(p.relative_to(_ROOT))
)
def test_no_template_hands_jinja_a_doubled_backslash(path: Path) -> None:
    assert _templates_with_doubled_backslashes(path.read_text(encoding="utf-8")) == []
