"""The fake Semaphore's ``/api/ws``: RFC 6455 server side on the fake's own HTTP connection, as Semaphore's hub.

Like ``api/sockets`` (gorilla/websocket): the upgrade needs the usual auth; each connection has a send queue of
256 messages and is closed when it is full (a reader that falls behind is dropped, never waited for); client
frames are read only for close and ping. Every byte sent is counted (:attr:`Subscriber.sent_bytes`) so a
benchmark can compare what following a task costs the server.
"""

from __future__ import annotations

import base64
import hashlib
import queue
import select
import struct
import threading
from typing import Any

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SEND_QUEUE = 256  # connectionChannelSize in api/sockets/handler.go
_CLOSE = object()


def accept_key(key: str) -> str:
    return base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()


def frame(payload: bytes, opcode: int = 0x1) -> bytes:
    """One unmasked, final server frame."""
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, n)
    elif n < 2**16:
        head = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return head + payload


def _read_exact(rfile: Any, n: int) -> bytes:
    data = rfile.read(n) if n else b""
    if data is None or len(data) < n:
        raise ConnectionError("websocket closed")
    return data


def read_frame(rfile: Any) -> tuple[int, bytes]:
    """(opcode, unmasked payload) of one client frame. Read through the HTTP reader (plain or TLS alike); a
    frame that arrived with the one before waits in its buffer until the next arrives, which is harmless:
    clients send only close and the odd ping."""
    b1, b2 = _read_exact(rfile, 2)
    n = b2 & 0x7F
    if n == 126:
        n = struct.unpack("!H", _read_exact(rfile, 2))[0]
    elif n == 127:
        n = struct.unpack("!Q", _read_exact(rfile, 8))[0]
    mask = _read_exact(rfile, 4) if b2 & 0x80 else b"\0\0\0\0"
    data = _read_exact(rfile, n)
    return b1 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


class Subscriber:
    """One open websocket connection's send queue."""

    def __init__(self) -> None:
        self.queue: queue.Queue = queue.Queue(maxsize=SEND_QUEUE)
        self.sent_bytes = 0
        self.dropped = False

    def offer(self, message: bytes) -> bool:
        """Queue a message; False (and the connection is to be closed) when the queue is full."""
        try:
            self.queue.put_nowait(message)
            return True
        except queue.Full:
            self.dropped = True
            self.close()
            return False

    def close(self) -> None:
        while True:
            try:
                self.queue.put_nowait(_CLOSE)
                return
            except queue.Full:
                try:
                    self.queue.get_nowait()
                except queue.Empty:
                    pass


def serve(handler: Any, sub: Subscriber, stop: threading.Event, on_end) -> None:
    """Answer the upgrade on ``handler``'s connection, then pump ``sub``'s queue until either side closes."""
    key = handler.headers.get("Sec-WebSocket-Key", "")
    handler.send_response(101, "Switching Protocols")
    handler.send_header("Upgrade", "websocket")
    handler.send_header("Connection", "Upgrade")
    handler.send_header("Sec-WebSocket-Accept", accept_key(key))
    handler.end_headers()
    handler.wfile.flush()
    handler.close_connection = True
    sock = handler.connection
    try:
        while not stop.is_set():
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                opcode, payload = read_frame(handler.rfile)
                if opcode == 0x8:  # close: answer it and end
                    handler.wfile.write(frame(payload[:2], 0x8))
                    return
                if opcode == 0x9:
                    handler.wfile.write(frame(payload, 0xA))
                continue
            try:
                msg = sub.queue.get(timeout=0.05)
            except queue.Empty:
                continue
            if msg is _CLOSE:
                handler.wfile.write(frame(struct.pack("!H", 1000), 0x8))
                return
            data = frame(msg)
            handler.wfile.write(data)
            sub.sent_bytes += len(data)
    except (OSError, ConnectionError):
        pass
    finally:
        on_end(sub)
