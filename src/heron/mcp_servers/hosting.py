"""Heron's own MCP servers inside `heron run`: served on loopback for the agent, each on
a port of its own, behind a token made for this process. The agent connects like any
other MCP client would, telling the Slack server whose view to read in a header that
only this token may set."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field

import structlog
from starlette.types import ASGIApp

from heron.agent.mcp_config import McpServerSpec
from heron.config import Config
from heron.docsearch.embedding import make_embedder
from heron.docsearch.store import DocStore
from heron.mcp_servers import serving
from heron.mcp_servers.docs import build_docs_server
from heron.mcp_servers.github import build_github_server
from heron.mcp_servers.slack import build_http_app as build_slack_http_app
from heron.mcp_servers.slack import build_slack_server
from heron.mcp_servers.slack_identity import HttpAuth
from heron.web.server import HttpServer

log = structlog.get_logger(__name__)

LOOPBACK = "127.0.0.1"


@dataclass
class HostedServers:
    """Start with `await start()`; `specs` are what AgentTools connects to."""

    config: Config
    conninfo: str
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    servers: dict[str, HttpServer] = field(default_factory=dict)

    async def start(self) -> list[McpServerSpec]:
        embedder = make_embedder(self.config)
        apps = {
            "slack": build_slack_http_app(
                build_slack_server(self.conninfo, embedder, user=None),
                LOOPBACK,
                HttpAuth(self.token, {}, None),
            ),
            "docs": serving.build_http_app(
                build_docs_server(DocStore(self.conninfo, embedder)), LOOPBACK, self.token
            ),
        }
        github = self._github()
        if github is not None:
            apps["github"] = github
        for name, app in apps.items():
            server = HttpServer(app, LOOPBACK, 0, lifespan=True)
            await server.start()
            self.servers[name] = server
        return self.specs

    @property
    def specs(self) -> list[McpServerSpec]:
        auth = {"Authorization": f"Bearer {self.token}"}
        return [
            McpServerSpec(name, url=f"{server.url}{serving.MCP_PATH}", headers=auth, own=True)
            for name, server in self.servers.items()
        ]

    async def stop(self) -> None:
        for server in self.servers.values():
            await server.stop()
        self.servers.clear()

    def _github(self) -> ASGIApp | None:
        """The GitHub server when GITHUB_TOKEN and GITHUB_REPOS say what it may read."""
        from heron.github.allow import AllowList
        from heron.github.client import GitHubClient

        token = self.config.github_token
        if token is None or not self.config.github_repos:
            if token is not None:
                log.warning("GITHUB_TOKEN is set but GITHUB_REPOS is empty: no GitHub tools")
            return None
        allow = AllowList.parse(self.config.github_repos.split(","))
        client = GitHubClient(token.get_secret_value(), self.config.github_api_url)
        return serving.build_http_app(build_github_server(client, allow), LOOPBACK, self.token)
