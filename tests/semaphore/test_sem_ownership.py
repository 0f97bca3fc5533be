"""The seeder next to what people do in Semaphore's UI: their vaults and surveys, their own objects, the
original seeder's project, and truthful reporting (both server generations)."""

from __future__ import annotations

import json

import pytest
from sem_state import one as _one
from sem_state import project_id as _pid

from ralf.semaphore.desired import RUNNER
from ralf.semaphore.ownership import INVENTORY_MARK, TEMPLATE_MARK, is_owned
from ralf.semaphore.reconcile import seed

MARKED_ENV = json.dumps({"RALF_MANAGED": "1"})
VAULTS = [{"id": 1, "vault_key_id": 0, "name": "prod"}]
SURVEY = [{"name": "release", "title": "Release", "required": True, "type": "", "description": "",
           "values": []}]


def _user_vault_and_survey(fake, tpl_id: int) -> None:
    """What a user does in the UI: a vault (with a real key) and a survey variable on a ralf template."""
    key = fake.insert("keys", _pid(fake), name="vault password", type="login_password")
    fake.edit("templates", tpl_id, vaults=[{**VAULTS[0], "vault_key_id": key["id"]}], survey_vars=SURVEY)


# --------------------------------------------------------------------------- 1. what ralf does not manage


def test_list_of_2_10_lacks_vaults_and_surveys_the_single_get_has_them(fake, client, desired):
    seed(client, desired)
    tpl = _one(fake, "templates", "RALF Vault Apply")
    _user_vault_and_survey(fake, tpl["id"])
    listed = next(t for t in client.list_templates(_pid(fake)) if t["id"] == tpl["id"])
    single = client.get_object("templates", _pid(fake), tpl["id"])
    assert single["survey_vars"] == SURVEY and single["vaults"][0]["name"] == "prod"
    if fake.version == "2.10":
        assert listed["vaults"] is None and listed["survey_vars"] is None
    else:
        assert listed["survey_vars"] == SURVEY and listed["vaults"] == single["vaults"]


def test_vault_and_survey_survive_an_update(fake, client, desired):
    seed(client, desired)
    tpl = _one(fake, "templates", "RALF Vault Apply")
    _user_vault_and_survey(fake, tpl["id"])
    vaults = _one(fake, "templates", "RALF Vault Apply")["vaults"]
    fake.edit("templates", tpl["id"], playbook="drifted.sh")
    fake.clear_requests()
    result = seed(client, desired)
    assert result.writes == 1
    # the update read the template on its own first, then put it back whole
    path = f"/api/project/{_pid(fake)}/templates/{tpl['id']}"
    assert [(r.method, r.path) for r in fake.requests[-2:]] == [("GET", path), ("PUT", path)]
    after = _one(fake, "templates", "RALF Vault Apply")
    assert after["playbook"] == RUNNER
    assert after["vaults"] == vaults and after["survey_vars"] == SURVEY


def test_fields_unknown_to_ralf_are_carried_over(fake216, desired):
    from ralf.semaphore.client import SemaphoreClient

    with SemaphoreClient(fake216.url, token=fake216.token) as client:
        seed(client, desired)
        pid = _pid(fake216)
        tpl = _one(fake216, "templates", "RALF Vault Apply")
        vault_env = _one(fake216, "environment", "RALF Vault Env")["id"]
        extra = fake216.insert("environment", pid, name="Team vars", json='{"team": "ops"}', env="{}")["id"]
        fake216.edit("templates", tpl["id"], playbook="drifted.sh", environment_ids=[vault_env, extra],
                     task_params={"allow_override_limit": True}, limit="web", allow_override_branch_in_task=True)
        seed(client, desired)
    after = _one(fake216, "templates", "RALF Vault Apply")
    assert after["playbook"] == RUNNER
    assert after["environment_ids"] == [vault_env, extra]  # a second variable group the user added stays
    assert after["task_params"] == {"allow_override_limit": True} and after["limit"] == "web"
    assert after["allow_override_branch_in_task"] is True


# --------------------------------------------------------------------------- 2. ownership and --prune


def _users_report(fake) -> dict:
    """The user's own "RALF Custom Report" template with its own environment (neither marked)."""
    pid = _pid(fake)
    repo = _one(fake, "repositories", "RALF Local")["id"]
    env = fake.insert("environment", pid, name="RALF Report Env", json="{}", env="{}")
    tpl = fake.insert("templates", pid, name="RALF Custom Report", app="bash", playbook="report.sh",
                      repository_id=repo, environment_id=env["id"], environment_ids=[env["id"]],
                      description="weekly report")
    return {"template": tpl, "environment": env}


def _owned_orphans(fake) -> dict:
    """ralf's own objects the platform no longer names: a template and the environment it uses."""
    pid = _pid(fake)
    repo = _one(fake, "repositories", "RALF Local")["id"]
    env = fake.insert("environment", pid, name="RALF Dashboard Env", json="{}", env=MARKED_ENV)
    tpl = fake.insert("templates", pid, name="RALF Dashboard Apply", app="bash", playbook=RUNNER,
                      repository_id=repo, environment_id=env["id"], environment_ids=[env["id"]],
                      description=f"group dashboard {TEMPLATE_MARK}")
    return {"template": tpl, "environment": env}


def test_prune_leaves_the_users_objects_alone_and_deletes_owned_orphans(fake, client, desired):
    seed(client, desired)
    pid = _pid(fake)
    users = _users_report(fake)
    ours = _owned_orphans(fake)
    fake.clear_requests()
    lines: list[str] = []
    result = seed(client, desired, prune=True, emit=lines.append)
    assert [(w.method, w.path) for w in fake.writes] == [
        ("DELETE", f"/api/project/{pid}/templates/{ours['template']['id']}"),  # the user of the environment first
        ("DELETE", f"/api/project/{pid}/environment/{ours['environment']['id']}"),
    ]
    assert result.writes == 2 and result.changed
    assert users["template"]["id"] in fake.objects["templates"]
    assert users["environment"]["id"] in fake.objects["environment"]
    assert not any("Custom Report" in line or "Report Env" in line for line in lines)
    assert not seed(client, desired, prune=True, check=True).drift


def test_an_owned_environment_still_used_by_the_users_template_is_kept_and_named(fake, client, desired):
    seed(client, desired)
    pid = _pid(fake)
    ours = _owned_orphans(fake)
    users = _users_report(fake)
    # the user pointed their template at ralf's (now unwanted) environment
    fake.edit("templates", users["template"]["id"], environment_id=ours["environment"]["id"],
              environment_ids=[ours["environment"]["id"]])
    fake.clear_requests()
    lines: list[str] = []
    result = seed(client, desired, prune=True, emit=lines.append)
    assert [(w.method, w.path) for w in fake.writes] == [
        ("DELETE", f"/api/project/{pid}/templates/{ours['template']['id']}")]
    [kept] = [a for a in result.plan.actions if a.op == "kept"]
    assert (kept.kind, kept.name) == ("environment", "RALF Dashboard Env")
    assert ("! kept environment 'RALF Dashboard Env' (id {}): ralf's, not in the platform any more, but still used "
            "by template(s) 'RALF Custom Report' (not ralf's); kept").format(ours["environment"]["id"]) in \
        [line.strip() for line in lines]
    assert ours["environment"]["id"] in fake.objects["environment"]
    # what cannot be pruned is reported, not drift: a rerun is clean
    again = seed(client, desired, prune=True)
    assert not again.drift and not again.changed and [a.op for a in again.plan.actions] == ["kept"]


def test_a_template_made_while_seeding_turns_the_in_use_answer_into_kept(fake, client, desired, monkeypatch):
    seed(client, desired)
    pid = _pid(fake)
    ours = _owned_orphans(fake)
    del fake.objects["templates"][ours["template"]["id"]]  # only the unused environment is left to prune
    real_delete = client.delete_object
    repo = _one(fake, "repositories", "RALF Local")["id"]

    def racing_delete(kind, project_id, object_id):
        # someone makes a template on the environment between ralf's read and its delete
        fake.insert("templates", pid, name="Made just now", app="bash", playbook="x.sh", repository_id=repo,
                    environment_id=object_id, environment_ids=[object_id])
        return real_delete(kind, project_id, object_id)

    monkeypatch.setattr(client, "delete_object", racing_delete)
    lines: list[str] = []
    result = seed(client, desired, prune=True, emit=lines.append)
    [action] = result.plan.actions
    assert (action.op, action.name, action.note) == ("kept", "RALF Dashboard Env", "the server says it is in use")
    assert any("kept environment 'RALF Dashboard Env'" in line for line in lines)
    assert ours["environment"]["id"] in fake.objects["environment"]
    assert result.writes == 1  # the DELETE was sent (and refused)


def test_check_reports_an_owned_orphan_as_drift_and_ignores_the_users(fake, client, desired):
    seed(client, desired)
    _users_report(fake)
    assert not seed(client, desired, check=True).drift
    _owned_orphans(fake)
    lines: list[str] = []
    result = seed(client, desired, check=True, emit=lines.append)
    assert result.drift and not result.changed
    assert sorted((a.op, a.name) for a in result.plan.actions) == [("orphan", "RALF Dashboard Apply"),
                                                                   ("orphan", "RALF Dashboard Env")]
    assert any("? orphan template 'RALF Dashboard Apply'" in line and "--prune deletes it" in line for line in lines)


def test_objects_created_by_ralf_carry_the_marker(fake, client, desired):
    seed(client, desired)
    pid = _pid(fake)
    for kind in ("templates", "environment", "inventory"):
        ours = [o for o in fake.objects[kind].values() if o["project_id"] == pid and o["name"] != "Empty"]
        assert ours and all(is_owned(kind, o) for o in ours), kind
    assert _one(fake, "inventory", "RALF Inventory")["inventory"].startswith(INVENTORY_MARK + "\n[all:vars]")
    assert _one(fake, "templates", "RALF Vault Apply")["description"] == f"group vault: vaultwarden {TEMPLATE_MARK}"
    assert not is_owned("environment", _one(fake, "environment", "Empty"))


# --------------------------------------------------------------------------- 3. adopting the original's project


def _original_project(fake, catalog) -> int:
    """A project as the user's original semaphore_seed.sh (dc0bd2ec) left it: 28 templates, 23 environments,
    /usr/local/bin/ralf-semaphore-run with "[]" arguments, a bare-IP inventory, key id 1 hard-coded."""
    pid = fake.add_project("RALF Bootstrap")
    cleanroom = ("MinIO", "Postgres", "Gitea", "Semaphore")  # the pairs the original did not have
    templates = [t for t in catalog.templates if not any(f" {w} " in f" {t.name} " for w in cleanroom)]
    envs = {t.environment: t.env for t in templates}
    inv = fake.insert("inventory", pid, name="RALF Inventory", type="static",
                      inventory="[postgres]\n10.10.20.10\n\n[minio]\n10.10.30.10\n")
    repo = fake.insert("repositories", pid, name="RALF Local", git_url="file:///opt/ralf/repo", git_branch="main",
                       ssh_key_id=1)
    env_ids = {name: fake.insert("environment", pid, name=name, json="{}", env=json.dumps(env))["id"]
               for name, env in envs.items()}
    for t in templates:
        smoke = t.kind == "smoke"
        fields = dict(name=t.name, app="bash", repository_id=repo["id"], inventory_id=inv["id"],
                      playbook="/usr/local/bin/ralf-semaphore-smoke" if smoke else "/usr/local/bin/ralf-semaphore-run",
                      arguments=json.dumps([t.target]) if smoke else "[]", environment_id=env_ids[t.environment])
        if fake.version == "2.16":  # the original sent only environment_id, which 2.16 does not read
            fields.update(environment_id=None, environment_ids=[])
        fake.insert("templates", pid, **fields)
    assert (len(templates), len(envs)) == (28, 23)
    return pid


def test_an_original_project_is_adopted_in_one_run_without_duplicates(fake, client, desired, default_catalog):
    pid = _original_project(fake, default_catalog)
    vault_apply = fake.find("templates", pid, "RALF Vault Apply")[0]
    _user_vault_and_survey(fake, vault_apply["id"])
    lines: list[str] = []
    result = seed(client, desired, emit=lines.append)
    ops = {}
    for a in result.plan.actions:
        ops.setdefault((a.op, a.kind), []).append(a.name)
    assert len(ops[("adopt", "templates")]) == 28 and len(ops[("adopt", "environment")]) == 23
    assert ops[("adopt", "inventory")] == ["RALF Inventory"]
    assert len(ops[("create", "templates")]) == 8 and len(ops[("create", "environment")]) == 4
    # the run says what it took over and what it changed in each
    text = "\n".join(lines)
    assert f"~ adopt template 'RALF Vault Apply' (id {vault_apply['id']}): not marked as ralf's" in text
    assert f'playbook: "/usr/local/bin/ralf-semaphore-run" → "{RUNNER}"' in text
    assert 'arguments: [] → ["ralf stacks run"]' in text
    assert f"{28 + 23 + 1} to adopt" in result.plan.summary()
    if fake.version == "2.16":
        assert 'environment_id: null → "RALF Vault Env"' in text
    # no duplicates, every template marked, the user's vault and survey kept
    for kind in ("templates", "environment", "inventory", "repositories"):
        names = [o["name"] for o in fake.objects[kind].values() if o["project_id"] == pid]
        assert len(names) == len(set(names)), kind
    after = fake.find("templates", pid, "RALF Vault Apply")[0]
    assert is_owned("templates", after) and after["survey_vars"] == SURVEY and after["vaults"]
    assert after["playbook"] == RUNNER
    # converged in one run
    again = seed(client, desired)
    assert not again.drift and not again.changed


# --------------------------------------------------------------------------- 4. truthful reporting


def test_references_in_diffs_are_named(fake, client, desired):
    seed(client, desired)
    ai_env = _one(fake, "environment", "RALF AI Env")["id"]
    inv = fake.insert("inventory", _pid(fake), name="Scratch", type="static", inventory="")["id"]
    tpl = _one(fake, "templates", "RALF Vault Apply")
    fake.edit("templates", tpl["id"], environment_id=ai_env, environment_ids=[ai_env], inventory_id=inv)
    [action] = seed(client, desired, check=True).plan.changes
    assert [d.render() for d in action.diffs] == ['inventory_id: "Scratch" → "RALF Inventory"',
                                                  'environment_id: "RALF AI Env" → "RALF Vault Env"']


def test_login_with_user_and_password_is_not_a_change(fake, desired):
    from ralf.semaphore.client import SemaphoreClient

    with SemaphoreClient(fake.url, token=fake.token) as c:
        seed(c, desired)
    fake.clear_requests()
    with SemaphoreClient(fake.url, user=fake.user, password=fake.password) as c:
        result = seed(c, desired)
        check = seed(c, desired, check=True)
    assert fake.count("POST", "/auth/login") == 1 and fake.count("POST", "/user/tokens") == 1
    assert result.writes == 0 and not result.changed
    assert check.writes == 0 and not check.drift


@pytest.mark.parametrize("check", [False, True])
def test_cli_noop_with_user_and_password_prints_changed_0(fake, run_cli, repo_root, check):
    platform = str(repo_root / "platform.yaml")
    code, _, err = run_cli("semaphore", "seed", "--platform", platform,
                           env={"SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": fake.token})
    assert code == 0, err
    creds = {"SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": "", "SEMAPHORE_USER": fake.user,
             "SEMAPHORE_PASSWORD": fake.password}
    args = ["semaphore", "seed", "--platform", platform] + (["--check"] if check else [])
    code, out, err = run_cli(*args, env=creds)
    assert code == 0, err
    tail = out.strip().splitlines()[-2:]
    assert tail == (["DRIFT=0", "CHANGED=0"] if check else ["PROJECT_ID=1", "CHANGED=0"])
    assert fake.password not in out + err


def test_cli_check_exits_1_for_an_owned_orphan(fake, run_cli, repo_root):
    env = {"SEMAPHORE_URL": fake.url, "SEMAPHORE_TOKEN": fake.token}
    platform = str(repo_root / "platform.yaml")
    assert run_cli("semaphore", "seed", "--platform", platform, env=env)[0] == 0
    _users_report(fake)
    code, out, _ = run_cli("semaphore", "seed", "--check", "--platform", platform, env=env)
    assert code == 0 and out.strip().splitlines()[-2:] == ["DRIFT=0", "CHANGED=0"]
    ours = _owned_orphans(fake)
    code, out, _ = run_cli("semaphore", "seed", "--check", "--platform", platform, env=env)
    assert code == 1 and out.strip().splitlines()[-2:] == ["DRIFT=1", "CHANGED=0"]
    assert f"? orphan template 'RALF Dashboard Apply' (id {ours['template']['id']})" in out
    code, out, _ = run_cli("semaphore", "seed", "--prune", "--platform", platform, env=env)
    assert code == 0 and out.strip().splitlines()[-1] == "CHANGED=1"
    assert ours["template"]["id"] not in fake.objects["templates"]
