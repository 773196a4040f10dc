"""The MCP servers the agent uses: Heron's own (served by `heron run` on loopback) and
those of HERON_MCP_CONFIG, each checked before use.

A server that fails to start or to list its tools is logged, recorded for `heron status`
and left out: the agent answers without it rather than not at all. Toolsets are made per
question, so that Heron (never the model) tells its own servers whose view to read.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from fastmcp.client.transports import StdioTransport
from psycopg_pool import AsyncConnectionPool
from pydantic_ai import RunContext
from pydantic_ai.mcp import CallToolFunc, MCPToolset, ToolResult
from pydantic_ai.toolsets import AbstractToolset

from heron.agent.agent import Asker, Toolbox
from heron.agent.mcp_config import McpServerSpec
from heron.agent.prompts import PromptChannel, PromptTool, PromptUser
from heron.database.named_sql import NamedQueries
from heron.errors import first_line
from heron.mcp_servers.slack import ASKER_META

log = structlog.get_logger(__name__)
query = NamedQueries("heron.agent.sql", "tools.sql")

CHECK_TIMEOUT = 20.0


@dataclass(frozen=True, slots=True)
class ServerStatus:
    name: str
    transport: str
    ok: bool
    tools: list[PromptTool] = field(default_factory=list)
    error: str | None = None


class AgentTools:
    """Keeps one live session per working server and builds each question's toolbox.

    Sessions last as long as `heron run` (connecting per question would cost more than
    the rest of Heron's work on it). Whose view Heron's own servers read travels with
    each tool call, as request metadata that only Heron's token is trusted to send.
    """

    def __init__(self, specs: Sequence[McpServerSpec], pool: AsyncConnectionPool[Any]) -> None:
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"two MCP servers share a name: {names}")
        self.specs = list(specs)
        self.pool = pool
        self.statuses: dict[str, ServerStatus] = {}
        self.live: dict[str, MCPToolset[str]] = {}

    async def check(self) -> list[ServerStatus]:
        """(Re)connect every server and list its tools, concurrently; record the results."""
        results = await asyncio.gather(*(self._check(spec) for spec in self.specs))
        async with self.pool.connection() as conn:
            for status in results:
                params = {
                    "name": status.name,
                    "transport": status.transport,
                    "ok": status.ok,
                    "tools": [tool.name for tool in status.tools],
                    "error": status.error,
                }
                await conn.execute(query("save_status"), params)
        self.statuses = {status.name: status for status in results}
        return results

    def toolbox(self) -> Toolbox:
        """The working servers' toolsets (the asker comes with each run's deps)."""
        toolsets: list[AbstractToolset[str]] = []
        tools: list[PromptTool] = []
        for spec in self.specs:
            status, live = self.statuses.get(spec.name), self.live.get(spec.name)
            if status is None or not status.ok or live is None:
                continue
            toolsets.append(allowed_only(live, spec.allowed_tools))
            tools.extend(status.tools)
        return Toolbox(toolsets, tools)

    async def close(self) -> None:
        for name in list(self.live):
            await self._drop(name)

    async def _check(self, spec: McpServerSpec) -> ServerStatus:
        try:
            async with asyncio.timeout(CHECK_TIMEOUT):
                live = self.live.get(spec.name)
                if live is None:
                    live = mcp_toolset(spec)
                    await live.__aenter__()
                    self.live[spec.name] = live
                listed = await live.list_tools()
        except Exception as error:  # any failure means "answer without this server"
            await self._drop(spec.name)
            message = first_line(error) or type(error).__name__
            log.warning("mcp server unavailable", server=spec.name, error=message)
            return ServerStatus(spec.name, spec.transport, False, error=message)
        allowed = spec.allowed_tools
        tools = [
            PromptTool(tool.name, first_line(Exception(tool.description or "")) or tool.name)
            for tool in listed
            if allowed is None or tool.name in allowed
        ]
        if spec.name not in self.statuses or not self.statuses[spec.name].ok:
            log.info("mcp server ready", server=spec.name, tools=[t.name for t in tools])
        return ServerStatus(spec.name, spec.transport, True, tools)

    async def _drop(self, name: str) -> None:
        live = self.live.pop(name, None)
        if live is not None:
            with contextlib.suppress(Exception):  # it is broken already
                await live.__aexit__(None, None, None)


async def _as_asker(
    ctx: RunContext[str], call_tool: CallToolFunc, name: str, args: dict[str, Any]
) -> ToolResult:
    """Heron's own servers read the archive as the asker: Heron says who, per call."""
    return await call_tool(name, args, metadata={ASKER_META: ctx.deps})


def mcp_toolset(spec: McpServerSpec) -> MCPToolset[str]:
    """A toolset for one server; Heron's own servers (spec.own) get the asker per call."""
    client: Any = (
        StdioTransport(command=spec.command, args=list(spec.args), env=spec.env or None)
        if spec.command
        else spec.url
    )
    # 'failed': a tool error goes back to the model as a failed call it can reason about.
    return MCPToolset(
        client,
        id=spec.name,
        headers=spec.headers or None,
        tool_error_behavior="failed",
        process_tool_call=_as_asker if spec.own else None,
    )


def allowed_only(
    toolset: AbstractToolset[str], allowed: tuple[str, ...] | None
) -> AbstractToolset[str]:
    if allowed is None:
        return toolset
    return toolset.filtered(lambda ctx, tool: tool.name in allowed)


async def lookup_asker(pool: AsyncConnectionPool[Any], question: dict[str, Any]) -> Asker:
    """Name, time zone and channel of the question, as the archive knows them."""
    params = {"user_id": question["user"], "channel_id": question["channel"]}
    async with pool.connection() as conn:
        row = await (await conn.execute(query("asker"), params)).fetchone()
    row = row or {}
    is_dm = bool(row.get("is_im")) or question.get("kind") == "dm"
    return Asker(
        user=PromptUser(
            id=str(question["user"]),
            display_name=row.get("display_name") or "a colleague",
            real_name=row.get("real_name") or "",
            timezone=row.get("tz") or "UTC",
        ),
        channel=PromptChannel(
            id=str(question["channel"]),
            name=row.get("channel_name") or str(question["channel"]),
            is_dm=is_dm,
        ),
    )
