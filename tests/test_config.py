"""Settings from defaults, a TOML file and REALNAME_* environment variables."""

from __future__ import annotations

import pytest

from server.config import ConfigError, Settings, describe_settings, load_settings


def test_defaults_need_no_configuration():
    settings = load_settings(environ={})
    assert settings == Settings()
    assert settings.base_url == "http://127.0.0.1:8080" and str(settings.database_path).endswith("realname.sqlite3")


def test_file_then_environment(tmp_path):
    config = tmp_path / "realname.toml"
    config.write_text('port = 9000\nretention_days = 7\nice_servers = [{urls = "turn:turn.example.com:443"}]\n')
    settings = load_settings(str(config), environ={"REALNAME_PORT": "9100", "REALNAME_ICE_LOOPBACK": "yes"})
    assert settings.port == 9100 and settings.retention_days == 7 and settings.ice_loopback is True
    assert settings.ice_servers == [{"urls": "turn:turn.example.com:443"}]


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"REALNAME_PORT": "eighty"}, "expected int"),
        ({"REALNAME_ICE_LOOPBACK": "perhaps"}, "expected bool"),
        ({"REALNAME_ICE_SERVERS": "{}"}, "expected list"),
        ({"REALNAME_ICE_SERVERS": '[{"username": "x"}]'}, "urls"),
        ({"REALNAME_CHALLENGE_COUNT": "9"}, "between 1 and 5"),
        ({"REALNAME_MATCH_FAR": "0.5", "REALNAME_REVIEW_FAR": "0.01"}, "match_far"),
        ({"REALNAME_DATABASE_URL": "mysql://db/realname"}, "postgresql://"),
        ({"REALNAME_INSTANCE_HEARTBEAT_S": "0"}, "positive"),
        ({"REALNAME_EVENT_LOOP": "trio"}, "uvloop"),
    ],
)
def test_bad_values_are_clear_errors(environ, message):
    with pytest.raises(ConfigError, match=message):
        load_settings(environ=environ)


def test_unknown_keys_in_the_file_are_refused(tmp_path):
    config = tmp_path / "realname.toml"
    config.write_text("prot = 1\n")
    with pytest.raises(ConfigError, match="prot"):
        load_settings(str(config), environ={})


def test_every_setting_is_documented():
    rows = describe_settings()
    assert all(env.startswith("REALNAME_") and doc for env, _, doc in rows)


def test_the_service_serves_on_the_event_loop_it_is_told():
    import asyncio

    import uvloop

    from server.app import new_event_loop

    for kind, loop_type in (("uvloop", uvloop.Loop), ("asyncio", asyncio.BaseEventLoop)):
        loop = new_event_loop(kind)
        try:
            assert isinstance(loop, loop_type)
            assert loop.run_until_complete(asyncio.sleep(0, result=kind)) == kind
        finally:
            loop.close()
