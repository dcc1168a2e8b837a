# SPDX-License-Identifier: GPL-3.0-or-later
"""Generate the lemmy-ui stand-in's ``dist/`` tree for one version.

Runs at image build time. The tree has the shape and size of a real lemmy-ui 0.19 build
(facts §0 and §6): about 680 files and 10 MB.

- ``js/server.js`` and ``js/client.js`` (the webpack entry bundles, about 1.3 and 1.0 MB),
  their ``.LICENSE.txt`` files, and about 560 lazily loaded chunks ``js/<id>.client.js``
  (webpack's ``chunkFilename: "js/[name].client.js"`` with deterministic numeric ids:
  highlight.js languages, date-fns locales, translations), some with a ``.LICENSE.txt``;
- ``styles/styles.css``;
- ``assets/`` as copied from lemmy-ui's ``src/assets``: ``icons/`` (favicon.svg and PNG
  icons in the real sizes), ``images/``, ``symbols.svg``, ``css/main.css``,
  ``css/code-themes/*.css`` and ``css/themes/`` with each theme's ``.css`` and ``.scss``;
- ``service-worker.js``.

Every file names the version and the asset hash, so two versions never ship identical
files; chunk names are the same in every version, as webpack's deterministic ids are.
The output is deterministic: the same version always gives byte-identical files.
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

# lemmy-ui 0.19's src/assets/css/themes: a compiled .css per theme, most with their .scss source.
THEMES = ("litely", "darkly", "litely-red", "darkly-red", "litely-compact", "darkly-compact", "darkly-pureblack",
          "i386", "i386-dark", "vaporwave-dark", "vaporwave-light", "RBlind-Dark", "RBlind-Light")
THEMES_WITHOUT_SCSS = ("i386",)
THEME_VARIABLES = ("RBlind-Dark", "RBlind-Light", "darkly-compact", "darkly-pureblack", "darkly-red", "darkly",
                   "i386-dark", "litely-compact", "litely-red", "litely", "vaporwave-dark", "vaporwave-light", "vaporwave")
CODE_THEMES = ("atom-one-light", "atom-one-dark")
ICON_SIZES = (72, 96, 128, 144, 152, 192, 384, 512)

CHUNKS = 560            # lazily loaded js/<id>.client.js chunks
LICENSED_CHUNK_EVERY = 10  # every tenth chunk has its extracted license comments beside it
THEME_BYTES = 200_000
SERVER_BYTES = 1_500_000
CLIENT_BYTES = 1_200_000
STYLES_BYTES = 240_000


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


def _hex(seed: str, length: int) -> str:
    """Deterministic pseudo-random hex digits (no quotes, slashes or other syntax)."""
    return hashlib.shake_256(seed.encode()).hexdigest((length + 1) // 2)[:length]


def _js_body(seed: str, size: int) -> str:
    """Minified-looking JavaScript of about ``size`` bytes: one function per line."""
    digits = _hex(seed, size * 96 // 150)  # a line of 150 bytes carries 96 digits
    lines = []
    for start in range(0, len(digits) - 48, 96):
        part = digits[start:start + 96]
        lines.append(f'function _{part[:7]}(e,t){{return e["{part[7:13]}"]=t^0x{part[13:19]},"{part[19:]}"}}')
    return "\n".join(lines) + "\n"


def _css_body(seed: str, size: int) -> str:
    """Compiled-looking CSS of about ``size`` bytes."""
    digits = _hex(seed, size * 80 // 112)  # a rule of 112 bytes carries 80 digits
    rules = []
    for start in range(0, len(digits) - 40, 80):
        part = digits[start:start + 80]
        rules.append(f".c-{part[:8]}{{color:#{part[8:14]};background:#{part[14:20]};--v-{part[20:28]}:{part[28:]}}}")
    return "\n".join(rules) + "\n"


def _chunk_id(index: int) -> int:
    """webpack's deterministic chunk ids: numbers from a hash of the module path, the same in every build."""
    return int(hashlib.sha256(f"chunk {index}".encode()).hexdigest()[:8], 16) % 99_991


def _chunk_size(index: int) -> int:
    """Chunk sizes spread like the real ones: mostly small (1-15 KB), a few large."""
    spread = int(hashlib.sha256(f"size {index}".encode()).hexdigest()[:4], 16)
    return 1_000 + spread % 14_000 + (40_000 if index % 50 == 0 else 0)


def _license(stamp: str, name: str) -> bytes:
    return f"/*! For license information please see {name} ({stamp}) */\n/** @license AGPL-3.0 */\n".encode()


def dist_files(version: str) -> dict[str, bytes]:
    """Return the dist tree of one version as {relative path: content}."""
    h = asset_hash(version)
    stamp = f"lemmy-ui {version} ({h})"
    # A colour derived from the hash makes the icons differ between versions too.
    rgb = (int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16))
    files: dict[str, bytes] = {}
    # The only place naming the static prefix: deployments grep '"/static/' here.
    files["js/server.js"] = (
        f"/*! For license information please see server.js.LICENSE.txt */\n"
        f"/* {stamp} server bundle (stand-in) */\n"
        f"var UI_VERSION = {json.dumps(version)};\n"
        f"function getStaticDir() {{ return \"/static/{h}\"; }}\n"
        + _js_body(f"{stamp} server", SERVER_BYTES)
    ).encode()
    files["js/server.js.LICENSE.txt"] = _license(stamp, "server.js")
    files["js/client.js"] = (
        f"/*! For license information please see client.js.LICENSE.txt */\n"
        f"/* {stamp} client bundle (stand-in) */\n"
        f"window.__lemmyUi = {{version: {json.dumps(version)}, hash: {json.dumps(h)}}};\n"
        + _js_body(f"{stamp} client", CLIENT_BYTES)
    ).encode()
    files["js/client.js.LICENSE.txt"] = _license(stamp, "client.js")
    ids = sorted({_chunk_id(i) for i in range(CHUNKS * 2)})[:CHUNKS]
    for index, chunk_id in enumerate(ids):
        name = f"js/{chunk_id}.client.js"
        files[name] = (
            f"/* {stamp} chunk {chunk_id} */\n"
            f'"use strict";(self.webpackChunklemmy_ui=self.webpackChunklemmy_ui||[]).push([[{chunk_id}],{{\n'
            + _js_body(f"{stamp} chunk {chunk_id}", _chunk_size(index))
            + "}]);\n"
        ).encode()
        if index % LICENSED_CHUNK_EVERY == 0:
            files[f"{name}.LICENSE.txt"] = _license(stamp, f"{chunk_id}.client.js")
    files["styles/styles.css"] = (
        f"/* {stamp} */\nbody {{ margin: 0; font-family: sans-serif; }}\n" + _css_body(f"{stamp} styles", STYLES_BYTES)
    ).encode()
    files["service-worker.js"] = (
        f"/* {stamp} service worker (stand-in) */\nself.addEventListener('fetch', function () {{}});\n"
        + _js_body(f"{stamp} service worker", 20_000)
    ).encode()
    files["assets/icons/favicon.svg"] = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><!-- {stamp} -->'
        f'<rect width="16" height="16" fill="#{h[:6]}"/></svg>\n'
    ).encode()
    files["assets/icons/apple-touch-icon.png"] = _png(rgb, 180)
    for size in ICON_SIZES:
        files[f"assets/icons/icon-{size}x{size}.png"] = _png(rgb, size)
    files["assets/images/broken-image-fallback.png"] = _png((rgb[2], rgb[1], rgb[0]), 128)
    symbols = "".join(f'<symbol id="icon-{_hex(f"{stamp} symbol {n}", 8)}" viewBox="0 0 24 24"><path d="M{n} 0h24v24H0z"/></symbol>\n'
                      for n in range(600))
    files["assets/symbols.svg"] = f'<svg xmlns="http://www.w3.org/2000/svg"><!-- {stamp} -->\n{symbols}</svg>\n'.encode()
    files["assets/css/main.css"] = (f"/* main, {stamp} */\n" + _css_body(f"{stamp} main", 7_000)).encode()
    for theme in THEMES:
        dark = "dark" in theme.lower()
        files[f"assets/css/themes/{theme}.css"] = (
            f"/* {theme} theme, {stamp} */\n:root {{ --bs-body-bg: {'#222' if dark else '#fff'}; }}\n"
            + _css_body(f"{stamp} theme {theme}", THEME_BYTES)
        ).encode()
        if theme not in THEMES_WITHOUT_SCSS:
            files[f"assets/css/themes/{theme}.scss"] = f'// {theme}, {stamp}\n@import "variables.{theme}";\n'.encode()
    for name in THEME_VARIABLES:
        files[f"assets/css/themes/_variables.{name}.scss"] = f"// {name} variables, {stamp}\n$primary: #{h[:6]};\n".encode()
    files["assets/css/themes/_variables.scss"] = f"// shared variables, {stamp}\n$enable-shadows: true;\n".encode()
    files["assets/css/themes/rblind/RBlind.css"] = (f"/* RBlind, {stamp} */\n" + _css_body(f"{stamp} rblind", 16_000)).encode()
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
    files = dist_files(args.version)
    for rel, content in sorted(files.items()):
        path = os.path.join(args.out, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content)
    size = sum(len(content) for content in files.values())
    print(f"lemmy-ui {args.version}: dist in {args.out}, {len(files)} files, {size} bytes, static hash {asset_hash(args.version)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
