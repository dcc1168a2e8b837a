# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
"""The manifest check of roles/lemmy_ui_static/files/static_sync.py: what counts as still published."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parents[3] / "roles" / "lemmy_ui_static" / "files" / "static_sync.py"
_SPEC = importlib.util.spec_from_file_location("static_sync", _SCRIPT)
assert _SPEC is not None and _SPEC.loader is not None
static_sync = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(static_sync)


def dist(tmp_path: Path) -> Path:
    root = tmp_path / "dist"
    (root / "js").mkdir(parents=True)
    (root / "js" / "client.js").write_bytes(b"console.log(1)\n")
    (root / "icons.svg").write_bytes(b"<svg/>")
    return root


def test_the_manifest_holds_size_and_md5_of_every_file(tmp_path: Path) -> None:
    manifest = static_sync.file_manifest(str(dist(tmp_path)))
    assert list(manifest) == ["icons.svg", "js/client.js"]
    assert manifest["js/client.js"] == {"size": 15, "md5": hashlib.md5(b"console.log(1)\n").hexdigest()}


def test_a_file_lost_or_changed_in_the_bucket_is_missing_and_extra_objects_do_not_matter(tmp_path: Path) -> None:
    files = static_sync.file_manifest(str(dist(tmp_path)))
    manifest = {"hash": "abc1234", "files": files}
    listing = [{"Path": p, "Size": f["size"], "IsDir": False, "Hashes": {"md5": f["md5"]}} for p, f in files.items()]
    listing.append({"Path": "other.js", "Size": 1, "IsDir": False, "Hashes": {"md5": "00"}})
    assert static_sync.missing_from(manifest, listing) == []
    stale = [dict(e, Hashes={"md5": "ff" * 16}) if e["Path"] == "js/client.js" else e for e in listing]
    assert static_sync.missing_from(manifest, stale) == ["js/client.js"]
    shorter = [dict(e, Size=1) if e["Path"] == "icons.svg" else e for e in listing]
    assert static_sync.missing_from(manifest, shorter) == ["icons.svg"]
    assert static_sync.missing_from(manifest, [e for e in listing if e["Path"] != "icons.svg"]) == ["icons.svg"]


def test_verify_says_incomplete_when_the_bucket_cannot_be_listed(tmp_path: Path) -> None:
    files = static_sync.file_manifest(str(dist(tmp_path)))
    # An rclone that fails, as for a bucket or prefix that does not exist yet.
    fake = tmp_path / "rclone"
    fake.write_text("#!/bin/sh\nexit 3\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), "--rclone", str(fake), "--config", "/dev/null", "--dest", "static:b/static/abc1234", "--verify-manifest"],
        input=json.dumps({"hash": "abc1234", "files": files}), capture_output=True, text=True, check=True,
    )
    result = json.loads(proc.stdout)
    assert result["complete"] is False and result["missing_count"] == 2 and result["files"] == 2


def test_an_empty_manifest_is_never_complete(tmp_path: Path) -> None:
    # An rclone that lists an empty prefix: an empty manifest proves nothing was published.
    fake = tmp_path / "rclone"
    fake.write_text("#!/bin/sh\necho '[]'\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), "--rclone", str(fake), "--config", "/dev/null", "--dest", "static:b/static/abc1234", "--verify-manifest"],
        input=json.dumps({"hash": "abc1234", "files": {}}), capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["complete"] is False


def test_verify_lists_size_and_md5_without_a_request_per_object(tmp_path: Path) -> None:
    # rclone reads an S3 object's modification time and content type with one HEAD request each; the check needs
    # neither, and on hundreds of files those requests are most of its time. This fake rclone refuses to list
    # unless both are switched off, and then lists the files as they were published.
    files = static_sync.file_manifest(str(dist(tmp_path)))
    listing = [{"Path": p, "Size": f["size"], "IsDir": False, "Hashes": {"md5": f["md5"]}} for p, f in files.items()]
    fake = tmp_path / "rclone"
    fake.write_text("#!/bin/sh\n"
                    "case \" $* \" in *' --no-modtime '*) ;; *) exit 4;; esac\n"
                    "case \" $* \" in *' --no-mimetype '*) ;; *) exit 4;; esac\n"
                    "cat <<'JSON'\n" + json.dumps(listing) + "\nJSON\n")
    fake.chmod(0o755)
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), "--rclone", str(fake), "--config", "/dev/null", "--dest", "static:b/static/abc1234", "--verify-manifest"],
        input=json.dumps({"hash": "abc1234", "files": files}), capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["complete"] is True


def test_a_config_given_on_stdin_lives_in_a_private_file_only_while_rclone_runs(tmp_path: Path) -> None:
    # The role sends the rclone config (it holds the keys) with the manifest on stdin, so that checking an earlier
    # publish needs no file on the controller. This fake rclone records the config file it was given and its mode.
    files = static_sync.file_manifest(str(dist(tmp_path)))
    listing = [{"Path": p, "Size": f["size"], "IsDir": False, "Hashes": {"md5": f["md5"]}} for p, f in files.items()]
    seen = tmp_path / "seen"
    fake = tmp_path / "rclone"
    fake.write_text("#!/bin/sh\n"
                    "while [ \"$#\" -gt 0 ]; do if [ \"$1\" = --config ]; then conf=\"$2\"; fi; shift; done\n"
                    f"echo \"$conf\" > {seen}.path; stat -c %a \"$conf\" > {seen}.mode; cat \"$conf\" > {seen}.text\n"
                    "cat <<'JSON'\n" + json.dumps(listing) + "\nJSON\n")
    fake.chmod(0o755)
    config = "[static]\ntype = s3\nsecret_access_key = not-on-any-command-line\n"
    proc = subprocess.run(
        [sys.executable, str(_SCRIPT), "--rclone", str(fake), "--config", "-", "--dest", "static:b/static/abc1234", "--verify-manifest"],
        input=json.dumps({"config": config, "manifest": {"hash": "abc1234", "files": files}}), capture_output=True, text=True, check=True,
    )
    assert json.loads(proc.stdout)["complete"] is True
    assert (tmp_path / "seen.text").read_text() == config
    assert (tmp_path / "seen.mode").read_text().strip() == "600"
    assert not Path((tmp_path / "seen.path").read_text().strip()).exists()
    assert "not-on-any-command-line" not in proc.stdout + proc.stderr
