# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate the lemmy-ui stand-in's ``dist/`` tree for one version.

Runs at image build time. The layout follows the real image (facts §6):
``js/server.js``, ``js/client.js``, ``styles/styles.css``, ``assets/icons/``,
``assets/symbols.svg``, ``assets/css/themes/*.css``, ``assets/css/code-themes/*.css``
and ``service-worker.js``. Every file names the version and the asset hash, so two
versions never ship identical files. The output is deterministic: the same version
always gives byte-identical files.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import struct
import sys
import zlib

# Real short commit hashes of the lemmy-ui release tags (facts §6).
KNOWN_HASHES: dict[str, str] = {
    "0.19.19": "0799f19b",
    "0.19.20": "18ec4ba2",
}

THEMES = ("litely", "darkly", "litely-red", "darkly-red")
CODE_THEMES = ("atom-one-light", "atom-one-dark")


def asset_hash(version: str) -> str:
    """Return the 8-hex-digit asset hash of a version.

    Versions without a known real hash get an invented, deterministic one: the
    first 8 hex digits of sha256("lemmy-ui <version>").
    """
    if version in KNOWN_HASHES:
        return KNOWN_HASHES[version]
    return hashlib.sha256(f"lemmy-ui {version}".encode()).hexdigest()[:8]


def _png(rgb: tuple[int, int, int], size: int = 16) -> bytes:
    """Return a valid single-colour RGB PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    row = b"\x00" + bytes(rgb) * size
    raw = row * size
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def dist_files(version: str) -> dict[str, bytes]:
    """Return the dist tree of one version as {relative path: content}."""
    h = asset_hash(version)
    stamp = f"lemmy-ui {version} ({h})"
    # A colour derived from the hash makes the icons differ between versions too.
    rgb = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    files: dict[str, bytes] = {}
    # The only place naming the static prefix: deployments grep '"/static/' here.
    files["js/server.js"] = (
        f"/* {stamp} server bundle (stand-in) */\n"
        f"var UI_VERSION = {json.dumps(version)};\n"
        f"function getStaticDir() {{ return \"/static/{h}\"; }}\n"
    ).encode()
    files["js/client.js"] = (
        f"/* {stamp} client bundle (stand-in) */\n"
        f"window.__lemmyUi = {{version: {json.dumps(version)}, hash: {json.dumps(h)}}};\n"
    ).encode()
    files["styles/styles.css"] = f"/* {stamp} */\nbody {{ margin: 0; font-family: sans-serif; }}\n".encode()
    files["service-worker.js"] = f"/* {stamp} service worker (stand-in) */\nself.addEventListener('fetch', function () {{}});\n".encode()
    files["assets/icons/favicon.svg"] = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><!-- {stamp} -->'
        f'<rect width="16" height="16" fill="#{h[:6]}"/></svg>\n'
    ).encode()
    files["assets/icons/apple-touch-icon.png"] = _png(rgb)
    files["assets/icons/icon-96x96.png"] = _png(rgb, 96)
    files["assets/symbols.svg"] = f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {stamp} --></svg>\n'.encode()
    for theme in THEMES:
        dark = theme.startswith("darkly")
        files[f"assets/css/themes/{theme}.css"] = (
            f"/* {theme} theme, {stamp} */\n:root {{ --bs-body-bg: {'#222' if dark else '#fff'}; }}\n"
        ).encode()
    for theme in CODE_THEMES:
        files[f"assets/css/code-themes/{theme}.css"] = f"/* {theme} code theme, {stamp} */\npre {{ padding: 1em; }}\n".encode()
    return files


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--version", required=True, help="lemmy-ui version, e.g. 0.19.20")
    parser.add_argument("--out", required=True, help="dist directory to create")
    args = parser.parse_args(argv)
    if not args.version:
        parser.error("--version must not be empty")
    for rel, content in sorted(dist_files(args.version).items()):
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
    print(f"lemmy-ui {args.version}: dist in {args.out}, static hash {asset_hash(args.version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
