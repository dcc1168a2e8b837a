# SPDX-License-Identifier: GPL-3.0-or-later
"""Copy a dist/ tree to an S3 prefix with rclone, one rclone run per content type.

rclone compares every file with the bucket by MD5 (``--checksum``), uploads only the
missing or different ones in parallel, and sets the ACL, encryption and endpoint from
its config file (which holds the keys and is written 0600 by the role). rclone takes a
single Content-Type for a run, so the files are grouped by the content type of their
extension and each group is one run over an exact list of files.

Prints one JSON object: files, uploaded (paths), skipped, bytes, seconds, runs. With
--manifest-out it also writes the manifest of what it published: the hash, and the size
and MD5 of every file.

With --verify-manifest (a manifest on stdin) it uploads nothing: it lists the prefix once
and prints complete: true when every file of the manifest is there with its size and MD5,
so a publish of a version already in the bucket needs neither the image's files nor a
comparison per file. Nothing here reads or prints the keys.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

DEFAULT_TYPE = "application/octet-stream"
UPLOADED = ("Copied (new)", "Copied (replaced existing)", "Skipped copy as --dry-run is set")


def extension(path: str) -> str:
    name = os.path.basename(path)
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def group_by_type(root: str, types: dict[str, str]) -> dict[str, list[str]]:
    """Return {content type: sorted relative paths} for every file under root."""
    groups: dict[str, list[str]] = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            rel = os.path.relpath(os.path.join(folder, name), root)
            groups.setdefault(types.get(extension(rel), DEFAULT_TYPE), []).append(rel)
    return {ctype: sorted(paths) for ctype, paths in sorted(groups.items())}


def parse_log(stderr: str) -> tuple[list[str], dict, list[str]]:
    """Return (uploaded paths, final stats, error messages) from rclone's JSON log."""
    uploaded, stats, errors = [], {}, []
    for line in stderr.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            if line.strip():
                errors.append(line.strip())
            continue
        msg = entry.get("msg", "")
        if "stats" in entry:
            stats = entry["stats"]
        elif any(msg.startswith(m) for m in UPLOADED) and entry.get("object"):
            uploaded.append(entry["object"])
        elif entry.get("level") in ("error", "critical"):
            errors.append(f"{entry.get('object', '')}: {msg}".lstrip(": "))
    return uploaded, stats, errors


def run_group(args: argparse.Namespace, ctype: str, paths: list[str]) -> dict:
    with tempfile.NamedTemporaryFile("w", prefix="files.", dir=args.work_dir, delete=False) as listing:
        listing.write("\n".join(paths) + "\n")
    argv = [args.rclone, "--config", args.config, "copy", args.source, args.dest,
            "--files-from-raw", listing.name, "--checksum",
            "--transfers", str(args.transfers), "--checkers", str(args.transfers),
            "--header-upload", f"Content-Type: {ctype}",
            "--use-json-log", "--log-level", "INFO", "--stats", "1h", "--stats-log-level", "NOTICE"]
    for header in args.header:
        argv += ["--header-upload", header]
    if args.dry_run:
        argv.append("--dry-run")
    if args.no_check_certificate:
        argv.append("--no-check-certificate")
    # rclone 1.60 refuses to start when AWS_CA_BUNDLE is set (its HTTP transport cannot take
    # a custom bundle that way); Go reads the system CAs and SSL_CERT_FILE instead.
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    finally:
        os.unlink(listing.name)
    uploaded, stats, errors = parse_log(proc.stderr)
    if proc.returncode != 0:
        raise RuntimeError(f"rclone copy of the {ctype} files to {args.dest} failed (exit {proc.returncode}): "
                           + ("; ".join(errors[-5:]) or proc.stdout.strip() or "no message"))
    return {"content_type": ctype, "files": len(paths), "uploaded": sorted(uploaded), "bytes": int(stats.get("bytes", 0))}


def file_manifest(root: str) -> dict[str, dict]:
    """{relative path: {size, md5}} of every file under root."""
    files = {}
    for folder, dirs, names in os.walk(root):
        dirs.sort()
        for name in names:
            path = os.path.join(folder, name)
            digest = hashlib.md5(usedforsecurity=False)
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            files[os.path.relpath(path, root)] = {"size": os.path.getsize(path), "md5": digest.hexdigest()}
    return dict(sorted(files.items()))


def missing_from(manifest: dict, listing: list[dict]) -> list[str]:
    """The manifest's files that the bucket listing (rclone lsjson --hash) lacks or holds with another size or MD5."""
    seen = {entry.get("Path"): entry for entry in listing if not entry.get("IsDir")}
    missing = []
    for path, want in sorted(manifest.get("files", {}).items()):
        entry = seen.get(path)
        md5 = ((entry or {}).get("Hashes") or {}).get("md5")
        if entry is None or entry.get("Size") != want["size"] or (md5 is not None and md5 != want["md5"]):
            missing.append(path)
    return missing


def verify(args: argparse.Namespace, manifest: dict) -> dict:
    # Size and MD5 come with the listing itself (S3's ETag); the modification time and the content type would
    # cost one HEAD request per object, which on hundreds of files is most of the check.
    argv = [args.rclone, "--config", args.config, "lsjson", "--recursive", "--files-only", "--hash", "--hash-type", "md5",
            "--no-modtime", "--no-mimetype", args.dest]
    if args.no_check_certificate:
        argv.append("--no-check-certificate")
    env = {k: v for k, v in os.environ.items() if k != "AWS_CA_BUNDLE"}
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        # A prefix that does not exist yet lists as an error on some servers: nothing is there.
        listing: list[dict] = []
    else:
        listing = json.loads(proc.stdout or "[]")
    missing = missing_from(manifest, listing)
    files = len(manifest.get("files", {}))
    return {"complete": files > 0 and not missing, "missing": missing[:20], "missing_count": len(missing), "files": files,
            "uploaded": [], "skipped": files, "bytes": 0}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rclone", default="rclone")
    parser.add_argument("--config", required=True,
                        help="rclone config file (0600, holds the keys); with --verify-manifest, - reads {config, manifest} on stdin")
    parser.add_argument("--source", help="the dist/ directory (not with --verify-manifest)")
    parser.add_argument("--dest", required=True, help="remote:bucket/prefix")
    parser.add_argument("--types", default="{}", help="JSON {extension: content type}")
    parser.add_argument("--transfers", type=int, default=16)
    parser.add_argument("--header", action="append", default=[], help="extra header stored with every object")
    parser.add_argument("--work-dir", help="private directory for the file lists")
    parser.add_argument("--manifest-out", help="write the manifest of what was published here")
    parser.add_argument("--hash", default="", help="the asset hash, recorded in the manifest")
    parser.add_argument("--verify-manifest", action="store_true", help="read a manifest on stdin and only check the bucket")
    parser.add_argument("--dry-run", action="store_true", help="compare only; report what would be uploaded")
    parser.add_argument("--no-check-certificate", action="store_true", help="do not verify the endpoint's TLS certificate")
    args = parser.parse_args(argv)
    started = time.monotonic()
    if args.verify_manifest:
        data = json.loads(sys.stdin.read() or "{}")
        if args.config != "-":
            result = verify(args, data)
        else:
            # The config (it holds the keys) came on stdin with the manifest: it lives in a private 0600 file
            # only while rclone runs.
            folder = tempfile.mkdtemp(prefix="static-verify.")
            try:
                args.config = os.path.join(folder, "rclone.conf")
                with open(os.open(args.config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as handle:
                    handle.write(str(data.get("config") or ""))
                result = verify(args, data.get("manifest") or {})
            finally:
                shutil.rmtree(folder, ignore_errors=True)
        result["seconds"] = round(time.monotonic() - started, 2)
        print(json.dumps(result))
        return 0
    if not args.source or not args.work_dir:
        parser.error("--source and --work-dir are needed to publish")
    groups = group_by_type(args.source, json.loads(args.types))
    try:
        runs = [run_group(args, ctype, paths) for ctype, paths in groups.items()]
    except (RuntimeError, OSError) as error:
        print(json.dumps({"failed": True, "msg": str(error)}))
        return 1
    uploaded = sorted(path for run in runs for path in run["uploaded"])
    files = sum(run["files"] for run in runs)
    if args.manifest_out and not args.dry_run:
        with open(args.manifest_out, "w", encoding="utf-8") as handle:
            json.dump({"hash": args.hash, "files": file_manifest(args.source)}, handle, sort_keys=True)
    print(json.dumps({
        "files": files,
        "uploaded": uploaded,
        "skipped": files - len(uploaded),
        "bytes": sum(run["bytes"] for run in runs),
        "seconds": round(time.monotonic() - started, 2),
        "dry_run": args.dry_run,
        "runs": [dict(run, uploaded=len(run["uploaded"])) for run in runs],
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
