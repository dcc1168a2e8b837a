# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

# Note that this doc fragment is **PRIVATE** to the collection. It can have breaking changes at any time.
# Do not use this from other collections or standalone plugins/modules!

from __future__ import annotations


class ModuleDocFragment:
    """Shared attribute documentation for the modules of fediscale.lemmy."""

    # Standard fragment: describes the attributes; each module states its own support.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in C(check_mode) and return the changed status it predicts without modifying the target.
  diff_mode:
    description: Returns details on what has changed (or would change in C(check_mode)) when run in diff mode.
  idempotent:
    description:
      - Run twice in a row outside check mode with the same arguments, the second run reports no change.
      - This assumes that the system the module manages or queries has not changed in a relevant way meanwhile.
"""

    # Use together with the standard fragment, for modules that only compute or read.
    READ_ONLY = r"""
options: {}
attributes:
  check_mode:
    support: full
    details:
      - This action changes nothing, so check mode returns the same result as a normal run.
  diff_mode:
    support: N/A
    details:
      - This action changes nothing.
  idempotent:
    support: full
    details:
      - This action changes nothing.
"""

    # Use together with the standard fragment.
    ACTIONGROUP_LEMMY = r"""
options: {}
attributes:
  action_group:
    description: Use C(group/fediscale.lemmy.lemmy) in C(module_defaults) to set defaults for this module.
    support: full
    membership:
      - fediscale.lemmy.lemmy
"""
