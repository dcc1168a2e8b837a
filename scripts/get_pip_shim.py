# SPDX-License-Identifier: GPL-3.0-or-later
"""Offline stand-in for the pip bootstrap script that ansible-test downloads.

ansible-test fetches get-pip.py from the internet, which is unreachable here.
This shim bootstraps pip from the interpreter's bundled ensurepip instead, then
installs whatever ansible-test asked for. ensurepip runs in a subprocess
because, in-process, it clears the PIP_* variables that point pip at the
proxy's certificate bundle.
"""
from __future__ import annotations

import subprocess
import sys


def main() -> int:
    subprocess.run([sys.executable, "-m", "ensurepip", "--default-pip"], check=True)
    args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
    if args:
        subprocess.run([sys.executable, "-m", "pip", "install", *args], check=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
