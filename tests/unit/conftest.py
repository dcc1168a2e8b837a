# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make ``ansible_collections.fediscale.lemmy`` importable when pytest runs from the checkout.

ansible-test runs the tests from a real ``ansible_collections/fediscale/lemmy`` tree and needs
nothing. From the checkout, ``.collections/`` (created by scripts/setup.sh) holds a link
``ansible_collections/fediscale/lemmy`` to the checkout itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[2]
_LINKED = _ROOT / ".collections"
if "ansible_collections" not in _ROOT.parts and (_LINKED / "ansible_collections" / "fediscale" / "lemmy").exists():
    if str(_LINKED) not in sys.path:
        sys.path.insert(0, str(_LINKED))
