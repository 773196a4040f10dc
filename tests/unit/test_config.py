from pathlib import Path

import pytest

from heron.config import Config
from heron.errors import ConfigError


def make(**values):
    return Config(_env_file=None, **values)


def test_defaults_match_the_documented_ones():
    config = make()
    assert config.worker_pool_size == 5
    assert config.event_visibility_timeout == 300
    assert config.max_retry_count == 3
    assert config.retry_backoff_base_seconds == 10
    assert config.database_url is None


def test_environment_is_read(monkeypatch):
    monkeypatch.setenv("WORKER_POOL_SIZE", "7")
    monkeypatch.setenv("MAX_RETRY_COUNT", "1")
    config = make()
    assert (config.worker_pool_size, config.max_retry_count) == (7, 1)


def test_env_file_is_read(tmp_path):
    env = tmp_path / ".env"
    env.write_text("WORKER_POOL_SIZE=9\n")
    assert Config(_env_file=env).worker_pool_size == 9


def test_invalid_values_are_all_reported_at_once(monkeypatch):
    monkeypatch.setenv("WORKER_POOL_SIZE", "zero")
    monkeypatch.setenv("EVENT_VISIBILITY_TIMEOUT", "-1")
    with pytest.raises(ConfigError) as caught:
        make()
    text = str(caught.value)
    assert "WORKER_POOL_SIZE" in text
    assert "EVENT_VISIBILITY_TIMEOUT" in text
    assert len(caught.value.problems) == 2


def test_validate_names_every_problem_and_how_to_fix_it():
    config = make(
        database_url="mysql://localhost/heron",
        slack_app_token="xoxb-wrong-kind",
        slack_signing_secret="s3cret",
    )
    with pytest.raises(ConfigError) as caught:
        config.validate()
    problems = caught.value.problems
    assert len(problems) == 3
    assert any("DATABASE_URL" in p and "postgresql://" in p for p in problems)
    assert any("SLACK_APP_TOKEN" in p and "xapp-" in p for p in problems)
    assert any("SLACK_BOT_TOKEN is required" in p for p in problems)


def test_slack_settings_are_required_only_when_slack_is_on():
    make().validate()
    make(slack_app_token="xapp-1", slack_bot_token="xoxb-1").validate()


def test_secrets_are_masked_in_logged_configuration():
    config = make(
        database_url="postgresql://heron:hunter2@db:5432/heron",
        slack_bot_token="xoxb-very-secret",
        anthropic_api_key="sk-ant-secret",
    )
    shown = repr(config.masked())
    assert "hunter2" not in shown
    assert "very-secret" not in shown
    assert "sk-ant" not in shown
    assert config.masked()["database_url"] == "postgresql://heron:***@db:5432/heron"


def test_invalid_secret_values_are_not_echoed(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "[]")
    monkeypatch.setenv("WORKER_POOL_SIZE", "many")
    with pytest.raises(ConfigError) as caught:
        make(database_url=["postgresql://u:hunter2@h/d"])
    assert "hunter2" not in str(caught.value)


def test_env_sample_lists_every_setting() -> None:
    from pathlib import Path

    sample = (Path(__file__).parents[2] / ".env.sample").read_text()
    missing = [name.upper() for name in Config.model_fields if f"{name.upper()}=" not in sample]
    assert missing == []


def test_the_mcp_token_is_read_from_dotenv_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from heron.mcp_servers.serving import http_token

    monkeypatch.delenv("HERON_MCP_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("HERON_MCP_TOKEN=from-dotenv\n")
    assert http_token("0.0.0.0") == "from-dotenv"
    monkeypatch.setenv("HERON_MCP_TOKEN", "from-env")
    assert http_token("0.0.0.0") == "from-env"


def settings_table() -> str:
    """README's configuration table, as Config describes its settings."""
    lines = ["| setting | default | what it does |", "|---|---|---|"]
    for name, field in Config.model_fields.items():
        default = "" if field.default is None else f"`{field.default}`"
        what = (field.description or "").replace("|", "\\|")
        lines.append(f"| `{name.upper()}` | {default} | {what} |")
    return "\n".join(lines)


def test_readme_configuration_table_is_config() -> None:
    """Every setting is described, and README's table says what Config says."""
    undescribed = [name for name, field in Config.model_fields.items() if not field.description]
    assert undescribed == []
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    start, end = "<!-- settings:start -->\n", "\n<!-- settings:end -->"
    table = readme[readme.index(start) + len(start) : readme.index(end)]
    assert table == settings_table(), "paste this into README.md:\n" + settings_table()


def test_without_the_embedded_database_database_url_is_required() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL is required"):
        make(heron_embedded_database=False).validate()
    make(heron_embedded_database=False, database_url="postgresql://h/d").validate()
