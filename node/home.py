"""The data dir: where a node keeps its config, keys, store, API cookie and logs.

Layout (default `~/.workwork`; `--data-dir` or $WORKWORK_HOME choose another):

    config.toml     settings: [network], [chain], [api], [evidence] (see `Settings`)
    host.key        libp2p host key, clear, 0600 (`node.hostkey`)
    identity.key    Ed25519 record-signing key, encrypted, 0600 (`node.keys`)
    wallet.json     EVM wallet, v3 keystore, 0600 (`node.keys`)
    store/          the LevelDB record store (`storage`)
    evidence/       evidence files by sha256, 0600 (`node.evidence`)
    api.cookie      the API token of the running daemon, 0600, rewritten at every start
    api.session     the key of the web app's browser sessions, 0600, made once (node/api/session.py)
    api.json        where the running daemon's API listens: host, port, pid; removed at exit
    logs/node.log   the daemon's log

The config file is read with tomllib into the frozen config objects of `node.config`, so a
file and the flags pass the same checks; a key the objects do not know is an error (a typo
should not silently fall back to a default).
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from node.config import ApiConfig, ChainConfig, EvidenceConfig, NetworkConfig
from node.errors import ConfigError

HOME_ENV = "WORKWORK_HOME"
DEFAULT_HOME = "~/.workwork"

# Fields that exist for tests only; the config file does not offer them.
_HIDDEN = {"network": frozenset({"gossip_drop"})}


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a daemon is configured with, one frozen object per section."""

    network: NetworkConfig = field(default_factory=NetworkConfig)
    chain: ChainConfig = field(default_factory=ChainConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    evidence: EvidenceConfig = field(default_factory=EvidenceConfig)

    def replace(self, **sections: Mapping[str, Any]) -> Settings:
        """Returns these settings with some fields of some sections changed.

        `settings.replace(api={"port": 8080})`; each section is rebuilt, so its checks run.

        Raises:
            ConfigError: an unknown section or field, or a value its section refuses.
        """
        changed: dict[str, Any] = {}
        for section, values in sections.items():
            current = getattr(self, section, None)
            if current is None or section not in _SECTIONS:
                raise ConfigError(f"unknown config section {section!r}")
            names = {f.name for f in dataclasses.fields(current)}
            for key in values:
                if key not in names:
                    raise ConfigError(f"unknown setting {section}.{key}")
            try:
                changed[section] = dataclasses.replace(current, **values)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"[{section}]: {exc}") from None
        return dataclasses.replace(self, **changed)


_SECTIONS: dict[str, type[Any]] = {
    "network": NetworkConfig,
    "chain": ChainConfig,
    "api": ApiConfig,
    "evidence": EvidenceConfig,
}


@dataclass(frozen=True, slots=True)
class Home:
    """The paths of one data dir."""

    root: Path

    @classmethod
    def locate(cls, data_dir: str | os.PathLike[str] | None = None) -> Home:
        """Returns the data dir given, else $WORKWORK_HOME, else ~/.workwork."""
        chosen = data_dir if data_dir is not None else os.environ.get(HOME_ENV) or DEFAULT_HOME
        return cls(Path(chosen).expanduser().absolute())

    @property
    def config(self) -> Path:
        return self.root / "config.toml"

    @property
    def host_key(self) -> Path:
        return self.root / "host.key"

    @property
    def identity(self) -> Path:
        return self.root / "identity.key"

    @property
    def wallet(self) -> Path:
        return self.root / "wallet.json"

    @property
    def store(self) -> Path:
        return self.root / "store"

    @property
    def cookie(self) -> Path:
        return self.root / "api.cookie"

    @property
    def api_file(self) -> Path:
        return self.root / "api.json"

    @property
    def log(self) -> Path:
        return self.root / "logs" / "node.log"

    def settings(self) -> Settings:
        """Reads config.toml; a missing file means all defaults.

        Raises:
            ConfigError: the file is not TOML, or has an unknown section or key, or a value of
                the wrong type or out of bounds; the message names the file.
        """
        if not self.config.exists():
            return Settings()
        try:
            with self.config.open("rb") as file:
                document = tomllib.load(file)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{self.config} is not valid TOML: {exc}") from None
        except OSError as exc:
            raise ConfigError(f"cannot read {self.config}: {exc.strerror}") from None
        return parse(document, self.config)


def parse(document: Mapping[str, Any], source: Path | str) -> Settings:
    """Builds settings from a parsed TOML document; `source` names it in errors."""
    sections: dict[str, dict[str, Any]] = {}
    for section, table in document.items():
        cls = _SECTIONS.get(section)
        if cls is None:
            raise ConfigError(f"{source}: unknown section [{section}]")
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: {section} must be a table ([{section}])")
        types = {f.name: f.default for f in dataclasses.fields(cls)}
        values: dict[str, Any] = {}
        for key, value in table.items():
            if key not in types:
                known = ", ".join(sorted(set(types) - _HIDDEN.get(section, frozenset())))
                raise ConfigError(f"{source}: unknown key {section}.{key} (known: {known})")
            values[key] = _convert(section, key, value, types[key], source)
        sections[section] = values
    try:
        return Settings().replace(**sections)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _convert(section: str, key: str, value: Any, default: Any, source: Path | str) -> Any:
    """Checks a TOML value against the type of the field's default and converts it."""
    where = f"{source}: {section}.{key}"
    if isinstance(default, tuple):
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(f"{where} must be a list of strings")
        if key == "follow":
            try:
                return tuple(bytes.fromhex(v) for v in value)
            except ValueError:
                raise ConfigError(f"{where} must list project ids in hex") from None
        return tuple(value)
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false")
    elif isinstance(default, int):
        if type(value) is not int:
            raise ConfigError(f"{where} must be an integer")
    elif isinstance(default, float):
        if type(value) not in (int, float):
            raise ConfigError(f"{where} must be a number")
        return float(value)
    elif isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where} must be a string")
    return value


def dump(settings: Settings) -> str:
    """Returns settings as the text of a config.toml (every field, so the file documents them)."""
    document: dict[str, dict[str, Any]] = {}
    for section in _SECTIONS:
        values: dict[str, Any] = {}
        for name, value in dataclasses.asdict(getattr(settings, section)).items():
            if name in _HIDDEN.get(section, ()):
                continue
            if isinstance(value, tuple):
                value = [v.hex() if isinstance(v, bytes) else v for v in value]
            values[name] = value
        document[section] = values
    header = (
        "# WorkWork node settings. Flags of `workwork node start` override them.\n"
        "# Reference: README.md, section Configuration.\n\n"
    )
    return header + tomli_w.dumps(document)


def write(path: Path, settings: Settings, *, replace: bool = False) -> None:
    """Writes a config file: a new one, or with `replace` in place of the existing one.

    A replacement is written to a temporary file and renamed over the old one, so a crash never
    leaves half a config.

    Raises:
        ConfigError: the file exists (without `replace`) or cannot be written.
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not replace:
            with path.open("x") as file:
                file.write(dump(settings))
            return
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(dump(settings))
        tmp.replace(path)
    except FileExistsError:
        raise ConfigError(f"{path} exists already; refusing to overwrite it") from None
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror}") from None
