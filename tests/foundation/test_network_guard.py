"""The suite's network guard really blocks non-loopback traffic, in-process and through ssh."""

from __future__ import annotations

import socket
import subprocess

import pytest


def test_socket_connect_outside_loopback_is_refused():
    with socket.socket() as s:
        with pytest.raises(OSError, match="network guard"):
            s.connect(("10.10.30.10", 22))


def test_loopback_still_works():
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    with socket.create_connection(srv.getsockname(), timeout=2):
        pass
    srv.close()


def test_ssh_to_the_real_network_is_refused_by_the_stub():
    r = subprocess.run(["ssh", "-o", "BatchMode=yes", "root@10.10.10.10", "true"], capture_output=True, text=True)
    assert r.returncode == 255
    assert "network guard" in r.stderr
