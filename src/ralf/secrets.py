"""Secret files: ``<service>.env`` dotenv files in the platform's secrets directory.

``init_secrets`` creates the files the platform asks for (``secrets:`` of each service): ``@random`` /
``@random:N`` become random alphanumerics (at least 32 characters), other values are written as
given. Existing files are never rewritten: keys the platform newly requires are appended, existing
keys keep their values. The directory is 0700, every file ralf writes 0600.

Values never leave this module in a message: reports and errors carry file and key names only.
"""

from __future__ import annotations

import os
import secrets as _random
import stat
import string
from dataclasses import dataclass, field
from pathlib import Path

from ralf.errors import SecretError
from ralf.model import Platform, random_secret_length

ALPHABET = string.ascii_letters + string.digits
DIR_MODE = 0o700
FILE_MODE = 0o600


# --------------------------------------------------------------------------- dotenv


def parse_env_text(text: str) -> dict[str, str]:
    """Parse dotenv text: split at the first ``=``, ignore blank and ``#`` lines, drop matching quotes."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        key = key.strip()
        if key.startswith("export "):
            key = key[len("export "):].strip()
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        if key:
            out[key] = value
    return out


def read_env_file(path: str | os.PathLike) -> dict[str, str]:
    """Read a dotenv file; a missing or unreadable file is a :class:`SecretError` naming the file."""
    p = Path(path)
    try:
        return parse_env_text(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SecretError(f"secret file {p} does not exist (run `ralf secrets init`)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SecretError(f"cannot read secret file {p}: {getattr(e, 'strerror', None) or type(e).__name__}") from None


def format_env_line(key: str, value: str) -> str:
    if value == "" or any(c.isspace() or c in "#\"'" for c in value):
        escaped = value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{key}="{escaped}"'
    return f"{key}={value}"


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically with mode 0600 (the temp file is never world-readable)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def random_value(length: int = 32) -> str:
    """Random alphanumerics with at least one digit, upper- and lower-case letter each (what password
    rules such as n8n's ask for; a draw without them is simply drawn again)."""
    while True:
        value = "".join(_random.choice(ALPHABET) for _ in range(max(32, length)))
        if any(c.isdigit() for c in value) and any(c.isupper() for c in value) and any(c.islower() for c in value):
            return value


# --------------------------------------------------------------------------- platform secrets


def required_secrets(platform: Platform) -> dict[str, dict[str, str]]:
    """File name → {key: spec} for every service with ``secrets:`` (spec is a literal or ``@random[:N]``)."""
    return {f"{name}.env": dict(svc.secrets) for name, svc in platform.services.items() if svc.secrets}


@dataclass
class FileReport:
    file: str
    status: str  # created | updated | unchanged | missing | incomplete | ok
    keys: list[str] = field(default_factory=list)  # keys added (init) or missing (check)
    note: str = ""

    def to_dict(self) -> dict:
        d = {"file": self.file, "status": self.status, "keys": list(self.keys)}
        if self.note:
            d["note"] = self.note
        return d


@dataclass
class SecretsReport:
    dir: Path
    files: list[FileReport]

    @property
    def ok(self) -> bool:
        return all(f.status in ("created", "updated", "unchanged", "ok") for f in self.files)

    @property
    def changed(self) -> bool:
        return any(f.status in ("created", "updated") for f in self.files)

    def to_dict(self) -> dict:
        return {"dir": str(self.dir), "ok": self.ok, "files": [f.to_dict() for f in self.files]}


def _ensure_dir(d: Path) -> None:
    try:
        d.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
        os.chmod(d, DIR_MODE)
    except OSError as e:
        raise SecretError(f"cannot create the secrets directory {d}: {e.strerror}") from None


def _value(spec: str) -> str:
    n = random_secret_length(spec)
    return random_value(n) if n is not None else spec


def init_secrets(platform: Platform) -> SecretsReport:
    """Create missing secret files and append newly required keys; existing values are never touched."""
    d = platform.secrets_path
    _ensure_dir(d)
    reports: list[FileReport] = []
    for fname, spec in required_secrets(platform).items():
        path = d / fname
        if not path.exists():
            text = f"# {fname}: generated by `ralf secrets init`; keep private (0600)\n"
            text += "".join(format_env_line(k, _value(v)) + "\n" for k, v in spec.items())
            _write(path, text)
            reports.append(FileReport(fname, "created", list(spec)))
            continue
        existing_text = _read_text(path)
        have = parse_env_text(existing_text)
        missing = [k for k in spec if k not in have]
        if not missing:
            reports.append(FileReport(fname, "unchanged"))
            continue
        text = existing_text
        if text and not text.endswith("\n"):
            text += "\n"
        text += "".join(format_env_line(k, _value(spec[k])) + "\n" for k in missing)
        _write(path, text)
        reports.append(FileReport(fname, "updated", missing))
    return SecretsReport(d, reports)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise SecretError(f"cannot read secret file {path}: {getattr(e, 'strerror', None) or type(e).__name__}") from None


def _write(path: Path, text: str) -> None:
    try:
        _write_private(path, text)
    except OSError as e:
        raise SecretError(f"cannot write secret file {path}: {e.strerror}") from None


def check_secrets(platform: Platform, environ: dict[str, str] | None = None) -> SecretsReport:
    """What is missing: service files and keys, the Proxmox and state-backend credentials, loose modes."""
    env = os.environ if environ is None else environ
    d = platform.secrets_path
    reports: list[FileReport] = []
    wanted: dict[str, list[str]] = {f: list(spec) for f, spec in required_secrets(platform).items()}
    # Credentials ralf itself reads (they may also come from the environment).
    env_ok: dict[str, set[str]] = {}
    if platform.state_backend is not None:
        sb = platform.state_backend
        keys = wanted.setdefault(sb.credentials_file, [])
        for k in (sb.access_key_var, sb.secret_key_var):
            if k not in keys:
                keys.append(k)
    if platform.proxmox is not None:
        keys = wanted.setdefault(platform.proxmox.credentials_file, [])
        for k in ("PVE_TOKEN_ID", "PVE_TOKEN_SECRET"):
            if k not in keys:
                keys.append(k)
        env_ok[platform.proxmox.credentials_file] = {k for k in ("PVE_TOKEN_ID", "PVE_TOKEN_SECRET") if env.get(k)}
    if d.exists() and stat.S_IMODE(d.stat().st_mode) & 0o077:
        reports.append(FileReport(".", "insecure", note=f"directory mode is {oct(stat.S_IMODE(d.stat().st_mode))}, expected 0700"))
    for fname, keys in wanted.items():
        from_env = env_ok.get(fname, set())
        path = d / fname
        if not path.exists():
            missing = [k for k in keys if k not in from_env]
            reports.append(FileReport(fname, "ok" if not missing else "missing", missing,
                                      note="from the environment" if not missing else ""))
            continue
        have = {k for k, v in read_env_file(path).items() if v != ""}
        missing = [k for k in keys if k not in have and k not in from_env]
        mode = stat.S_IMODE(path.stat().st_mode)
        if missing:
            reports.append(FileReport(fname, "incomplete", missing))
        elif mode & 0o077:
            reports.append(FileReport(fname, "insecure", note=f"mode is {oct(mode)}, expected 0600"))
        else:
            reports.append(FileReport(fname, "ok"))
    return SecretsReport(d, reports)


def load_secret(platform: Platform, file: str, key: str) -> str:
    """One secret value; a missing file or key is a :class:`SecretError` naming both (never a value)."""
    path = platform.secrets_path / file
    values = read_env_file(path)
    value = values.get(key)
    if value is None or value == "":
        raise SecretError(f"secret {key} is missing in {path} (run `ralf secrets init` or add it)")
    return value
