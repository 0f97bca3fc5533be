"""The one env-file format: hostile values round-trip through ralf's writer and reader, a POSIX shell and the roles."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ralf import envfile
from ralf.errors import SecretError
from ralf.secrets import format_env_line, read_env_file

# values that broke or bent earlier readers and writers (one file, shared with the roles' test)
HOSTILE: dict[str, str] = json.loads((Path(__file__).resolve().parents[1] / "data" / "env" / "hostile.json").read_text())


def test_hostile_values_round_trip():
    text = envfile.render(HOSTILE, header="hostile")
    assert text.startswith("# hostile\n")
    assert envfile.parse(text) == HOSTILE
    assert len(text.splitlines()) == len(HOSTILE) + 1  # one line per key: nothing spilled over


def test_plain_values_stay_bare_and_others_are_double_quoted():
    assert envfile.line("K", "Abc123") == "K=Abc123"
    assert envfile.line("K", 'a"b') == 'K="a\\"b"'
    assert envfile.line("K", "$x`y`\\") == 'K="\\$x\\`y\\`\\\\"'
    assert envfile.line("K", "") == 'K=""'


def test_a_line_break_is_refused_naming_the_key_not_the_value():
    for bad in ("a\nINJECTED=1", "a\rb", "a\0b"):
        with pytest.raises(envfile.EnvFileError) as e:
            envfile.line("DB_PASSWORD", bad)
        assert "DB_PASSWORD" in str(e.value) and "INJECTED" not in str(e.value) and bad not in str(e.value)
    with pytest.raises(SecretError, match="minio.env: MINIO_ROOT_PASSWORD holds a line break"):
        format_env_line("MINIO_ROOT_PASSWORD", "x\nMINIO_ROOT_USER=evil", "minio.env")
    with pytest.raises(envfile.EnvFileError, match="not a valid environment variable name"):
        envfile.line("BAD KEY", "v")


def test_the_reader_follows_systemds_environmentfile_rules():
    text = (
        "# comment\n; also a comment\n\n"
        "export EXPORTED=1\n"
        "  SPACED  =  bare value  \n"
        "SINGLE='$literal \\n \"x\"'\n"
        'DOUBLE="a\\"b \\$c \\\\ \\q"\n'
        'GLUED="a"\'b\'c\n'
        "AFTER=\"v\" # kept, as systemd keeps it\n"
        "CONT=one\\\ntwo\n"
        "UNQUOTED_ESCAPE=a\\ b\\#\n"
        "MULTI=\"line1\nline2\"\n"
        "EMPTY=\n"
        "NOEQUALS\n"
        "1BAD=x\n"
        "DUP=first\nDUP=second\n"
    )
    assert envfile.parse(text) == {
        "EXPORTED": "1",
        "SPACED": "bare value",
        "SINGLE": '$literal \\n "x"',
        "DOUBLE": 'a"b $c \\ \\q',  # an escape systemd does not know keeps its backslash
        "GLUED": "abc",
        "AFTER": "v# kept, as systemd keeps it",
        "CONT": "onetwo",
        "UNQUOTED_ESCAPE": "a b#",
        "MULTI": "line1\nline2",
        "EMPTY": "",
        "DUP": "second",
    }


def test_trailing_blanks_are_dropped_after_an_escaped_start_whatever_the_line_before_held():
    # the earlier character-by-character reader carried the last value's trailing-blank mark into the next one
    assert envfile.parse("A=ab  \nB=\\x  \nC=\\ \nD='q'  \n") == {"A": "ab", "B": "x", "C": " ", "D": "q"}


def test_what_the_old_reader_altered_now_comes_back_as_written(tmp_path):
    # the earlier writer put a"b in as "a\"b", and the earlier reader gave back a\"b
    path = tmp_path / "x.env"
    path.write_text('OLD="a\\"b"\n')
    assert read_env_file(path) == {"OLD": 'a"b'}


def test_a_posix_shell_reads_the_same_values(tmp_path):
    path = tmp_path / "hostile.env"
    path.write_text(envfile.render(HOSTILE))
    dump = "import json, os, sys; print(json.dumps({k: os.environ.get(k) for k in sys.argv[1:]}))"
    out = subprocess.run(["sh", "-c", 'set -a; . "$1"; shift; exec "$@"', "sh", str(path),
                          sys.executable, "-c", dump, *HOSTILE], capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin"}).stdout
    assert json.loads(out) == HOSTILE
