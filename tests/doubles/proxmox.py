"""A test double of the Proxmox VE API on 127.0.0.1 (HTTPS), following the API's documented answers.

What it serves, as the real API does: every answer is ``{"data": ...}``; a missing or wrong
``Authorization: PVEAPIToken=USER@REALM!ID=SECRET`` is ``401 authentication failure``; a call the
token lacks the privilege for is ``403 Permission check failed (<path>, <privilege>)``;
``GET /access/permissions`` lists the token's effective privileges per ACL path;
``POST /nodes/{node}/aplinfo`` (``storage``, ``template``; needs ``Datastore.AllocateTemplate`` on
``/storage/{storage}``) answers with a task UPID, and the template shows up in the storage's
``vztmpl`` content once ``GET /nodes/{node}/tasks/{upid}/status`` reports ``stopped`` / ``OK``.
Every request is logged as ``(method, path, form)`` for tests to assert exactly.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from doubles.http import ServedDouble

PREFIX = "/api2/json"

# what a token made as the runbook asks holds (PVEAdmin-like on /, propagated)
FULL_PRIVILEGES = {
    "/": {p: 1 for p in ("Sys.Audit", "VM.Allocate", "VM.Audit", "VM.Config.Disk", "VM.Config.CPU",
                         "VM.Config.Memory", "VM.Config.Network", "VM.Config.Options", "VM.PowerMgmt",
                         "Datastore.Allocate", "Datastore.AllocateSpace", "Datastore.AllocateTemplate",
                         "Datastore.Audit", "SDN.Use")},
}


class FakeProxmox(ServedDouble):
    """``with FakeProxmox(tls=(cert, key)) as pve: pve.url`` — state is plain attributes tests can edit."""

    thread_name = "fake-proxmox"
    url_path = PREFIX

    def __init__(self, *, tls: tuple[str, str], node: str = "pve-deploy", token_id: str = "root@pam!ralf",
                 token_secret: str = "fake-token-secret", version: str = "8.2.4") -> None:
        self.tls = tls
        self.node = node
        self.token_id = token_id
        self.token_secret = token_secret
        self.version = version
        self.privileges: dict[str, dict[str, int]] = {k: dict(v) for k, v in FULL_PRIVILEGES.items()}
        self.storages = [
            {"storage": "local", "type": "dir", "content": "iso,vztmpl,backup", "active": 1, "enabled": 1},
            {"storage": "local-lvm", "type": "lvmthin", "content": "rootdir,images", "active": 1, "enabled": 1},
        ]
        self.bridges = [{"iface": "vmbr0", "type": "bridge", "active": 1}]
        self.content: dict[str, list[str]] = {"local": [], "local-lvm": []}  # storage -> volids
        self.appliances = [
            {"template": "debian-12-standard_12.7-1_amd64.tar.zst", "package": "debian-12-standard", "os": "debian-12",
             "section": "system", "type": "lxc", "version": "12.7-1"},
            {"template": "ubuntu-24.04-standard_24.04-2_amd64.tar.zst", "package": "ubuntu-24.04-standard",
             "os": "ubuntu-24.04", "section": "system", "type": "lxc", "version": "24.04-2"},
        ]
        self.tasks: dict[str, dict] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.lock = threading.Lock()

    # ------------------------------------------------------------------ lifecycle

    def writes(self) -> list[tuple[str, str, dict]]:
        return [r for r in self.requests if r[0] != "GET"]

    # ------------------------------------------------------------------ the API

    def _has(self, path: str, priv: str) -> bool:
        """Effective privilege: on the path itself or on a parent (ACLs propagate)."""
        parts = path.strip("/").split("/")
        for i in range(len(parts), -1, -1):
            p = "/" + "/".join(parts[:i])
            if self.privileges.get(p, {}).get(priv):
                return True
        return False

    def handle(self, method: str, path: str, query: dict, form: dict, auth: str | None) -> tuple[int, str, object]:
        if auth != f"PVEAPIToken={self.token_id}={self.token_secret}":
            return 401, "authentication failure", None
        if not path.startswith(PREFIX):
            return 501, "Method not implemented", None
        parts = [unquote(p) for p in path[len(PREFIX):].strip("/").split("/")]
        if parts == ["version"]:
            return 200, "OK", {"version": self.version, "release": self.version.rsplit(".", 1)[0], "repoid": "fake"}
        if parts == ["access", "permissions"]:
            return 200, "OK", self.privileges
        if parts == ["nodes"]:
            return 200, "OK", [{"node": self.node, "status": "online", "type": "node"}]
        if len(parts) < 2 or parts[0] != "nodes":
            return 501, "Method not implemented", None
        if parts[1] != self.node:
            return 595, f"no such cluster node '{parts[1]}'", None
        node_path = f"/nodes/{self.node}"
        rest = parts[2:]
        if rest == ["storage"] and method == "GET":
            return 200, "OK", [s for s in self.storages if self._has(f"/storage/{s['storage']}", "Datastore.Audit")]
        if rest == ["network"] and method == "GET":
            if not self._has(node_path, "Sys.Audit"):
                return 403, f"Permission check failed ({node_path}, Sys.Audit)", None
            return 200, "OK", self.bridges
        if len(rest) == 3 and rest[0] == "storage" and rest[2] == "content" and method == "GET":
            storage = rest[1]
            if storage not in self.content:
                return 500, f"storage '{storage}' does not exist", None
            if not self._has(f"/storage/{storage}", "Datastore.Audit"):
                return 403, f"Permission check failed (/storage/{storage}, Datastore.Audit)", None
            want = query.get("content")
            return 200, "OK", [{"volid": v, "content": "vztmpl", "format": "tzst", "size": 123456789}
                               for v in self.content[storage] if want in (None, "vztmpl")]
        if rest == ["aplinfo"] and method == "GET":
            return 200, "OK", self.appliances
        if rest == ["aplinfo"] and method == "POST":
            storage, template = form.get("storage"), form.get("template")
            if not storage or not template:
                return 400, "Parameter verification failed.", {"storage": "property is missing"}
            if not self._has(f"/storage/{storage}", "Datastore.AllocateTemplate"):
                return 403, f"Permission check failed (/storage/{storage}, Datastore.AllocateTemplate)", None
            if not any(a["template"] == template for a in self.appliances):
                return 500, f"no such template '{template}'", None
            upid = f"UPID:{self.node}:0000ABCD:00000001:6548F00D:download:{template}:{self.token_id}:"
            with self.lock:
                self.tasks[upid] = {"status": "stopped", "exitstatus": "OK", "type": "download", "node": self.node,
                                    "upid": upid}
                self.content.setdefault(storage, []).append(f"{storage}:vztmpl/{template}")
            return 200, "OK", upid
        if len(rest) == 3 and rest[0] == "tasks" and rest[2] == "status" and method == "GET":
            task = self.tasks.get(rest[1])
            if task is None:
                return 500, "no such task", None
            return 200, "OK", task
        return 501, "Method not implemented", None


class _Handler(BaseHTTPRequestHandler):
    server_fake: FakeProxmox
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:  # quiet
        pass

    def _serve(self, method: str) -> None:
        fake = self.server_fake
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        form: dict = {}
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
        with fake.lock:
            fake.requests.append((method, url.path, form))
        status, reason, data = fake.handle(method, url.path, query, form, self.headers.get("Authorization"))
        body = json.dumps({"data": data}).encode()
        self.send_response(status, reason)
        self.send_header("Content-Type", "application/json;charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")


FakeProxmox.handler = _Handler  # defined after the double, which it serves
