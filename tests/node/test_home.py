"""The data dir: config file parsing, unknown keys, overrides, and the file init writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ApiConfig, ChainConfig, NetworkConfig
from node.errors import ConfigError
from node.home import HOME_ENV, Home, Settings, dump, parse, write


def test_locate_prefers_flag_then_env_then_default(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HOME_ENV, str(tmp_path / "env"))
    assert Home.locate(tmp_path / "flag").root == tmp_path / "flag"
    assert Home.locate().root == tmp_path / "env"
    monkeypatch.delenv(HOME_ENV)
    assert Home.locate().root == Path("~/.workwork").expanduser()
    home = Home(tmp_path)
    assert home.log == tmp_path / "logs" / "node.log"
    assert home.cookie.name == "api.cookie" and home.api_file.name == "api.json"


def test_missing_file_means_defaults(tmp_path: Path) -> None:
    assert Home(tmp_path).settings() == Settings()


def test_written_file_reads_back_the_same(tmp_path: Path) -> None:
    settings = Settings(
        NetworkConfig(
            listen=("/ip4/127.0.0.1/tcp/4001",),
            role="bootstrap",
            follow=(b"\x07" * 32,),
            sync_interval=5,
        ),
        ChainConfig(backend="rpc", url="http://127.0.0.1:8545", confirmations=2),
        ApiConfig(port=8080),
    )
    home = Home(tmp_path)
    write(home.config, settings)
    assert home.settings() == settings
    with pytest.raises(ConfigError, match="refusing to overwrite"):
        write(home.config, Settings())
    assert home.settings() == settings
    assert "gossip_drop" not in dump(settings)
    updated = settings.replace(chain={"contract": "0x" + "ab" * 20})
    write(home.config, updated, replace=True)
    assert home.settings() == updated
    assert not list(tmp_path.glob("*.tmp"))


def test_parse_reads_sections() -> None:
    document = {
        "network": {"bootstrap": [], "target_peers": 3, "sync_interval": 2},
        "api": {"port": 9000},
    }
    settings = parse(document, "x.toml")
    assert settings.network.target_peers == 3
    assert settings.network.sync_interval == 2.0
    assert settings.api.port == 9000
    assert settings.chain == ChainConfig()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[network]\nlisten_addrs = []\n", r"config\.toml: unknown key network\.listen_addrs"),
        ("[nettwork]\n", r"unknown section \[nettwork\]"),
        ("[network]\nlisten = '/ip4/1.2.3.4/tcp/1'\n", "must be a list of strings"),
        ("[network]\ntarget_peers = 'many'\n", "must be an integer"),
        ("[network]\nquic = 1\n", "must be true or false"),
        ("[network]\nfollow = ['xyz']\n", "project ids in hex"),
        ("[api]\nhost = '0.0.0.0'\n", "not loopback"),
        ("[chain]\nbackend = 'rpc'\n", "needs an http"),
        ("[network]\nreachability = 'maybe'\n", "reachability must be 'auto'"),
        ("[network]\nrelay_bytes = 0\n", "relay_bytes and relay_ttl >= 1"),
        ("[network]\nrelay_hop = 'yes'\n", "must be true or false"),
        ("[network]\nspare_slots = -1\n", "spare_slots and grace_period must not be negative"),
        ("[network]\ngrace_period = 'soon'\n", "must be a number"),
        ("network = 3\n", "must be a table"),
        ("[network\n", "not valid TOML"),
    ],
)
def test_bad_config_names_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    home = Home(tmp_path)
    home.config.write_text(text)
    with pytest.raises(ConfigError, match=message) as info:
        home.settings()
    assert str(home.config) in str(info.value)


def test_overrides_apply_on_top_and_are_checked() -> None:
    base = Settings(api=ApiConfig(port=1234))
    changed = base.replace(network={"role": "bootstrap"}, api={"host": "::1"})
    assert changed.network.role == "bootstrap"
    assert changed.api == ApiConfig(host="::1", port=1234)
    assert base.network.role == "personal"  # unchanged: settings are values
    with pytest.raises(ConfigError, match=r"unknown setting api\.bind"):
        base.replace(api={"bind": "x"})
    with pytest.raises(ConfigError, match="not loopback"):
        base.replace(api={"host": "10.0.0.1"})
    assert base.replace(api={"host": "10.0.0.1", "allow_remote": True}).api.allow_remote
