# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How long publishing lemmy-ui's static files takes on a running lab (role lemmy_ui_static).

Prints, for the lab's lemmy-ui image:
  - a fresh version: every object under static/<hash>/ is deleted first, then the role publishes
    (site.yml --tags lemmy_ui_static_configure,lemmy_ui_static_run);
  - a no-op: the same publish again, everything already there;
  - baseline: the role's former per-file upload (one amazon.aws.s3_object task loop item per file),
    timed on a sample of --sample files under a throwaway prefix and extrapolated to the whole
    dist/ (clearly an estimate: per-file cost times the file count).
Each publish line gives the whole playbook's wall time and the copy step's own time (from the
role's summary line). Nothing is asserted about speed.

  .venv/bin/python benchmarks/static_publish.py --lab-name fsl-dev --http-port 18080 --s3-port 19000
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import boto3
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SUMMARY = re.compile(r"(\d+) files under s3://\S+/static/[0-9a-f]+/, (\d+) (?:would be )?uploaded \(([^)]*)\).*?, (\d+) already there, in ([0-9.]+) s")
BASELINE_PREFIX = "static/benchmark-per-file/"


def lab_vars(args: argparse.Namespace) -> list[str]:
    return ["-e", f"lab_name={args.lab_name}", "-e", f"lab_http_port={args.http_port}", "-e", f"lab_s3_port={args.s3_port}"]


def env() -> dict[str, str]:
    return dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"), ANSIBLE_CALLBACK_RESULT_FORMAT="json",
                ANSIBLE_FORCE_COLOR="0")


def playbook(args: argparse.Namespace, *extra: str) -> tuple[float, str]:
    argv = [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", os.path.join(ROOT, "inventories", "lab"),
            *lab_vars(args), *extra]
    started = time.monotonic()
    proc = subprocess.run(argv, cwd=ROOT, env=env(), capture_output=True, text=True, check=False)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def publish(args: argparse.Namespace) -> tuple[float, tuple[str, ...]]:
    seconds, out = playbook(args, os.path.join(ROOT, "site.yml"), "--tags", "lemmy_ui_static_configure,lemmy_ui_static_run")
    found = SUMMARY.search(out)
    if not found:
        sys.exit("the publish printed no summary line:\n" + out[-3000:])
    return seconds, found.groups()


def lab_settings(args: argparse.Namespace) -> dict:
    with open(os.path.join(ROOT, "inventories", "lab", "group_vars", "all", "lemmy.yml"), encoding="utf-8") as handle:
        lemmy = yaml.safe_load(handle)
    secrets = os.path.join(ROOT, ".cache", "lab")
    keys = {}
    for name in ("s3_access_key", "s3_secret_key"):
        with open(os.path.join(secrets, name), encoding="utf-8") as handle:
            keys[name] = handle.read().split()[0]
    return {"bucket": lemmy["lemmy_ui_static_bucket"], "endpoint": f"http://127.0.0.1:{args.s3_port}",
            "image": lemmy["lemmy_ui_image"].replace("{{ lemmy_ui_version | default(lemmy_version) }}", lemmy["lemmy_version"]), **keys}


def s3_client(lab: dict):
    return boto3.client("s3", endpoint_url=lab["endpoint"], region_name="us-east-1",
                        aws_access_key_id=lab["s3_access_key"], aws_secret_access_key=lab["s3_secret_key"])


def delete_prefix(s3, bucket: str, prefix: str) -> int:
    deleted = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
            deleted += len(keys)
    return deleted


def image_dist(image: str, into: str) -> tuple[str, str]:
    """Copy /app/dist out of the image; return (dist path, asset hash)."""
    name = f"fsl-bench-static-{os.urandom(4).hex()}"
    subprocess.run(["docker", "create", "--name", name, image], check=True, capture_output=True)
    try:
        subprocess.run(["docker", "cp", f"{name}:/app/dist", os.path.join(into, "dist")], check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rm", "-f", name], check=False, capture_output=True)
    dist = os.path.join(into, "dist")
    with open(os.path.join(dist, "js", "server.js"), encoding="utf-8") as handle:
        hashes = sorted(set(re.findall(r'"/static/([0-9a-f]{6,40})"', handle.read())))
    if len(hashes) != 1:
        sys.exit(f"{image}: server.js names {hashes}, want one /static/<hash>")
    return dist, hashes[0]


def baseline_playbook(path: str, keys_file: str) -> None:
    """The role's former upload: one s3_object task loop item per file."""
    play = [{
        "name": "Per-file upload (the former lemmy_ui_static upload task)",
        "hosts": "localhost",
        "gather_facts": False,
        "vars_files": [keys_file],
        "tasks": [{
            "name": "Upload the files one loop item each",
            "amazon.aws.s3_object": {
                "mode": "put", "bucket": "{{ bench_bucket }}", "object": "{{ bench_prefix }}{{ item.rel }}", "src": "{{ item.path }}",
                "overwrite": "different", "permission": ["public-read"],
                "metadata": {"Content-Type": "{{ item.type }}", "Cache-Control": "public, max-age=31536000, immutable"},
                "endpoint_url": "{{ bench_endpoint }}", "region": "us-east-1",
                "access_key": "{{ bench_access_key }}", "secret_key": "{{ bench_secret_key }}",
            },
            "loop": "{{ bench_files }}",
            "no_log": True,
        }],
    }]
    with open(path, "w", encoding="utf-8") as handle:
        yaml.safe_dump(play, handle)


def baseline(args: argparse.Namespace, lab: dict, s3, dist: str, files: list[str]) -> tuple[float, float]:
    """Seconds per file of the former per-file upload: fresh and already-there, from a sample."""
    sample = files[:: max(1, len(files) // args.sample)][: args.sample]
    with tempfile.TemporaryDirectory() as tmp:
        keys_file = os.path.join(tmp, "keys.yml")
        fd = os.open(keys_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"bench_access_key": lab["s3_access_key"], "bench_secret_key": lab["s3_secret_key"]}, handle)
        play = os.path.join(tmp, "baseline.yml")
        baseline_playbook(play, keys_file)

        def run(chosen: list[str]) -> float:
            items = [{"rel": rel, "path": os.path.join(dist, rel), "type": "application/octet-stream"} for rel in chosen]
            vars_file = os.path.join(tmp, "vars.json")
            with open(vars_file, "w", encoding="utf-8") as handle:
                json.dump({"bench_files": items, "bench_bucket": lab["bucket"], "bench_prefix": BASELINE_PREFIX,
                           "bench_endpoint": lab["endpoint"]}, handle)
            return playbook(args, play, "-e", f"@{vars_file}")[0]

        delete_prefix(s3, lab["bucket"], BASELINE_PREFIX)
        empty = run([])
        fresh = run(sample)
        again = run(sample)
        delete_prefix(s3, lab["bucket"], BASELINE_PREFIX)
    return (fresh - empty) / len(sample), (again - empty) / len(sample)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lab-name", required=True)
    parser.add_argument("--http-port", required=True, type=int)
    parser.add_argument("--s3-port", required=True, type=int)
    parser.add_argument("--sample", type=int, default=20, help="files of the per-file baseline (0: skip it)")
    args = parser.parse_args(argv)
    lab = lab_settings(args)
    s3 = s3_client(lab)
    with tempfile.TemporaryDirectory() as tmp:
        dist, asset_hash = image_dist(lab["image"], tmp)
        files = sorted(os.path.relpath(os.path.join(folder, name), dist) for folder, _dirs, names in os.walk(dist) for name in names)
        size = sum(os.path.getsize(os.path.join(dist, rel)) for rel in files)
        print(f"lab {args.lab_name}, image {lab['image']}: dist/ {len(files)} files, {size / 1e6:.1f} MB, "
              f"s3://{lab['bucket']}/static/{asset_hash}/")
        deleted = delete_prefix(s3, lab["bucket"], f"static/{asset_hash}/")
        for label in (f"fresh (deleted {deleted} objects first)", "no-op (everything there)"):
            seconds, (total, uploaded, volume, skipped, copy) = publish(args)
            print(f"  rclone bulk copy, {label:36} playbook {seconds:6.1f} s, copy step {float(copy):5.1f} s: "
                  f"{uploaded} uploaded ({volume}), {skipped} already there")
        if args.sample > 0:
            fresh, again = baseline(args, lab, s3, dist, files)
            print(f"  per-file s3_object loop (baseline, estimated from {args.sample} files): {fresh:.2f} s a file fresh, "
                  f"{again:.2f} s a file already there")
            print(f"    extrapolated to {len(files)} files: fresh ~{fresh * len(files):.0f} s, no-op ~{again * len(files):.0f} s "
                  f"(copy step only)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
