"""The smoke's network primitives on an event loop: a TCP connect and one plain HTTP GET.

One event loop serves every service of a smoke run, so 200 endpoints waiting for their answers cost
neither 200 threads nor the interpreter lock they would fight over. The GET speaks HTTP/1.1 through
``h11`` (the sans-IO parser under httpx), one connection per request, redirects never followed; like
curl in the original's smoke.sh, and unlike httpx, no ``*_PROXY`` from the environment is used: the
endpoints are the platform's own. Every failure comes back as a one-line reason, never an exception.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import socket
import ssl
from typing import Any

import h11

from ralf.smoke.reasons import net_error, verify_message

HEADERS = [("Accept", "*/*"), ("User-Agent", "ralf-smoke"), ("Connection", "close")]
_READ = 65536


async def connect(host: str, port: int, timeout: float) -> socket.socket:
    """A connected non-blocking socket, trying each address of ``host`` in turn as
    :func:`socket.create_connection` does (``timeout`` for each); raises the last :class:`OSError`."""
    loop = asyncio.get_running_loop()
    infos: list[tuple[int, Any]]
    family = _address_family(host)
    if family is not None:
        infos = [(family, (host, port))]
    else:  # a name: resolve it (in a thread, as the loop does)
        async with asyncio.timeout(timeout):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        infos = [(family, addr) for family, _, _, _, addr in found]
    last: OSError = OSError(f"no address for {host}")
    for family, addr in infos:
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            async with asyncio.timeout(timeout):  # no task of its own, as wait_for makes in Python 3.11
                await loop.sock_connect(sock, addr)
            return sock
        except OSError as e:  # TimeoutError is one too
            sock.close()
            last = e
        except BaseException:
            sock.close()
            raise
    raise last


@functools.lru_cache(maxsize=1024)
def _address_family(host: str) -> int | None:
    """AF_INET or AF_INET6 for an address, None for a name (the platform's hosts are mostly addresses)."""
    try:
        return socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        return None


async def tcp_connect(host: str, port: int, timeout: float) -> str | None:
    """None when ``host:port`` accepts a connection within ``timeout``, else why not."""
    try:
        sock = await connect(host, port, timeout)
    except OSError as e:
        return net_error(e, timeout)
    sock.close()
    return None


async def get(url_host: str, port: int, target: str, timeout: float, context: ssl.SSLContext | None,
              server_name: str | None = None, *, read_body: bool = False) -> tuple[int, str] | str:
    """GET ``target`` from ``url_host:port``: (status, body text, empty unless ``read_body``), or why there
    was no answer.

    ``context``: the TLS client context for https (None for http). ``timeout`` bounds the connect, the
    handshake and each read. ``server_name`` (https): the name the certificate must be valid for, sent as
    SNI and Host while the connection goes to the URL's address.
    """
    try:
        sock = await connect(url_host, port, timeout)
    except OSError as e:
        return net_error(e, timeout)
    host = server_name or url_host
    default_port = 443 if context is not None else 80
    writer = None
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(
                sock=sock, ssl=context, server_hostname=host if context is not None else None)
        return await _exchange(reader, writer, host if port == default_port else f"{host}:{port}", target, timeout,
                               read_body)
    except ssl.SSLError as e:
        return verify_message(e)
    except OSError as e:
        return net_error(e, timeout)
    finally:
        if writer is not None:
            writer.transport.abort()  # no close handshake to wait for: the answer is read
        else:
            sock.close()


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, target: str,
                    timeout: float, read_body: bool) -> tuple[int, str] | str:
    conn = h11.Connection(h11.CLIENT)
    writer.write(conn.send(h11.Request(method="GET", target=target, headers=[("Host", host), *HEADERS])))
    writer.write(conn.send(h11.EndOfMessage()))
    headers: Any = ()  # the answer's, for its charset
    status, body, first = 0, bytearray(), b""
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            if not first:
                return "the server closed the connection without an answer"
            line = first.split(b"\n", 1)[0].strip().decode("latin-1")[:40]
            return f"not a valid HTTP answer (it began {line!r})"  # e.g. 'SSH-2.0-OpenSSH_9.2': the wrong port
        if event is h11.NEED_DATA:
            async with asyncio.timeout(timeout):
                data = await reader.read(_READ)
            first = first or data
            conn.receive_data(data)
        elif isinstance(event, h11.Response):
            status, headers = event.status_code, event.headers
        elif isinstance(event, h11.Data):
            if read_body:
                body += event.data
        elif isinstance(event, (h11.EndOfMessage, h11.ConnectionClosed)):
            break
    if not read_body:
        return status, ""
    try:
        return status, body.decode(_charset(headers), errors="replace")
    except LookupError:
        return "the body's charset is unknown"


def _charset(headers) -> str:
    """The Content-Type's charset, read as http.client reads it (the email package's parser); else UTF-8."""
    from email.message import Message

    message = Message()
    for name, value in headers:
        if name == b"content-type":
            message["Content-Type"] = value.decode("latin-1")
    return message.get_content_charset() or "utf-8"
