"""The websocket (/api/ws) of the fake server and ralf's reader of it, against Semaphore's behaviour."""

from __future__ import annotations

import json
import time

import pytest
from doubles.semaphore import FakeSemaphore
from doubles.semaphore.ws import SEND_QUEUE
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.live import StreamClosed, TaskEvents


@pytest.fixture(params=["2.10", "2.16"])
def sem(request):
    with FakeSemaphore(request.param) as s:
        pid = s.add_project("P")
        s.insert("templates", pid, name="T", app="bash", playbook="run.sh")
        s.pid = pid
        yield s


def ws_url(sem):
    return sem.url.replace("http", "ws", 1) + "/api/ws"


def test_events_carry_semaphores_fields_in_order(sem):
    sem.script("T", "success", 0.2, log=["one", "two"])
    with SemaphoreClient(sem.url, token=sem.token) as c:
        events = TaskEvents.open(c, sem.pid)
        task = c.start_task(sem.pid, next(iter(sem.objects["templates"])))
        got = []
        while not got or got[-1].get("status") != "success":
            ev = events.next(task["id"], 3)
            assert ev is not None
            got.append(ev)
        events.close()
    logs = [e for e in got if e["type"] == "log"]
    assert [e["output"] for e in logs][-2:] == ["one", "two"]
    assert set(logs[0]) == {"type", "output", "time", "task_id", "project_id"}
    updates = [e for e in got if e["type"] == "update"]
    assert [e["status"] for e in updates] == ["starting", "running", "success"]
    assert set(updates[0]) == {"type", "start", "end", "status", "task_id", "template_id", "project_id", "version"}
    assert updates[-1]["end"] is not None


def test_the_websocket_needs_auth_and_is_absent_when_not_offered(sem):
    with pytest.raises(InvalidStatus) as e:
        connect(ws_url(sem), open_timeout=3)
    assert e.value.response.status_code == 401
    sem.websocket = False
    with SemaphoreClient(sem.url, token=sem.token) as c:
        assert TaskEvents.open(c, sem.pid) is None


def test_a_reader_that_falls_behind_is_dropped_like_semaphores_hub(sem):
    with connect(ws_url(sem), additional_headers={"Authorization": f"Bearer {sem.token}"}, open_timeout=3,
                 max_queue=1) as ws:
        deadline = time.monotonic() + 3
        while not sem.subscribers:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sub = sem.subscribers[0]
        # the connection's writer is stalled by a reader that does not read: its queue fills
        big = "x" * 200_000
        for _ in range(SEND_QUEUE * 4):
            sem._push({"type": "log", "output": big, "task_id": 1, "project_id": sem.pid})
            if sub.dropped:
                break
        assert sub.dropped and sub not in sem.subscribers
        received = 0
        with pytest.raises((ConnectionClosed, TimeoutError)):  # dropped: closed, or silent until the timeout
            while True:
                json.loads(ws.recv(timeout=3))
                received += 1
        assert received < SEND_QUEUE * 4


def test_the_reader_reports_a_closed_stream_after_the_buffered_events(sem):
    with SemaphoreClient(sem.url, token=sem.token) as c:
        events = TaskEvents.open(c, sem.pid)
        deadline = time.monotonic() + 3
        while not sem.subscribers:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        sem._push({"type": "log", "output": "kept", "task_id": 7, "project_id": sem.pid})
        sem._push({"type": "log", "output": "other project", "task_id": 7, "project_id": sem.pid + 1})
        time.sleep(0.2)
        sem.drop_websockets()
        assert events.next(7, 3)["output"] == "kept"
        with pytest.raises(StreamClosed):
            events.next(7, 3)
        events.close()


def test_the_stream_uses_the_clients_tls_trust_and_a_test_transport_never_opens_one(tmp_path, monkeypatch):
    import httpx

    from ralf.lab import certs, paths

    monkeypatch.setenv("RALF_STATE_DIR", str(tmp_path / "state"))
    certs.issue(tmp_path / "tls", "semaphore.test", ["127.0.0.1"])
    tls = (str(tmp_path / "tls" / "cert.pem"), str(tmp_path / "tls" / "key.pem"))
    with FakeSemaphore(tls=tls) as sem:
        pid = sem.add_project("P")
        with SemaphoreClient(sem.url, token=sem.token, retries=0) as untrusted:
            assert TaskEvents.open(untrusted, pid) is None  # the internal CA is not trusted: no stream
        with SemaphoreClient(sem.url, token=sem.token, ca_file=str(paths.ca_file())) as c:
            events = TaskEvents.open(c, pid)
            assert events is not None
            deadline = time.monotonic() + 3
            while not sem.subscribers:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            sem._push({"type": "log", "output": "over wss", "task_id": 3, "project_id": pid})
            assert events.next(3, 3)["output"] == "over wss"
            events.close()
        sem.clear_requests()
        mock = httpx.MockTransport(lambda request: httpx.Response(404))
        with SemaphoreClient(sem.url, token=sem.token, transport=mock) as c:
            assert TaskEvents.open(c, pid) is None
        assert sem.requests == []
