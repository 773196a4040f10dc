"""The MCP servers the agent may use, from a JSON file in the format Claude Desktop and
other MCP clients share:

    {"mcpServers": {
        "linear": {"url": "https://mcp.linear.app/mcp",
                   "headers": {"Authorization": "Bearer ${LINEAR_TOKEN}"},
                   "allowed_tools": ["search_issues", "get_issue"]},
        "files":  {"command": "npx", "args": ["-y", "@modelcontextprotocol/server-filesystem",
                   "/srv/handbook"], "env": {"NODE_ENV": "production"}}}}

`${NAME}` is replaced from the environment (a missing variable is a startup error, so a
secret never silently becomes an empty header). Set `"enabled": false` to keep an entry
without using it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from heron.errors import ConfigError

_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,40}$")


@dataclass(frozen=True, slots=True)
class McpServerSpec:
    """One MCP server: a command to run (stdio) or a streamable-HTTP URL."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    allowed_tools: tuple[str, ...] | None = None  # None: every tool the server lists
    own: bool = False  # one of Heron's servers: told the asker with every tool call

    @property
    def transport(self) -> str:
        return "stdio" if self.command else "http"


def load_mcp_config(path: Path, environ: Mapping[str, str]) -> list[McpServerSpec]:
    """Read and check the file; every problem in it is reported at once."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"HERON_MCP_CONFIG: {path} does not exist"]) from None
    except json.JSONDecodeError as error:
        raise ConfigError([f"HERON_MCP_CONFIG: {path} is not valid JSON: {error}"]) from None
    servers = data.get("mcpServers") if isinstance(data, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError([f'HERON_MCP_CONFIG: {path} needs an object "mcpServers"'])
    specs: list[McpServerSpec] = []
    problems: list[str] = []
    for name, entry in servers.items():
        try:
            spec = parse_entry(str(name), entry, environ)
        except ValueError as error:
            problems.append(f"HERON_MCP_CONFIG: server {name!r}: {error}")
            continue
        if spec is not None:
            specs.append(spec)
    if problems:
        raise ConfigError(problems)
    return specs


def parse_entry(name: str, entry: Any, environ: Mapping[str, str]) -> McpServerSpec | None:
    """One server's entry; None when it is disabled."""
    if not _NAME.match(name):
        raise ValueError("names are lowercase letters, digits, '-' and '_'")
    if not isinstance(entry, dict):
        raise ValueError("must be an object")
    if entry.get("enabled", True) is False:
        return None
    entry = _substitute(entry, environ)
    command, url = entry.get("command"), entry.get("url")
    if bool(command) == bool(url):
        raise ValueError('give either "command" (stdio) or "url" (streamable HTTP)')
    if url is not None and not str(url).startswith(("http://", "https://")):
        raise ValueError(f"url must start with http:// or https:// (got {url!r})")
    allowed = entry.get("allowed_tools")
    if allowed is not None and not (
        isinstance(allowed, list) and all(isinstance(t, str) for t in allowed)
    ):
        raise ValueError("allowed_tools must be a list of tool names")
    return McpServerSpec(
        name=name,
        command=str(command) if command else None,
        args=tuple(str(a) for a in _list(entry, "args")),
        env={str(k): str(v) for k, v in _object(entry, "env").items()},
        url=str(url) if url else None,
        headers={str(k): str(v) for k, v in _object(entry, "headers").items()},
        allowed_tools=tuple(allowed) if allowed is not None else None,
    )


def _substitute(value: Any, environ: Mapping[str, str]) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            variable = match.group(1)
            if variable not in environ:
                raise ValueError(f"${{{variable}}} is not set in the environment")
            return environ[variable]

        return _VARIABLE.sub(replace, value)
    if isinstance(value, list):
        return [_substitute(item, environ) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, environ) for key, item in value.items()}
    return value


def _list(entry: dict[str, Any], key: str) -> list[Any]:
    value = entry.get(key, [])
    if not isinstance(value, list):
        raise ValueError(f"{key} must be a list")
    return value


def _object(entry: dict[str, Any], key: str) -> dict[str, Any]:
    value = entry.get(key, {})
    if not isinstance(value, dict):
        raise ValueError(f"{key} must be an object")
    return value
