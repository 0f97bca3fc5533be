"""The seeder against the fake server (both generations): create, converge, drift, orphans, failures."""

from __future__ import annotations

import json

import pytest
from sem_state import GITEA_LOGIN
from sem_state import one as _one
from sem_state import project_id as _project

from ralf.errors import SemaphoreError
from ralf.semaphore.client import SemaphoreClient
from ralf.semaphore.desired import RUNNER
from ralf.semaphore.errors import SemaphoreAuthError, SemaphoreServerError, SemaphoreUnreachable
from ralf.semaphore.ownership import INVENTORY_MARK, TEMPLATE_MARK
from ralf.semaphore.reconcile import _MISSING, Action, FieldDiff, Plan, SeedResult, seed


def test_empty_server_gets_the_full_desired_state(fake, client, desired, default_catalog):
    result = seed(client, desired)
    assert result.changed and result.project_id == _project(fake)
    pid = result.project_id
    templates = {t["name"]: t for t in fake.objects["templates"].values() if t["project_id"] == pid}
    assert set(templates) == {t.name for t in default_catalog.templates}
    assert len(templates) >= 28
    envs = {e["name"]: e for e in fake.objects["environment"].values() if e["project_id"] == pid}
    assert set(envs) == set(default_catalog.environments) | {"Empty"}
    # the environment carries the selection as strings, and ralf's marker
    vault_env = json.loads(envs["RALF Vault Env"]["env"])
    assert vault_env == {"AUTO_APPLY": "1", "START_AT": "000", "ONLY_STACKS": "042-vaultwarden-lxc 043-vaultwarden-config",
                         "RALF_MANAGED": "1"}
    assert json.loads(envs["RALF Smoke Env"]["env"]) == {"RALF_MANAGED": "1"}
    # templates: bash app, the runner script, the command line as the only argument
    apply = templates["RALF Vault Apply"]
    smoke = templates["RALF Vault Smoke"]
    assert apply["app"] == smoke["app"] == "bash"
    assert apply["playbook"] == RUNNER
    assert json.loads(apply["arguments"]) == ["ralf stacks run"]
    assert json.loads(smoke["arguments"]) == ["ralf smoke vault"]
    env_of = (lambda t: t["environment_ids"][0]) if fake.version == "2.16" else (lambda t: t["environment_id"])
    assert env_of(apply) == envs["RALF Vault Env"]["id"]
    assert env_of(smoke) == envs["RALF Smoke Env"]["id"]
    # the repository is the platform's mirror in Gitea, cloned with a key holding Gitea's sign-in
    gitea_key = _one(fake, "keys", "RALF Gitea")
    repo = _one(fake, "repositories", "RALF Local")
    assert repo["ssh_key_id"] == gitea_key["id"] and repo["git_url"] == "https://10.10.40.40/ralf/RALF.git"
    assert gitea_key["type"] == "login_password"
    key_posts = [r.body for r in fake.requests if r.method == "POST" and r.path == f"/api/project/{pid}/keys"]
    assert key_posts == [{"project_id": pid, "name": "RALF Gitea", "type": "login_password",
                          "login_password": GITEA_LOGIN}]
    inv = _one(fake, "inventory", "RALF Inventory")
    assert inv["type"] == "static" and "[vaultwarden]" in inv["inventory"]
    view = _one(fake, "views", "RALF")
    assert all(t["view_id"] == view["id"] for t in templates.values())


def test_second_run_makes_zero_writes_and_reads_each_collection_once(fake, client, desired):
    seed(client, desired)
    fake.clear_requests()
    result = seed(client, desired)
    assert not result.changed and result.writes == 0
    assert fake.writes == []
    assert not result.plan.changes
    # /info, /projects, then one GET per collection: independent of the number of objects
    assert fake.count() == 8
    assert fake.count("GET", "/templates") == 1


@pytest.fixture
def desired_public(write_platform, repo_root):
    """The default platform with a repository URL of its own (no mirror): the repository uses the None key."""
    import yaml

    from ralf.catalog import Catalog
    from ralf.loader import load_platform
    from ralf.semaphore.desired import desired_state

    data = yaml.safe_load((repo_root / "platform.yaml").read_text())
    data["semaphore"]["repository"]["git_url"] = "file:///opt/ralf/repo"
    del data["mirror"]
    return desired_state(Catalog(load_platform(write_platform(yaml.safe_dump(data)))))


def test_a_repository_url_of_its_own_uses_the_projects_none_key(fake, client, desired_public):
    seed(client, desired_public)
    repo = _one(fake, "repositories", "RALF Local")
    assert repo["ssh_key_id"] == _one(fake, "keys", "None")["id"] and repo["git_url"] == "file:///opt/ralf/repo"
    assert fake.find("keys", _project(fake), "RALF Gitea") == []


def test_the_gitea_key_is_sent_once_and_never_again(fake, client, desired):
    seed(client, desired)
    pid = _project(fake)
    key = fake.find("keys", pid, "RALF Gitea")[0]
    fake.clear_requests()
    assert not seed(client, desired).changed  # secrets cannot be compared: a key found by name is left alone
    assert fake.find("keys", pid, "RALF Gitea") == [key]


def test_none_key_is_found_by_name_not_assumed_to_be_id_1(fake, client, desired_public):
    desired = desired_public
    other = fake.add_project("Someone Else")  # takes key id 1
    assert fake.find("keys", other, "None")[0]["id"] == 1
    seed(client, desired)
    pid = _project(fake)
    key = fake.find("keys", pid, "None")[0]
    assert key["id"] != 1
    assert _one(fake, "repositories", "RALF Local")["ssh_key_id"] == key["id"]


def test_missing_none_key_is_created(fake, client, desired_public):
    desired = desired_public
    pid = fake.add_project("RALF Bootstrap")
    for k in fake.find("keys", pid, "None"):
        del fake.objects["keys"][k["id"]]
    result = seed(client, desired)
    assert any(a.op == "create" and a.kind == "keys" for a in result.plan.actions)
    key = _one(fake, "keys", "None")
    assert key["type"] == "none"
    assert _one(fake, "repositories", "RALF Local")["ssh_key_id"] == key["id"]


def test_partial_state_creates_only_what_is_missing(fake, client, desired):
    seed(client, desired)
    pid = _project(fake)
    for name in ("RALF Vault Apply", "RALF AI Smoke"):
        del fake.objects["templates"][fake.find("templates", pid, name)[0]["id"]]
    fake.clear_requests()
    result = seed(client, desired)
    created = sorted(a.name for a in result.plan.changes)
    assert created == ["RALF AI Smoke", "RALF Vault Apply"]
    assert [(w.method, w.path) for w in fake.writes] == [("POST", f"/api/project/{pid}/templates")] * 2
    assert result.writes == 2


@pytest.mark.parametrize(
    "kind,name,edit,field",
    [
        ("repositories", "RALF Local", {"git_branch": "dev"}, "git_branch"),
        ("inventory", "RALF Inventory", {"inventory": INVENTORY_MARK + "\n[all:vars]\nansible_user=bob\n"},
         "inventory line 3"),
        ("environment", "RALF Vault Env",
         {"env": json.dumps({"AUTO_APPLY": "0", "START_AT": "000", "RALF_MANAGED": "1",
                             "ONLY_STACKS": "042-vaultwarden-lxc 043-vaultwarden-config"})}, "env.AUTO_APPLY"),
        ("templates", "RALF Vault Apply", {"playbook": "old.sh"}, "playbook"),
        ("templates", "RALF Vault Smoke", {"arguments": '["ralf smoke ai"]'}, "arguments"),
        ("templates", "RALF Exo Apply", {"app": "python"}, "app"),
    ],
)
def test_drift_in_each_kind_is_named_and_repaired(fake, client, desired, kind, name, edit, field):
    seed(client, desired)
    obj = _one(fake, kind, name)
    fake.edit(kind, obj["id"], **edit)
    lines: list[str] = []
    check = seed(client, desired, check=True, emit=lines.append)
    assert check.drift and not check.changed
    [action] = check.plan.changes
    assert (action.op, action.kind, action.name, action.id) == ("update", kind, name, obj["id"])
    assert [d.field for d in action.diffs] == [field]
    assert any(field in line for line in lines)
    assert _one(fake, kind, name)[next(iter(edit))] == next(iter(edit.values()))  # --check changed nothing
    fake.clear_requests()
    result = seed(client, desired)
    assert [(w.method, w.body["id"]) for w in fake.writes] == [("PUT", obj["id"])]
    assert result.changed
    assert not seed(client, desired, check=True).drift


def test_template_environment_drift(fake, client, desired):
    seed(client, desired)
    pid = _project(fake)
    ai_env = fake.find("environment", pid, "RALF AI Env")[0]["id"]
    tpl = _one(fake, "templates", "RALF Vault Apply")
    fake.edit("templates", tpl["id"], environment_id=ai_env, environment_ids=[ai_env])
    [action] = seed(client, desired, check=True).plan.changes
    assert [d.field for d in action.diffs] == ["environment_id"]
    seed(client, desired)
    vault_env = fake.find("environment", pid, "RALF Vault Env")[0]["id"]
    tpl = _one(fake, "templates", "RALF Vault Apply")
    assert (tpl["environment_ids"][0] if fake.version == "2.16" else tpl["environment_id"]) == vault_env


def test_update_keeps_fields_the_seeder_does_not_manage(fake, client, desired):
    seed(client, desired)
    tpl = _one(fake, "templates", "RALF Vault Apply")
    fake.edit("templates", tpl["id"], playbook="drifted.sh", survey_vars=[{"name": "x", "title": "X"}],
              allow_override_args_in_task=True, git_branch="feature")
    fake.clear_requests()
    seed(client, desired)
    [put] = fake.writes
    assert put.body["project_id"] == _project(fake) and put.body["id"] == tpl["id"]
    after = _one(fake, "templates", "RALF Vault Apply")
    assert after["playbook"] == RUNNER
    assert after["survey_vars"] == [{"name": "x", "title": "X"}]
    assert after["allow_override_args_in_task"] is True and after["git_branch"] == "feature"
    assert after["view_id"] == _one(fake, "views", "RALF")["id"]


def test_orphans_are_kept_without_prune_and_deleted_with_it(fake, client, desired):
    seed(client, desired)
    pid = _project(fake)
    repo = _one(fake, "repositories", "RALF Local")["id"]
    env = fake.insert("environment", pid, name="RALF Dashboard Env", json="{}", env='{"RALF_MANAGED": "1"}')
    tpl = fake.insert("templates", pid, name="RALF Dashboard Apply", app="bash", playbook=RUNNER,
                      repository_id=repo, environment_id=env["id"], description=f"dashy {TEMPLATE_MARK}")
    foreign = fake.insert("templates", pid, name="Backup nightly", app="bash", playbook="b.sh", repository_id=repo)
    fake.clear_requests()
    kept = seed(client, desired)
    assert fake.writes == [] and not kept.changed
    assert sorted((a.op, a.name) for a in kept.plan.orphans) == [("orphan", "RALF Dashboard Apply"),
                                                                 ("orphan", "RALF Dashboard Env")]
    assert seed(client, desired, check=True).drift  # ralf's orphans are drift, with or without --prune
    assert seed(client, desired, check=True, prune=True).drift
    pruned = seed(client, desired, prune=True)
    assert pruned.changed
    deleted = [(w.method, w.path) for w in fake.writes]
    # the template goes first: the environment is in use until then
    assert deleted == [("DELETE", f"/api/project/{pid}/templates/{tpl['id']}"),
                       ("DELETE", f"/api/project/{pid}/environment/{env['id']}")]
    assert foreign["id"] in fake.objects["templates"]  # not ours: never touched
    assert not seed(client, desired, prune=True).changed


def test_duplicate_names_are_an_error_naming_the_ids(fake, client, desired):
    seed(client, desired)
    pid = _project(fake)
    first = _one(fake, "templates", "RALF Vault Apply")
    dup = fake.insert("templates", pid, **{k: v for k, v in first.items() if k not in ("id", "project_id")})
    fake.clear_requests()
    with pytest.raises(SemaphoreError) as e:
        seed(client, desired)
    assert "RALF Vault Apply" in str(e.value)
    assert f"ids {first['id']}, {dup['id']}" in str(e.value)
    assert fake.writes == []


def test_duplicate_projects_are_an_error(fake, client, desired):
    a, b = fake.add_project("RALF Bootstrap"), fake.add_project("RALF Bootstrap")
    with pytest.raises(SemaphoreError, match=f"ids {a}, {b}"):
        seed(client, desired)


def test_expired_token_is_one_clear_error(fake, desired):
    fake.expire_token()
    with SemaphoreClient(fake.url, token=fake.token) as c:
        with pytest.raises(SemaphoreAuthError) as e:
            seed(c, desired)
    assert "401" in str(e.value) and "expired" in str(e.value)
    assert fake.token not in str(e.value)


def test_server_error_mid_seed_then_rerun_converges(fake, desired):
    with SemaphoreClient(fake.url, token=fake.token, retries=0) as c:
        seed(c, desired)
        pid = _project(fake)
        for name in ("RALF Vault Apply", "RALF Vault Smoke", "RALF AI Apply"):
            del fake.objects["templates"][fake.find("templates", pid, name)[0]["id"]]
        fake.edit("environment", fake.find("environment", pid, "RALF AI Env")[0]["id"], env="{}")
        fake.fail_next(1, 500, method="POST")  # the environment PUT goes through, the first create fails
        with pytest.raises(SemaphoreServerError) as e:
            seed(c, desired)
        assert "after 1 of 4 changes" in str(e.value) and "again" in str(e.value)
        rerun = seed(c, desired)
        assert len(rerun.plan.changes) == 3 and rerun.changed
        assert not seed(c, desired, check=True).drift


def test_dropped_connection_on_a_read_is_retried(fake, desired):
    with SemaphoreClient(fake.url, token=fake.token, retries=2, backoff=0.01) as c:
        seed(c, desired)
        fake.clear_requests()
        fake.drop_next(1, method="GET", path="/templates")
        fake.fail_next(1, 503, method="GET", path="/environment")
        result = seed(c, desired)
    assert not result.changed
    assert fake.count("GET", "/templates") == 2 and fake.count("GET", "/environment") == 2


def test_dropped_create_is_not_retried_and_rerun_does_not_duplicate(fake, desired):
    with SemaphoreClient(fake.url, token=fake.token, retries=3, backoff=0.01) as c:
        seed(c, desired)
        pid = _project(fake)
        del fake.objects["templates"][fake.find("templates", pid, "RALF Vault Apply")[0]["id"]]
        fake.clear_requests()
        fake.drop_next(1, method="POST")
        with pytest.raises(SemaphoreUnreachable):
            seed(c, desired)
        assert fake.count("POST") == 1
        seed(c, desired)
    assert len(fake.find("templates", pid, "RALF Vault Apply")) == 1


def test_check_on_a_missing_project_changes_nothing(fake, client, desired):
    lines: list[str] = []
    result = seed(client, desired, check=True, emit=lines.append)
    assert result.drift and result.project_id is None
    assert fake.projects == {} and fake.writes == []
    assert any("create project 'RALF Bootstrap'" in line for line in lines)


def test_lab_platform_without_semaphore_section_is_a_clear_error(lab_platform):
    from ralf.catalog import Catalog
    from ralf.errors import PlatformError
    from ralf.semaphore.desired import desired_state

    with pytest.raises(PlatformError, match="no semaphore section"):
        desired_state(Catalog(lab_platform))


def test_env_key_added_by_hand_is_shown_as_absent_and_secret_values_masked(fake, client, desired):
    seed(client, desired)
    env = _one(fake, "environment", "RALF Vault Env")
    extra = {**json.loads(env["env"]), "DB_PASSWORD": "hunter2-secret", "NOTE": "hand"}
    fake.edit("environment", env["id"], env=json.dumps(extra))
    lines: list[str] = []
    result = seed(client, desired, check=True, emit=lines.append)
    [action] = result.plan.changes
    assert [d.render() for d in action.diffs] == ["env.DB_PASSWORD: *** → (absent)", 'env.NOTE: "hand" → (absent)']
    assert "hunter2" not in "\n".join(lines) + json.dumps(result.to_dict())
    assert result.to_dict()["actions"][0]["diffs"][1] == {"field": "env.NOTE", "old": "hand", "new": None}


def test_apply_announces_the_changes_before_making_them(fake, client, desired):
    lines: list[str] = []
    seed(client, desired, emit=lines.append)
    applying = [line for line in lines if line.startswith("applying ")]
    assert applying == [f"applying {len(desired.objects) - 1} change(s) ..."]  # the project's None key exists
    lines.clear()
    seed(client, desired, emit=lines.append)
    assert not any(line.startswith("applying") for line in lines)


def test_runner_script_runs_the_command_line_with_the_environment(repo_root, tmp_path):
    """What every template runs: `bash semaphore-run.sh "<command line>" [extra vars]` in the repository checkout."""
    import subprocess

    script = str(repo_root / RUNNER)
    env = {"PATH": "/usr/bin:/bin", "AUTO_APPLY": "1", "ONLY_STACKS": "042-vaultwarden-lxc"}
    r = subprocess.run(["bash", script, 'echo "run $ONLY_STACKS $AUTO_APPLY" "$@"; exit 3', "k=v"], cwd=tmp_path,
                       env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 3  # the command's exit status is the task's
    assert r.stdout.splitlines()[-1] == "run 042-vaultwarden-lxc 1 k=v"
    assert "AUTO_APPLY=1" in r.stdout.splitlines()[0]
    r = subprocess.run(["bash", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=10)
    assert r.returncode == 2 and "no command line given" in r.stderr


def test_a_seed_result_in_json_names_kinds_as_labels_absent_values_as_null_and_a_note_only_when_there_is_one():
    actions = [Action("update", "environment", "E", 4, [FieldDiff("env.A", "1", _MISSING),
                                                         FieldDiff("env.B", _MISSING, "2")]),
               Action("create", "keys", "RALF Gitea"),
               Action("kept", "inventory", "I", 7, note="still used by template(s) 'X' (not ralf's)")]
    result = SeedResult("P", 1, Plan("P", 1, actions, unchanged=3), check=True, prune=False, writes=0,
                        server_version="2.16.14")
    assert json.loads(json.dumps(result.to_dict())) == {
        "project": "P", "project_id": 1, "server_version": "2.16.14", "check": True, "prune": False,
        "drift": True, "changed": False, "writes": 0,
        "summary": "1 to create, 1 to update, 0 to delete, 1 orphaned but in use (kept); 3 unchanged",
        "actions": [
            {"op": "update", "kind": "environment", "name": "E", "id": 4,
             "diffs": [{"field": "env.A", "old": "1", "new": None}, {"field": "env.B", "old": None, "new": "2"}]},
            {"op": "create", "kind": "key", "name": "RALF Gitea", "id": None, "diffs": []},
            {"op": "kept", "kind": "inventory", "name": "I", "id": 7, "diffs": [],
             "note": "still used by template(s) 'X' (not ralf's)"},
        ]}
    assert [line for a in actions for line in a.render()][:3] == [
        "~ update environment 'E' (id 4)", '    env.A: "1" → (absent)', '    env.B: (absent) → "2"']
