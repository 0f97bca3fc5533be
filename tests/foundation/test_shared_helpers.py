"""The shared helpers: one backoff formula, one short-program runner, one table printer."""

from __future__ import annotations

import os
import time

import pytest

from ralf import backoff, process
from ralf.tables import plain_table


def test_backoff_doubles_from_the_first_pause_up_to_the_cap():
    assert [backoff.delay(n, 5, 60) for n in (1, 2, 3, 4, 5, 6)] == [5, 10, 20, 40, 60, 60]
    assert [backoff.delay(n, 0.25) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]
    with pytest.raises(ValueError, match="attempt counts from 1"):
        backoff.delay(0, 1)


def test_process_run_captures_both_streams_and_the_exit_code(tmp_path):
    done = process.run(["sh", "-c", "echo out; echo first >&2; echo last >&2; exit 3"], cwd=tmp_path)
    assert (done.returncode, done.stdout, done.ok, done.timed_out) == (3, "out\n", False, False)
    assert done.last_line() == "last"
    assert process.run(["cat"], input_text="fed\n").stdout == "fed\n"
    assert process.run(["sh", "-c", "echo $RALF_X"], env={"RALF_X": "given", "PATH": os.defpath}).stdout == "given\n"


def test_process_run_kills_the_whole_group_on_timeout():
    t0 = time.monotonic()
    done = process.run(["sh", "-c", "sleep 30 & echo $!; wait"], timeout=0.5)
    assert done.timed_out and done.returncode == process.TIMED_OUT and not done.ok
    assert time.monotonic() - t0 < 10  # not the 30 s of the grandchild
    grandchild = int(done.stdout.split()[0])
    for _ in range(50):  # killed with its group; its parent's reaper may take a moment
        try:
            os.kill(grandchild, 0)
        except ProcessLookupError:
            break
        if open(f"/proc/{grandchild}/stat").read().split(") ")[1].startswith("Z"):
            break
        time.sleep(0.05)
    else:
        pytest.fail(f"the grandchild {grandchild} outlived the timeout")


def test_process_run_of_a_missing_program_raises_for_the_caller_to_word():
    with pytest.raises(FileNotFoundError):
        process.run(["ralf-no-such-program"])


def test_plain_table_aligns_columns_two_spaces_apart_and_keeps_text_literal():
    text = plain_table(["name", "state", "note"], [["a", "OK", None], ["longer", "[bold]FAIL[/]", ":smile:"]])
    assert text.splitlines() == [
        "name    state          note",
        "a       OK",
        "longer  [bold]FAIL[/]  :smile:",
    ]
    assert plain_table(["only"], []) == "only\n"
