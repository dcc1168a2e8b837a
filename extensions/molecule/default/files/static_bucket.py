# SPDX-License-Identifier: GPL-3.0-or-later
"""Look at (and damage) the lab bucket of lemmy-ui's static files, for verify_static.yml.

  hash --image I                the /static/<hash> that I's dist/js/server.js names
  snapshot --exclude-prefix P   every object outside P: {key: [etag, size, last modified]}
  check --image I --prefix P    every file of I's /app/dist is at P<path>, same size and MD5,
                                the content type of its extension, public-read, nothing extra
  damage --prefix P KEY...      overwrite the first KEY with other bytes, delete the others

The keys are read from the files named by --access-key-file and --secret-key-file, never
taken from the command line. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile

import boto3
import yaml

ALL_USERS = "http://acs.amazonaws.com/groups/global/AllUsers"


def client(args: argparse.Namespace):
    with open(args.access_key_file, encoding="utf-8") as handle:
        access = handle.read().split()[0]
    with open(args.secret_key_file, encoding="utf-8") as handle:
        secret = handle.read().split()[0]
    return boto3.client("s3", endpoint_url=args.endpoint, region_name="us-east-1",
                        aws_access_key_id=access, aws_secret_access_key=secret)


def objects(s3, bucket: str, prefix: str = "") -> dict[str, dict]:
    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            found[item["Key"]] = item
    return found


def snapshot(s3, args: argparse.Namespace) -> dict:
    return {key: [item["ETag"], item["Size"], item["LastModified"].isoformat()]
            for key, item in sorted(objects(s3, args.bucket).items()) if not key.startswith(args.exclude_prefix)}


def dist_of(image: str, into: str) -> str:
    name = f"fsl-verify-static-{os.urandom(4).hex()}"
    subprocess.run(["docker", "create", "--name", name, image], check=True, capture_output=True)
    try:
        subprocess.run(["docker", "cp", f"{name}:/app/dist", os.path.join(into, "dist")], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)
    return os.path.join(into, "dist")


def asset_hash(_s3, args: argparse.Namespace) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(dist_of(args.image, tmp), "js", "server.js"), encoding="utf-8") as handle:
            found = sorted(set(re.findall(r'"/static/([0-9a-f]{6,40})"', handle.read())))
    if len(found) != 1:
        raise SystemExit(f"{args.image}: dist/js/server.js names {found}, want exactly one /static/<hash>")
    return {"hash": found[0]}


def content_types(vars_file: str) -> dict[str, str]:
    with open(vars_file, encoding="utf-8") as handle:
        return yaml.safe_load(handle)["_lemmy_ui_static_default_content_types"]


def check(s3, args: argparse.Namespace) -> dict:
    types = content_types(args.role_vars)
    problems: list[str] = []
    in_bucket = objects(s3, args.bucket, args.prefix)
    with tempfile.TemporaryDirectory() as tmp:
        dist = dist_of(args.image, tmp)
        local = {}
        for folder, _dirs, names in os.walk(dist):
            for name in names:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    data = handle.read()
                local[os.path.relpath(path, dist)] = (len(data), hashlib.md5(data).hexdigest())  # noqa: S324 (S3's ETag)
    for rel, (size, md5) in sorted(local.items()):
        key = args.prefix + rel
        item = in_bucket.get(key)
        if item is None:
            problems.append(f"{key}: missing")
            continue
        if item["Size"] != size or item["ETag"].strip('"') != md5:
            problems.append(f"{key}: size {item['Size']} etag {item['ETag']}, want {size} and {md5}")
        head = s3.head_object(Bucket=args.bucket, Key=key)
        ext = rel.rsplit(".", 1)[-1].lower() if "." in os.path.basename(rel) else ""
        want_type = types.get(ext, "application/octet-stream")
        if head.get("ContentType") != want_type:
            problems.append(f"{key}: Content-Type {head.get('ContentType')!r}, want {want_type!r}")
        if "immutable" not in head.get("CacheControl", ""):
            problems.append(f"{key}: Cache-Control {head.get('CacheControl')!r}")
        grants = s3.get_object_acl(Bucket=args.bucket, Key=key)["Grants"]
        if not any(g["Grantee"].get("URI") == ALL_USERS and g["Permission"] == "READ" for g in grants):
            problems.append(f"{key}: not public-read ({grants})")
    extra = sorted(set(in_bucket) - {args.prefix + rel for rel in local})
    problems += [f"{key}: in the bucket but not in dist/" for key in extra]
    return {"files": len(local), "bytes": sum(size for size, _md5 in local.values()), "problems": problems}


def damage(s3, args: argparse.Namespace) -> dict:
    first, *others = args.keys
    s3.put_object(Bucket=args.bucket, Key=args.prefix + first, Body=b"stale content\n", ACL="public-read")
    for key in others:
        s3.delete_object(Bucket=args.bucket, Key=args.prefix + key)
    return {"overwritten": [first], "deleted": others}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--access-key-file", required=True)
    parser.add_argument("--secret-key-file", required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    hsh = commands.add_parser("hash")
    hsh.add_argument("--image", required=True)
    snap = commands.add_parser("snapshot")
    snap.add_argument("--exclude-prefix", required=True)
    chk = commands.add_parser("check")
    chk.add_argument("--image", required=True)
    chk.add_argument("--prefix", required=True)
    chk.add_argument("--role-vars", required=True, help="the role's vars/main.yml (its content-type table)")
    dmg = commands.add_parser("damage")
    dmg.add_argument("--prefix", required=True)
    dmg.add_argument("keys", nargs="+")
    args = parser.parse_args(argv)
    s3 = client(args)
    result = {"hash": asset_hash, "snapshot": snapshot, "check": check, "damage": damage}[args.command](s3, args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
