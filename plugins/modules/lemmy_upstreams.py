#!/usr/bin/python
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
# Copyright (c) fediscale.lemmy contributors

from __future__ import annotations

DOCUMENTATION = r"""
---
module: lemmy_upstreams
short_description: Render a proxy's Lemmy upstream pools, drain or undrain servers, and reload nginx
version_added: 0.1.0
description:
  - Keeps the drained servers of a proxy as one empty marker file per server in O(drained_dir), and renders the
    upstreams file nginx includes from the pools and those markers, drained servers C(down).
  - A converge passes O(pools) and the exact O(drained) set (plus the markers already there with
    O(keep_drained)). A drain passes O(mark_down) and O(bring_back) and reads the pools from O(pools_file).
  - Refuses, naming the servers and the fix, a server that is not in the pools, a server in both lists, a key
    that is not C(address:port) as the plan writes it (IPv6 bracketed), and a drained set that leaves a pool with
    no server up. Concurrent drains on one proxy are serialised by a lock file, so each sees the other's markers.
  - With O(reload) and a changed upstreams file, tests the configuration (O(test_command)), restores the previous
    file and markers if the test fails, reloads O(service), waits for workers of the new configuration and, with
    O(wait_in_flight), for the old workers to exit. nginx lets an old worker exit only after its in-flight
    requests are answered, so when this returns no request through the proxy is still on a drained server.
author:
  - fediscale.lemmy maintainers (@fediscale)
extends_documentation_fragment:
  - fediscale.lemmy._attributes
attributes:
  check_mode:
    support: full
    details:
      - Reports what would change, with a diff; writes nothing and does not reload.
  diff_mode:
    support: full
  idempotent:
    support: full
options:
  pools:
    description:
      - The pools (C(proxy), C(keepalive), C(max_fails), C(fail_timeout) and C(pools.<name>) with C(name),
        C(balancing) and C(servers)). When omitted, read from O(pools_file).
    type: dict
  pools_file:
    description:
      - The pools, as JSON. Written (0644) when O(pools) is given and differs from it; read when O(pools) is omitted,
        so a drain needs no plan.
    type: path
    required: true
  drained_dir:
    description: The directory of the drained-server markers.
    type: path
    required: true
  upstreams_file:
    description: The upstreams file nginx includes.
    type: path
    required: true
  drained:
    description: The exact drained set (a converge). Mutually exclusive with O(mark_down) and O(bring_back).
    type: list
    elements: str
  keep_drained:
    description: With O(drained), keep the markers already there too.
    type: bool
    default: false
  mark_down:
    description: Servers to drain (a drain).
    type: list
    elements: str
    default: []
  bring_back:
    description: Servers to undrain (a drain). A server that is not in the pools is ignored.
    type: list
    elements: str
    default: []
  header:
    description: Comment lines at the top of the upstreams file.
    type: str
    default: "# Managed by fediscale.lemmy (role nginx): changes made here are overwritten."
  reload:
    description: Test and reload nginx when the upstreams file changed.
    type: bool
    default: false
  test_command:
    description: The configuration test.
    type: list
    elements: str
    default: [nginx, -t]
  service:
    description: The systemd unit to reload.
    type: str
    default: nginx
  pid_file:
    description: The nginx master's pid file, to find its workers.
    type: path
    default: /run/nginx.pid
  reload_timeout:
    description: Seconds to wait for the new workers, and for the old ones to exit.
    type: int
    default: 90
  wait_in_flight:
    description: Wait until the workers of the previous configuration have exited.
    type: bool
    default: true
seealso:
  - module: fediscale.lemmy.lemmy_plan
"""

EXAMPLES = r"""
- name: Drain one API server on this proxy and wait for its in-flight requests
  fediscale.lemmy.lemmy_upstreams:
    pools_file: /etc/nginx/lemmy/pools.json
    drained_dir: /etc/nginx/lemmy/drained
    upstreams_file: /etc/nginx/lemmy/upstreams.conf
    mark_down: ["[fd00::11]:8536"]
    reload: true
"""

RETURN = r"""
drained:
  description: The drained servers after this task.
  returned: success
  type: list
  elements: str
  sample: ["web1:8536"]
drained_before:
  description: The drained servers before this task.
  returned: success
  type: list
  elements: str
  sample: []
reloaded:
  description: Whether nginx was reloaded.
  returned: success
  type: bool
  sample: true
seconds:
  description: How long the task took, reload and waits included.
  returned: success
  type: float
  sample: 0.41
"""

import fcntl
import json
import os
import tempfile
import time
import typing as t

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.fediscale.lemmy.plugins.module_utils._drain import (
    DrainRefused,
    converge_drained,
    drained_after,
    is_worker,
    parse_stat,
    render_upstreams,
)


def _read_markers(directory: str) -> list[str]:
    try:
        return sorted(name for name in os.listdir(directory) if os.path.isfile(os.path.join(directory, name)))
    except FileNotFoundError:
        return []


def _read_text(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _write_atomic(path: str, content: str) -> None:
    directory = os.path.dirname(path) or "."
    fd, tmp = tempfile.mkstemp(prefix=".upstreams.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _set_markers(directory: str, before: t.Collection[str], after: t.Collection[str]) -> None:
    for name in sorted(set(after) - set(before)):
        with open(os.path.join(directory, name), "w", encoding="utf-8"):
            pass
        os.chmod(os.path.join(directory, name), 0o644)
    for name in sorted(set(before) - set(after)):
        try:
            os.unlink(os.path.join(directory, name))
        except FileNotFoundError:
            pass


def _workers(pid_file: str) -> list[int]:
    """The pids of the nginx master's worker processes (none when nginx does not run)."""
    try:
        with open(pid_file, encoding="ascii") as handle:
            master = int(handle.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8", errors="replace") as handle:
                stat = parse_stat(handle.read())
            if stat is None or stat[0] != master:
                continue
            with open("/proc/%s/cmdline" % entry, "rb") as handle:
                if is_worker(handle.read()):
                    found.append(int(entry))
        except OSError:
            continue
    return sorted(found)


def _alive(pid: int) -> bool:
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as handle:
            return handle.read().startswith(b"nginx")
    except OSError:
        return False


def _reload(module: AnsibleModule) -> None:
    params = module.params
    timeout = params["reload_timeout"]
    before = _workers(params["pid_file"])
    rc, out, err = module.run_command(["systemctl", "reload", params["service"]])
    if rc != 0:
        module.fail_json(msg="systemctl reload %s failed on the proxy: %s" % (params["service"], (err or out).strip()))
    deadline = time.monotonic() + timeout
    while True:
        now = _workers(params["pid_file"])
        if now and not set(now) & set(before):
            break
        if time.monotonic() > deadline:
            module.fail_json(
                msg="nginx did not start workers for the new configuration within %d s of the reload (nginx_reload_timeout). "
                "Look at /var/log/nginx/error.log and `journalctl -u %s` on the proxy." % (timeout, params["service"])
            )
        time.sleep(0.05)
    if not params["wait_in_flight"]:
        return
    while True:
        left = [pid for pid in before if _alive(pid)]
        if not left:
            return
        if time.monotonic() > deadline:
            module.fail_json(
                msg="the workers of the previous configuration (pids %s) still had requests in flight after %d s "
                "(nginx_reload_timeout). The new configuration is active; raise nginx_reload_timeout if requests legitimately take "
                "that long, or set nginx_drain_wait_in_flight to false." % (" ".join(str(p) for p in left), timeout)
            )
        time.sleep(0.05)


def run(module: AnsibleModule) -> dict[str, t.Any]:
    params = module.params
    started = time.monotonic()
    pools = params["pools"]
    pools_text = None
    if pools is not None:
        pools_text = json.dumps(pools, indent=4, sort_keys=True) + "\n"
    else:
        text = _read_text(params["pools_file"])
        if text is None:
            module.fail_json(msg="%s is missing on the proxy. Configure the proxy with the fediscale.lemmy.nginx role (site.yml) "
                                 "before draining through it." % params["pools_file"])
        pools = json.loads(text)
    directory = params["drained_dir"]
    lock_handle = None
    if os.path.isdir(directory):
        # Two drains on one proxy at once (hosts of one batch, or two plays) must each see the other's markers.
        lock_handle = open(os.path.join(os.path.dirname(directory.rstrip("/")) or ".", ".drain.lock"), "a", encoding="utf-8")
        fcntl.flock(lock_handle, fcntl.LOCK_EX)
    try:
        before = _read_markers(directory)
        try:
            if params["drained"] is not None:
                after = converge_drained(pools, before, params["drained"], params["keep_drained"])
            else:
                after = drained_after(pools, before, params["mark_down"], params["bring_back"])
        except DrainRefused as refused:
            module.fail_json(msg="nginx drain on proxy %s: %s" % (pools.get("proxy", "?"), refused), drained_before=before)
        old_text = _read_text(params["upstreams_file"])
        new_text = render_upstreams(pools, after, params["header"], params["pools_file"], directory)
        pools_changed = pools_text is not None and _read_text(params["pools_file"]) != pools_text
        changed = after != before or new_text != old_text or pools_changed
        result: dict[str, t.Any] = {"changed": changed, "drained": after, "drained_before": before, "reloaded": False}
        if module._diff:
            result["diff"] = [
                {"before": "\n".join(before) + "\n" if before else "", "after": "\n".join(after) + "\n" if after else "",
                 "before_header": directory + "/", "after_header": directory + "/"},
                {"before": old_text or "", "after": new_text, "before_header": params["upstreams_file"], "after_header": params["upstreams_file"]},
            ]
        if not changed or module.check_mode:
            return result
        if pools_changed:
            _write_atomic(params["pools_file"], pools_text)
        _set_markers(directory, before, after)
        if new_text != old_text:
            _write_atomic(params["upstreams_file"], new_text)
            if params["reload"]:
                rc, out, err = module.run_command(params["test_command"])
                if rc != 0:
                    # Put back what nginx accepted before, so the next reload does not pick up a broken file.
                    _set_markers(directory, before=after, after=before)
                    if old_text is None:
                        os.unlink(params["upstreams_file"])
                    else:
                        _write_atomic(params["upstreams_file"], old_text)
                    module.fail_json(msg="nginx -t rejected the configuration on proxy %s; the drain was undone and nginx keeps serving "
                                         "its previous configuration. nginx said: %s" % (pools.get("proxy", "?"), (err or out).strip()))
                _reload(module)
                result["reloaded"] = True
        result["seconds"] = round(time.monotonic() - started, 3)
        return result
    finally:
        if lock_handle is not None:
            lock_handle.close()


def main() -> None:
    module = AnsibleModule(
        argument_spec=dict(
            pools=dict(type="dict"),
            pools_file=dict(type="path", required=True),
            drained_dir=dict(type="path", required=True),
            upstreams_file=dict(type="path", required=True),
            drained=dict(type="list", elements="str"),
            keep_drained=dict(type="bool", default=False),
            mark_down=dict(type="list", elements="str", default=[]),
            bring_back=dict(type="list", elements="str", default=[]),
            header=dict(type="str", default="# Managed by fediscale.lemmy (role nginx): changes made here are overwritten."),
            reload=dict(type="bool", default=False),
            test_command=dict(type="list", elements="str", default=["nginx", "-t"]),
            service=dict(type="str", default="nginx"),
            pid_file=dict(type="path", default="/run/nginx.pid"),
            reload_timeout=dict(type="int", default=90),
            wait_in_flight=dict(type="bool", default=True),
        ),
        mutually_exclusive=[("drained", "mark_down"), ("drained", "bring_back")],
        supports_check_mode=True,
    )
    module.exit_json(**run(module))


if __name__ == "__main__":
    main()
