"""Rendered configuration: TLS between the platform's services verified against the platform CA,
and Synapse's public names behind nginx.

Real Ansible renders the roles' own templates with the roles' own defaults and vars, driven by the
repository's platform.yaml (domain otta.zone, public names matrix.otta.zone and otta.zone) and an
inventory that hands every host the CA (``ralf_ca_cert_src``, as ralf's does); the nginx_tls
variables are taken from the synapse role's tasks as written; the site is then checked by nginx
itself (``nginx -t``) with a certificate from a platform CA. Gitea, Semaphore, Vaultwarden and n8n
render twice: on a host with the CA (PostgreSQL verified) and on one without (``ralf_ca_cert_src``
empty: each service's former default).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"
BIN = Path(sys.executable).parent

pytestmark = pytest.mark.slow  # every test reads what a real Ansible run rendered


def _synapse_nginx_vars() -> dict:
    tasks = yaml.safe_load((ROLES / "synapse" / "tasks" / "main.yml").read_text())
    (include,) = [t for t in tasks if t.get("ansible.builtin.include_role", {}).get("name") == "nginx_tls"]
    return include["vars"]


# The templates that hold each service's PostgreSQL connection.
APP_TEMPLATES = {"gitea": ["app.ini"], "semaphore": ["config.json"], "vaultwarden": ["vaultwarden.env"],
                 "n8n": ["n8n.env"]}
APP_SECRETS = {
    "postgres": {"GITEA_DB_PASSWORD": "g", "SEMAPHORE_DB_PASSWORD": "s", "VAULTWARDEN_DB_PASSWORD": "v",
                 "N8N_DB_PASSWORD": "n"},
    "gitea": {"GITEA_SECRET_KEY": "k"}, "vaultwarden": {"VAULTWARDEN_ADMIN_TOKEN": "t"},
    "semaphore": {"SEMAPHORE_COOKIE_HASH": "h", "SEMAPHORE_COOKIE_ENCRYPTION": "e", "SEMAPHORE_ACCESS_KEY_ENCRYPTION": "a"},
    "n8n": {"N8N_ENCRYPTION_KEY": "e"},
}


def _role_task(role: str, name: str) -> dict:
    tasks = yaml.safe_load((ROLES / role / "tasks" / "main.yml").read_text())
    (task,) = [t for t in tasks if t.get("name") == name]
    return task


def _app_play(out: Path, role: str, templates: list[str]) -> dict:
    """Each template to ``<host>.<file>``; n8n also runs its role's CA task as written (dest and owner aside)."""
    tasks: list[dict] = [{"name": f, "ansible.builtin.template": {
        "src": str(ROLES / role / "templates" / f"{f}.j2"), "dest": f"{out}/{{{{ inventory_hostname }}}}.{f}"}}
        for f in templates]
    if role == "n8n":
        ca_task = _role_task("n8n", "Write the CA n8n verifies PostgreSQL with")
        copy = {k: v for k, v in ca_task["ansible.builtin.copy"].items() if k not in ("owner", "group")}
        tasks.append({**ca_task, "ansible.builtin.copy": {**copy, "dest": f"{out}/{{{{ inventory_hostname }}}}.ca.pem"}})
        hosts_task = _role_task("n8n", "Resolve PostgreSQL's certificate name to its address")
        tasks.append({**hosts_task, "ansible.builtin.lineinfile": {
            **hosts_task["ansible.builtin.lineinfile"], "path": f"{out}/{{{{ inventory_hostname }}}}.hosts", "create": True}})
    return {"name": f"Render the {role} configuration", "hosts": role, "gather_facts": False,
            "vars_files": [str(REPO / "ansible" / "vars" / "ralf.yml"),
                           *(str(ROLES / role / d / "main.yml") for d in ("defaults", "vars")
                             if (ROLES / role / d / "main.yml").exists())],
            "vars": {"ralf_secrets_env": APP_SECRETS}, "handlers": [{"name": "Restart n8n", "ansible.builtin.debug": {}}],
            "tasks": tasks}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synapse-render")
    (out / "tls").mkdir()
    (out / "inventory.ini").write_text(textwrap.dedent("""\
        [all:vars]
        ansible_connection=local
        ansible_python_interpreter={py}
        ralf_ca_cert_src=/secrets/ca/ca.pem
        [synapse]
        synapse ansible_host=10.10.110.10
        [mail]
        mail ansible_host=10.10.110.20
        [postgres]
        postgres ansible_host=10.10.20.10 ralf_tls_server_name=postgres.homelab.lan
        [gitea]
        gitea-ca ansible_host=10.10.30.10
        gitea-noca ansible_host=10.10.30.11 ralf_ca_cert_src=''
        [semaphore]
        semaphore-ca ansible_host=10.10.40.10
        semaphore-noca ansible_host=10.10.40.11 ralf_ca_cert_src=''
        [vaultwarden]
        vaultwarden-ca ansible_host=10.10.40.30
        vaultwarden-noca ansible_host=10.10.40.31 ralf_ca_cert_src=''
        [n8n]
        n8n-ca ansible_host=10.10.40.50 ralf_ca_cert_src={ca}
        n8n-noca ansible_host=10.10.40.51 ralf_ca_cert_src=''
        """).format(py=sys.executable, ca=out / "ca.pem"))
    from ralf.pki import CA

    CA(out / "ca.pem", out / "ca.key", common_name="render test CA").ensure()
    files = [ROLES / "synapse" / "defaults" / "main.yml", ROLES / "synapse" / "vars" / "main.yml",
             ROLES / "nginx_tls" / "defaults" / "main.yml"]
    play = [{
        "name": "Render the Synapse configuration", "hosts": "synapse", "gather_facts": False,
        "vars_files": [str(REPO / "ansible" / "vars" / "ralf.yml"), *map(str, files)],
        "vars": {"ralf_secrets_env": {
            "postgres": {"SYNAPSE_DB_PASSWORD": "db-pw"}, "mail": {"MAIL_PASSWORD_RALF": "mail-pw"},
            "synapse": {"SYNAPSE_REGISTRATION_SHARED_SECRET": "r", "SYNAPSE_MACAROON_SECRET_KEY": "m",
                        "SYNAPSE_FORM_SECRET": "f"}}},
        "tasks": [
            {"name": "ralf.yaml", "ansible.builtin.template": {
                "src": str(ROLES / "synapse" / "templates" / "ralf.yaml.j2"), "dest": f"{out}/ralf.yaml"}},
            {"name": "The nginx site as the synapse role includes nginx_tls",
             "vars": {**_synapse_nginx_vars(), "nginx_tls_dir": f"{out}/tls"},
             "block": [
                 {"name": "site", "ansible.builtin.template": {
                     "src": str(ROLES / "nginx_tls" / "templates" / "site.conf.j2"), "dest": f"{out}/site.conf"}},
                 {"name": "well-known", "ansible.builtin.copy": {
                     "content": "{{ nginx_tls_well_known | to_json }}", "dest": f"{out}/well-known.json"}},
             ]},
        ],
    }, {
        "name": "Render the mail configuration", "hosts": "mail", "gather_facts": False,
        "vars_files": [str(REPO / "ansible" / "vars" / "ralf.yml"),
                       *(str(ROLES / "mail" / d / "main.yml") for d in ("defaults", "vars"))],
        "vars": {"ralf_secrets_env": {"postgres": {"MAIL_DB_PASSWORD": "pw/with:odd@chars"}}},
        "tasks": [{"name": f, "ansible.builtin.template": {"src": str(ROLES / "mail" / "templates" / f"{f}.j2"),
                                                            "dest": f"{out}/{f}"}}
                  for f in ("pgsql-users.cf", "pgsql-domains.cf", "dovecot-sql.conf.ext", "main.cf")]
                 + [{"name": "psql environment", "ansible.builtin.copy": {
                     "content": "{{ mail_pg_environment | to_json }}", "dest": f"{out}/mail-pg-env.json"}}],
    }, *(_app_play(out, role, templates) for role, templates in APP_TEMPLATES.items())]
    (out / "play.yml").write_text(yaml.safe_dump(play, sort_keys=False))
    env = {**os.environ, "RALF_PLATFORM": str(REPO / "platform.yaml"), "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_LOCAL_TEMP": str(out / "ansible-tmp"), "ANSIBLE_RETRY_FILES_ENABLED": "0",
           "ANSIBLE_FILTER_PLUGINS": ":".join(str(ROLES / r / "filter_plugins") for r in ("ralf_secrets", "vaultwarden"))}
    playbook = BIN / "ansible-playbook"
    r = subprocess.run([str(playbook) if playbook.exists() else "ansible-playbook", "-i", str(out / "inventory.ini"),
                        str(out / "play.yml")], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    return out


def test_synapse_sends_mail_only_over_starttls_verified_for_the_mail_servers_name(rendered):
    conf = yaml.safe_load((rendered / "ralf.yaml").read_text())
    email = conf["email"]
    assert (email["smtp_host"], email["smtp_port"]) == ("10.10.110.20", 587)
    # require_transport_security: no STARTTLS, no mail; tlsname: the name the mail CT's certificate
    # from the platform CA carries (Twisted verifies it against the system store the base role fills).
    assert email["require_transport_security"] is True and email["enable_tls"] is True
    assert email["tlsname"] == "mail.homelab.lan"
    assert "force_tls" not in email  # 587 speaks STARTTLS, not implicit TLS


def test_synapse_public_base_url_is_the_first_public_name(rendered):
    conf = yaml.safe_load((rendered / "ralf.yaml").read_text())
    assert conf["public_baseurl"] == "https://matrix.otta.zone"


def test_well_known_documents_send_servers_and_clients_to_the_public_host(rendered):
    docs = json.loads((rendered / "well-known.json").read_text())
    assert docs == {"matrix/server": {"m.server": "matrix.otta.zone:443"},
                    "matrix/client": {"m.homeserver": {"base_url": "https://matrix.otta.zone"}}}


def test_the_site_serves_every_public_name_proxies_only_matrix_paths_and_json_with_cors(rendered):
    site = (rendered / "site.conf").read_text()
    server_name = next(line for line in site.splitlines() if line.strip().startswith("server_name"))
    assert server_name.split()[1:] == ["matrix.otta.zone", "otta.zone", "10.10.110.10;"]
    assert "location /_matrix {" in site and "location /_synapse/client {" in site
    assert "location / {\n        return 404;\n    }" in site  # nothing else is served (nginx's own page neither)
    for doc in ("matrix/server", "matrix/client"):
        block = site.split(f"location = /.well-known/{doc} {{", 1)[1].split("}", 2)
        body = "}".join(block[:2])
        assert "default_type application/json;" in body and "types { }" in body
        assert 'add_header Access-Control-Allow-Origin "*" always;' in body


@pytest.mark.skipif(not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()), reason="nginx not installed")
def test_nginx_accepts_the_site(rendered, tmp_path):
    from ralf.pki import CA

    ca = CA(tmp_path / "ca.pem", tmp_path / "ca.key")
    ca.issue(tmp_path / "leaf", "matrix.otta.zone", ["10.10.110.10"], aliases=["otta.zone"])
    shutil.copy(tmp_path / "leaf" / "cert.pem", rendered / "tls" / "fullchain.pem")
    shutil.copy(tmp_path / "leaf" / "key.pem", rendered / "tls" / "privkey.pem")
    conf = tmp_path / "nginx.conf"
    conf.write_text(f"pid {tmp_path}/nginx.pid;\nerror_log stderr;\nevents {{}}\n"
                    f"http {{ access_log off; include {rendered}/site.conf; }}\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    r = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(conf)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "syntax is ok" in r.stderr


def test_synapse_verifies_postgresql_for_its_address(rendered):
    db = yaml.safe_load((rendered / "ralf.yaml").read_text())["database"]["args"]
    assert (db["host"], db["sslmode"], db["sslrootcert"]) == (
        "10.10.20.10", "verify-full", "/etc/ssl/certs/ca-certificates.crt")


def test_mail_verifies_postgresql_in_postfix_dovecot_and_its_own_psql(rendered):
    from urllib.parse import parse_qs, unquote, urlsplit

    for cf in ("pgsql-users.cf", "pgsql-domains.cf"):
        hosts = next(line for line in (rendered / cf).read_text().splitlines() if line.startswith("hosts = "))
        uri = urlsplit(hosts.removeprefix("hosts = "))
        assert (uri.scheme, uri.hostname, uri.port, uri.path, uri.username) == (
            "postgresql", "10.10.20.10", 5432, "/mail", "mail")
        assert unquote(uri.password) == "pw/with:odd@chars"
        assert parse_qs(uri.query) == {"sslmode": ["verify-full"], "sslrootcert": ["/etc/ssl/certs/ca-certificates.crt"]}
    main_cf = (rendered / "main.cf").read_text()
    # proxymap runs outside the chroot, where the CA bundle is; smtpd and trivial-rewrite ask it.
    assert "virtual_mailbox_domains = proxy:pgsql:/etc/postfix/pgsql-domains.cf" in main_cf
    assert "virtual_mailbox_maps = proxy:pgsql:/etc/postfix/pgsql-users.cf" in main_cf
    connect = next(line for line in (rendered / "dovecot-sql.conf.ext").read_text().splitlines()
                   if line.startswith("connect = "))
    assert "sslmode=verify-full sslrootcert=/etc/ssl/certs/ca-certificates.crt" in connect
    env = json.loads((rendered / "mail-pg-env.json").read_text())
    assert (env["PGSSLMODE"], env["PGSSLROOTCERT"]) == ("verify-full", "/etc/ssl/certs/ca-certificates.crt")


CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def _ini_section(text: str, section: str) -> dict[str, str]:
    import configparser

    parser = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string("[top]\n" + text)
    return dict(parser[section])


def test_gitea_verifies_postgresql_for_its_address(rendered):
    db = _ini_section((rendered / "gitea-ca.app.ini").read_text(), "database")
    # Gitea builds postgres://gitea:...@HOST/<NAME up to ?>?<NAME after ?>&sslmode=<SSL_MODE> for lib/pq.
    assert (db["HOST"], db["SSL_MODE"], db["NAME"]) == ("10.10.20.10:5432", "verify-full", f"gitea?sslrootcert={CA_BUNDLE}")
    without = _ini_section((rendered / "gitea-noca.app.ini").read_text(), "database")
    assert (without["SSL_MODE"], without["NAME"]) == ("disable", "gitea")


def test_semaphore_verifies_postgresql_for_its_address(rendered):
    pg = json.loads((rendered / "semaphore-ca.config.json").read_text())["postgres"]
    assert pg["host"] == "10.10.20.10:5432"
    assert pg["options"] == {"sslmode": "verify-full", "sslrootcert": CA_BUNDLE}
    without = json.loads((rendered / "semaphore-noca.config.json").read_text())["postgres"]
    assert without["options"] == {"sslmode": "disable"}


def _env_value(path: Path, key: str) -> str | None:
    from ralf import envfile

    return envfile.read(path).get(key)


def test_vaultwarden_verifies_postgresql_for_its_address(rendered):
    from urllib.parse import parse_qs, urlsplit

    url = urlsplit(_env_value(rendered / "vaultwarden-ca.vaultwarden.env", "DATABASE_URL") or "")
    assert (url.scheme, url.hostname, url.port, url.path, url.username) == (
        "postgresql", "10.10.20.10", 5432, "/vaultwarden", "vaultwarden")
    assert parse_qs(url.query) == {"sslmode": ["verify-full"], "sslrootcert": [CA_BUNDLE]}
    without = urlsplit(_env_value(rendered / "vaultwarden-noca.vaultwarden.env", "DATABASE_URL") or "")
    assert parse_qs(without.query)["sslmode"] == ["prefer"]


def test_n8n_verifies_postgresql_against_the_platform_ca_for_its_certificates_name(rendered):
    env = rendered / "n8n-ca.n8n.env"
    # By name: node-postgres sends none for an IP address and Node would check the certificate for
    # "localhost". The name is the one ralf's inventory says the certificate is issued for, and it
    # resolves to PostgreSQL's address in the CT's /etc/hosts.
    assert _env_value(env, "DB_POSTGRESDB_HOST") == "postgres.homelab.lan"
    assert (rendered / "n8n-ca.hosts").read_text() == "10.10.20.10 postgres.homelab.lan\n"
    # n8n reads the PEM from the _FILE path (DB_POSTGRESDB_SSL_CA itself would be taken as PEM text).
    assert (_env_value(env, "DB_POSTGRESDB_SSL_ENABLED"), _env_value(env, "DB_POSTGRESDB_SSL_CA_FILE"),
            _env_value(env, "DB_POSTGRESDB_SSL_REJECT_UNAUTHORIZED")) == ("true", "/etc/n8n/postgres-ca.pem", "true")
    assert _env_value(env, "DB_POSTGRESDB_SSL_CA") is None
    # The file holds the platform CA itself, with no trailing whitespace for n8n to warn about.
    ca = (rendered / "ca.pem").read_text()
    assert (rendered / "n8n-ca.ca.pem").read_text() == ca.rstrip() and ca.startswith("-----BEGIN CERTIFICATE-----")
    without = rendered / "n8n-noca.n8n.env"
    assert _env_value(without, "DB_POSTGRESDB_HOST") == "10.10.20.10"
    assert not (rendered / "n8n-noca.hosts").exists()
    assert not any(_env_value(without, k) for k in ("DB_POSTGRESDB_SSL_ENABLED", "DB_POSTGRESDB_SSL_CA_FILE"))
    assert not (rendered / "n8n-noca.ca.pem").exists()
