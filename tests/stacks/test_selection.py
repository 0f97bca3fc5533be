"""ONLY_STACKS / START_AT / AUTO_APPLY: the contract Semaphore environments rely on."""

from __future__ import annotations

import pytest

from ralf.errors import UsageError
from ralf.stacks import select_stacks, selection_from_env
from ralf.stacks.selection import resolve_selection


def names(stacks):
    return [s.name for s in stacks]


def test_no_selection_is_every_stack_in_run_order(default_catalog):
    assert names(select_stacks(default_catalog, None, None)) == [s.name for s in default_catalog.stacks]
    assert names(select_stacks(default_catalog, None, "000"))[:3] == ["030-minio-lxc", "031-minio-config", "020-postgres-lxc"]


def test_only_stacks_keeps_the_given_order(default_catalog):
    env = {"ONLY_STACKS": "043-vaultwarden-config 030-minio-lxc,020-postgres-lxc"}
    sel = selection_from_env(env)
    assert sel.only == ["043-vaultwarden-config", "030-minio-lxc", "020-postgres-lxc"]
    assert names(select_stacks(default_catalog, sel.only, sel.start_at)) == sel.only


def test_start_at_keeps_names_at_or_after(default_catalog):
    got = names(select_stacks(default_catalog, None, "042"))
    assert got[0] == "042-vaultwarden-lxc" and "041-semaphore-config" not in got and "030-minio-lxc" not in got
    assert all(n >= "042" for n in got)
    # START_AT=030 drops 020-postgres (the original runner's trap, kept as the contract says)
    assert "020-postgres-lxc" not in names(select_stacks(default_catalog, None, "030"))
    # a full stack name is a prefix too
    assert names(select_stacks(default_catalog, None, "110-synapse-lxc")) == [
        "110-synapse-lxc", "111-synapse-config", "112-mail-lxc", "113-mail-config"]


def test_start_at_and_only_combine(default_catalog):
    got = select_stacks(default_catalog, ["044-n8n-lxc", "020-postgres-lxc", "090-exo-lxc"], "040")
    assert names(got) == ["044-n8n-lxc", "090-exo-lxc"]


@pytest.mark.parametrize("bad", ["abc", "0x1", "-1", "042 043", "1.5"])
def test_bad_start_at_is_a_usage_error(default_catalog, bad):
    with pytest.raises(UsageError, match="START_AT"):
        selection_from_env({"START_AT": bad})
    with pytest.raises(UsageError, match="START_AT"):
        select_stacks(default_catalog, None, bad)


def test_unknown_name_lists_the_valid_ones(default_catalog):
    with pytest.raises(UsageError) as e:
        select_stacks(default_catalog, ["042-vaultwarden-lxc", "042-vaultwarden"], None)
    msg = str(e.value)
    assert "unknown stack 042-vaultwarden in ONLY_STACKS" in msg
    assert "valid stacks: 030-minio-lxc, 031-minio-config" in msg and "113-mail-config" in msg
    assert e.value.exit_code == 2


def test_empty_selection_fails(default_catalog):
    with pytest.raises(UsageError, match="no stacks selected"):
        select_stacks(default_catalog, None, "999")
    with pytest.raises(UsageError, match="no stacks selected.*ONLY_STACKS=020-postgres-lxc.*START_AT=030"):
        select_stacks(default_catalog, ["020-postgres-lxc"], "030")


def test_duplicates_run_once(default_catalog):
    assert names(select_stacks(default_catalog, ["090-exo-lxc", "091-exo-config", "090-exo-lxc"], None)) == [
        "090-exo-lxc", "091-exo-config"]


@pytest.mark.parametrize("value,apply", [("1", True), (" 1 ", True), ("0", False), ("", False), ("true", False),
                                         ("yes", False), (None, False)])
def test_auto_apply_only_1_applies(value, apply):
    env = {} if value is None else {"AUTO_APPLY": value}
    assert selection_from_env(env).apply is apply


def test_empty_env_values_mean_no_filter():
    sel = selection_from_env({"ONLY_STACKS": "  ", "START_AT": "", "AUTO_APPLY": ""})
    assert sel.only is None and sel.start_at is None and sel.apply is False


def test_flags_win_over_environment():
    env = {"ONLY_STACKS": "030-minio-lxc", "START_AT": "000", "AUTO_APPLY": "1"}
    sel = resolve_selection(env, only=("044-n8n-lxc,045-n8n-config",), start_at="044", apply=False)
    assert sel.only == ["044-n8n-lxc", "045-n8n-config"] and sel.start_at == "044" and sel.apply is False
    sel = resolve_selection(env)
    assert sel.only == ["030-minio-lxc"] and sel.start_at == "000" and sel.apply is True


def test_every_apply_template_environment_selects_its_stacks(default_catalog):
    """What the Semaphore environments set selects exactly the template's stacks, in its order."""
    applies = [t for t in default_catalog.templates if t.kind == "apply"]
    assert applies
    for t in applies:
        sel = selection_from_env(t.env)
        assert sel.apply is t.auto_apply
        assert tuple(names(select_stacks(default_catalog, sel.only, sel.start_at))) == t.stacks, t.name


def test_errors_name_the_flag_when_the_value_came_from_one(default_catalog):
    env = {"ONLY_STACKS": "044-n8n-lxc", "START_AT": "000"}
    sel = resolve_selection(env, only=("044-n8n",))
    assert sel.only_source == "--only" and sel.start_source == "START_AT"
    with pytest.raises(UsageError, match="unknown stack 044-n8n in --only;"):
        select_stacks(default_catalog, sel.only, sel.start_at, only_source=sel.only_source)
    sel = resolve_selection({"ONLY_STACKS": "044-n8n"})
    with pytest.raises(UsageError, match="unknown stack 044-n8n in ONLY_STACKS;"):
        select_stacks(default_catalog, sel.only, sel.start_at, only_source=sel.only_source)
    with pytest.raises(UsageError, match="--start-at='x' is not a stack prefix"):
        resolve_selection({"START_AT": "000"}, start_at="x")
    sel = resolve_selection({"START_AT": "bad"}, start_at="999")  # the flag wins; the variable is not even read
    assert sel.start_at == "999" and sel.describe() == "mode=plan --start-at=999"
    with pytest.raises(UsageError, match=r"no stacks selected \(--start-at=999\); nothing to run"):
        select_stacks(default_catalog, sel.only, sel.start_at, start_source=sel.start_source)


def test_an_empty_selection_can_be_allowed_for_a_listing(default_catalog):
    assert select_stacks(default_catalog, ["020-postgres-lxc"], "030", allow_empty=True) == []
    with pytest.raises(UsageError, match="unknown stack"):  # a wrong name is still wrong
        select_stacks(default_catalog, ["nope"], None, allow_empty=True)
