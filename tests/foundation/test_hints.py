"""ralf.hints: the commands ralf prints name the platform whenever a bare command would load another one."""

from __future__ import annotations

from ralf.hints import command, commands_in, complete


def test_the_default_platform_needs_no_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RALF_PLATFORM", raising=False)
    (tmp_path / "platform.yaml").write_text("")
    assert command("ralf smoke portal", tmp_path / "platform.yaml") == "ralf smoke portal"
    other = tmp_path / "lab dir" / "platform.yaml"
    assert command("ralf smoke portal", other) == "ralf smoke portal --platform 'lab dir/platform.yaml'"
    monkeypatch.setenv("RALF_PLATFORM", str(other))  # the default is then that file
    assert command("ralf smoke portal", other) == "ralf smoke portal"
    assert command("ralf smoke portal", tmp_path / "platform.yaml") == "ralf smoke portal --platform platform.yaml"


def test_a_file_outside_the_working_directory_is_absolute(tmp_path, monkeypatch):
    (tmp_path / "here").mkdir()
    monkeypatch.chdir(tmp_path / "here")
    monkeypatch.delenv("RALF_PLATFORM", raising=False)
    assert command("ralf deploy --resume 7", tmp_path / "lab.yaml") == f"ralf deploy --resume 7 --platform {tmp_path}/lab.yaml"


def test_every_backticked_command_is_completed_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RALF_PLATFORM", raising=False)
    monkeypatch.setenv("RALF_LAB_PLATFORM", str(tmp_path / "lab.yaml"))
    msg = ("fix it, check it with `ralf smoke portal`, then `ralf deploy portal`; "
           "`ralf lab fix portal` and `ralf status --platform x.yaml` stay; `tofu force-unlock` is not ralf's")
    out = complete(msg, tmp_path / "lab.yaml")
    assert commands_in(out) == ["ralf smoke portal --platform lab.yaml", "ralf deploy portal --platform lab.yaml",
                                "ralf lab fix portal", "ralf status --platform x.yaml"]
    assert "`tofu force-unlock`" in out
    assert complete(out, tmp_path / "lab.yaml") == out
    assert complete(msg, None) == msg
