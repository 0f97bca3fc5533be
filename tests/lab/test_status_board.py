"""The status board as a pure function of journal rows, and the HTML page in real headless Chromium."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ralf.board import board_rows, render_html, summary, text_rows

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


def at(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).isoformat(timespec="seconds")


def ev(result: str, minutes_ago: float, template: str = "RALF Web Apply", **extra) -> dict:
    return {"result": result, "at": at(minutes_ago), "run_id": 7, "template": template, **extra}


ROWS = [
    {"group": "phase1", "service": "store", "last_apply": ev("succeeded", 30, "RALF Phase1 Config Apply"),
     "last_smoke": ev("succeeded", 29, "RALF Phase1 Smoke", diagnosis=None, cert_days_left=None)},
    {"group": "web", "service": "portal", "last_apply": ev("succeeded", 20),
     "last_smoke": ev("failed", 19, "RALF Web Smoke", diagnosis="FAIL at nginx/TLS — certificate expired 3 days ago",
                      cert_days_left=-3)},
    {"group": "api", "service": "echo", "last_apply": ev("succeeded", 10, "RALF API Apply"),
     "last_smoke": ev("succeeded", 9, "RALF API Smoke", diagnosis=None, cert_days_left=None)},
    {"group": "api", "service": "<mail>", "last_apply": None, "last_smoke": None},
]


def test_states_and_notes():
    board = board_rows(ROWS, now=NOW)
    states = {b["service"]: (b["state"], b["note"]) for b in board}
    assert states["store"] == ("ok", "")
    assert states["portal"] == ("fail", "FAIL at nginx/TLS — certificate expired 3 days ago")
    assert states["<mail>"][0] == "never"
    assert summary(board) == {"ok": 2, "warn": 0, "fail": 1, "never": 1}
    echo = next(b for b in board if b["service"] == "echo")
    assert echo["age"] == 9 * 60
    assert text_rows(board)[2][3:5] == ["succeeded 10 min ago", "succeeded 9 min ago"]


@pytest.mark.parametrize(
    "row, state, note",
    [
        ({"last_apply": ev("failed", 5), "last_smoke": ev("succeeded", 60)}, "fail", "apply failed (RALF Web Apply)"),
        ({"last_apply": ev("failed", 60), "last_smoke": ev("succeeded", 5)}, "ok", ""),
        ({"last_apply": ev("succeeded", 5), "last_smoke": ev("succeeded", 60)}, "warn", "applied since the last smoke"),
        ({"last_apply": ev("succeeded", 5), "last_smoke": None}, "warn", "applied, never smoked"),
        ({"last_apply": None, "last_smoke": ev("succeeded", 5, cert_days_left=6)}, "warn", "certificate expires in 6 days"),
        ({"last_apply": None, "last_smoke": ev("succeeded", 5, cert_days_left=-1)}, "fail", "certificate expired 1 day ago"),
        ({"last_apply": None, "last_smoke": ev("succeeded", 5, cert_days_left=1)}, "warn", "certificate expires in 1 day"),
        ({"last_apply": None, "last_smoke": ev("succeeded", 5, cert_days_left=0)}, "warn", "certificate expires in 0 days"),
        ({"last_apply": None, "last_smoke": ev("stopped", 5)}, "fail", "smoke stopped"),
    ],
)
def test_state_rules(row, state, note):
    (b,) = board_rows([{"group": "g", "service": "s", **row}], now=NOW)
    assert (b["state"], b["note"]) == (state, note)


def test_times_in_other_shapes_are_understood():
    rows = [{"group": "g", "service": "s", "last_apply": {"result": "succeeded", "at": NOW.timestamp() - 7200},
             "last_smoke": {"result": "succeeded", "at": "2026-11-27T11:00:00Z"}}]
    (b,) = board_rows(rows, now=NOW)
    assert b["last_apply"]["age"] == 7200 and b["last_smoke"]["age"] == 3600


def test_html_is_self_contained_and_escaped():
    page = render_html(board_rows(ROWS, now=NOW), title="ralf status · lab", generated_at=NOW)
    low = page.lower()
    assert "<script" not in low and "src=" not in low and "href=" not in low and "@import" not in low
    assert "url(" not in low and "http://" not in low and "https://" not in low
    assert "&lt;mail&gt;" in page and "<mail>" not in page
    assert 'id="attention"' in page and "certificate expired 3 days ago" in page


def test_html_without_failures_has_no_attention_box():
    page = render_html(board_rows([r for r in ROWS if r["service"] != "portal"], now=NOW))
    assert 'id="attention"' not in page and 'class="service s-fail"' not in page


# ---------------------------------------------------------------- real Chromium

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if not os.path.exists(CHROMIUM):
        pytest.fail("chromium is not installed (apt-get install chromium)")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=90)


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """A minimal PNG reader (8-bit RGB/RGBA, not interlaced): width, height, rows of pixel bytes."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw, stride, rows, prev = zlib.decompress(idat), width * bpp, [], bytearray(width * bpp)
    for y in range(height):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return width, bpp, rows


def count_colour(path: Path, rgb: tuple[int, int, int]) -> int:
    _, bpp, rows = read_png(path)
    want = bytes(rgb)
    return sum(1 for row in rows for i in range(0, len(row), bpp) if row[i:i + 3] == want)


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    d = tmp_path_factory.mktemp("board")
    failing = d / "failing.html"
    failing.write_text(render_html(board_rows(ROWS, now=NOW), title="ralf status · lab", generated_at=NOW))
    healthy = d / "healthy.html"
    healthy.write_text(render_html(board_rows([r for r in ROWS if r["service"] != "portal"], now=NOW)))
    return d, failing, healthy


@pytest.mark.timeout(180)
def test_chromium_loads_the_page_and_shows_every_service(pages):
    d, failing, _ = pages
    proc = chromium(d, "--dump-dom", failing.as_uri())
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    for r in ROWS:
        svc = r["service"].replace("<", "&lt;").replace(">", "&gt;")
        assert f'data-service="{svc}"' in dom
    assert 'data-service="portal" data-state="fail"' in dom
    assert dom.count('data-state="fail"') == 1
    assert "Needs attention" in dom


@pytest.mark.timeout(180)
def test_failures_stand_out_in_the_rendered_page(pages):
    """The FAIL badge's red (#c62828) is on screen when a service fails, and nowhere when none does."""
    d, failing, healthy = pages
    shots = {}
    for name, page in (("failing", failing), ("healthy", healthy)):
        png = d / f"{name}.png"
        proc = chromium(d, f"--screenshot={png}", "--window-size=1200,900", "--hide-scrollbars", page.as_uri())
        assert png.exists(), proc.stderr[-2000:]
        shots[name] = png
    red = (0xC6, 0x28, 0x28)
    assert count_colour(shots["failing"], red) > 500
    assert count_colour(shots["healthy"], red) == 0
    assert count_colour(shots["healthy"], (0xE3, 0xF4, 0xE6)) > 200  # the OK badges' green
