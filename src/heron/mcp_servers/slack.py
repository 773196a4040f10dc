"""heron-slack: the Slack archive as an MCP server, read as one Slack user sees it.

Seven read-only tools: `list_channels`, `list_users`, `get_channel_history`, `get_thread`,
`get_message_context`, `get_messages_with_user` and `search_messages` (hybrid: full text
and vectors, fused by rank; Heron's own messages and the questions asked of it are left
out unless `include_heron`). Every message carries its permalink.

Whose view it is never comes from the model: no tool takes it. Over stdio (and in
process) it is the server's user, `--as-user` or HERON_MCP_SLACK_USER. Over HTTP the
bearer token decides: a token of HERON_MCP_USER_TOKENS is its user; HERON_MCP_TOKEN (how
Heron's agent connects) reads as the user named by the X-Heron-Slack-User header; a
loopback server without tokens takes that header or the server's user. A request with
no identity gets a tool error, never "everything". That user sees public channels and
the private channels, DMs and group DMs they belong to; never a deleted message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, Field
from starlette.types import ASGIApp

from heron.config import Config
from heron.docsearch.embedding import Embedder
from heron.errors import ConfigError
from heron.mcp_servers.serving import (
    MCP_PATH,
    TOKEN_ENV,
    add_health,
    add_tool,
    as_tool_errors,
    serve,
    transport_problems,
)
from heron.mcp_servers.slack_identity import (
    IDENTITY,
    SERVER_NAME,
    TRUSTED,
    USER_HEADER,
    USER_TOKENS_ENV,
    HttpAuth,
    IdentityMiddleware,
    http_auth,
    parse_user_tokens,
)
from heron.queue.store import open_pool
from heron.slack import search
from heron.slack.embeddings import CatchUp, MessageVectors

USER_ENV: Final = "HERON_MCP_SLACK_USER"
EMBED_EVERY: Final = 30.0  # seconds between catch-ups before a search
POOL_SIZE: Final = 4
ASKER_META: Final = "heron/slack_user"  # request metadata naming the asker (trusted only)
NO_IDENTITY: Final = (
    "no Slack user to read the archive as: over stdio start the server with --as-user "
    f"U0123ABCD (or {USER_ENV}); over HTTP send a token of {USER_TOKENS_ENV}, or "
    f"{TOKEN_ENV} with the {USER_HEADER} header"
)

# -- results ---------------------------------------------------------------------------------


class SlackMessage(BaseModel):
    """One message, with where it is and a link to it."""

    channel_id: str
    channel_name: str = Field(description="The channel's name (a DM's may be its id)")
    ts: str = Field(description="Slack's id of the message (a timestamp)")
    thread_ts: str | None = Field(description="The thread's parent ts; None outside threads")
    reply_count: int = Field(description="Replies, on a thread's parent (see get_thread)")
    author_id: str | None
    author: str = Field(description="Display name of whoever wrote it")
    text: str = Field(description="The text in Slack's markup (<@U…> mentions, <url|label>)")
    time: str = Field(description="When it was posted, ISO 8601, UTC")
    permalink: str | None = Field(description="Link to the message in Slack, when known")


class SearchHit(SlackMessage):
    """A message that matches the query."""

    score: float = Field(description="Fused rank score: higher is better")


class Messages(BaseModel):
    """Messages oldest first."""

    messages: list[SlackMessage]
    has_more: bool = Field(description="More matched than the limit: narrow the range")


ChannelKind = Literal["public_channel", "private_channel", "dm", "group_dm"]


class SlackChannel(BaseModel):
    """A conversation you can read."""

    id: str
    name: str
    kind: ChannelKind
    is_archived: bool
    topic: str
    purpose: str
    member_count: int = Field(description="Members the archive knows of")
    members: list[str] | None = Field(description="For DMs and group DMs: who is in it")


class SlackUser(BaseModel):
    """A person or bot of the workspace."""

    id: str
    name: str
    real_name: str
    display_name: str
    is_bot: bool
    deleted: bool
    tz: str | None


def _message(message: search.Message, workspace_url: str | None) -> SlackMessage:
    return SlackMessage(
        channel_id=message.channel_id,
        channel_name=message.channel_name,
        ts=message.ts,
        thread_ts=message.thread_ts,
        reply_count=message.reply_count,
        author_id=message.user_id,
        author=message.author,
        text=message.text,
        time=message.at.isoformat(),
        permalink=message.permalink(workspace_url),
    )


def _kind(channel: search.Channel) -> ChannelKind:
    if channel.is_im:
        return "dm"
    if channel.is_mpim:
        return "group_dm"
    return "private_channel" if channel.is_private else "public_channel"


def _channel(channel: search.Channel) -> SlackChannel:
    return SlackChannel(
        id=channel.id,
        name=channel.name,
        kind=_kind(channel),
        is_archived=channel.is_archived,
        topic=channel.topic,
        purpose=channel.purpose,
        member_count=channel.member_count,
        members=channel.members,
    )


# -- the server ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _State:
    """What the tools share while the server runs (the lifespan's result)."""

    pool: AsyncConnectionPool[Any]
    vectors: MessageVectors | None
    catch_up: CatchUp | None
    user: str | None  # for requests without HTTP: stdio and in-process clients


SlackContext = Context[_State, Any]


def _reader(ctx: SlackContext) -> search.ArchiveReader:
    """A reader for the caller's Slack user: the server's, or what the HTTP layer decided."""
    state = ctx.request_context.lifespan_context
    request = ctx.request_context.request
    user = state.user if request is None else request.scope.get("state", {}).get(IDENTITY)
    if request is not None and request.scope.get("state", {}).get(TRUSTED):
        # Heron's agent keeps one session and names the asker with every call.
        asker = (ctx.request_context.meta or {}).get(ASKER_META)
        user = asker if isinstance(asker, str) and asker else user
    if not isinstance(user, str) or not search.is_user_id(user):
        raise ToolError(NO_IDENTITY)
    return search.ArchiveReader(state.pool, user, state.vectors)


def _check(name: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ToolError(f"{name} must be between {low} and {high}, got {value}")


def _period(since: str | None, until: str | None) -> search.Period:
    with as_tool_errors():
        return search.Period.parse(since, until)


_Channel = Annotated[
    str, Field(description="Channel id (C…, G…, D…) or name (#general); see list_channels")
]
_Since = Annotated[
    str | None, Field(description="From this ISO date or date-time (UTC unless it says)")
]
_Until = Annotated[
    str | None, Field(description="Up to this ISO date (the whole day) or date-time, inclusive")
]
_Ts = Annotated[str, Field(description="A message ts such as 1732579200.000100")]


_Messages = Annotated[int, Field(description="Most messages, 1 to 200")]
_Replies = Annotated[int, Field(description="Most messages, 1 to 1000")]
_Hits = Annotated[int, Field(description="Most results, 1 to 50")]
_Entries = Annotated[int, Field(description="Most entries, 1 to 1000")]


def build_slack_server(
    conninfo: str,
    embedder: Embedder | None,
    *,
    user: str | None,
    embed_every: float = EMBED_EVERY,
    pool_timeout: float = 5.0,
) -> MCPServer[_State]:
    """The `heron-slack` MCP server over the archive at `conninfo`.

    `user` is whose view stdio and in-process clients get (None: HTTP decides per
    request). Without `embedder` (or pgvector) search matches words only.
    """

    @asynccontextmanager
    async def lifespan(server: MCPServer[_State]) -> AsyncIterator[_State]:
        pool = open_pool(conninfo, POOL_SIZE, name="heron-mcp-slack", timeout=pool_timeout)
        await pool.open()
        vectors = MessageVectors(embedder) if embedder is not None else None
        catch_up = CatchUp(vectors, embed_every) if vectors is not None else None
        try:
            yield _State(pool, vectors, catch_up, user)
        finally:
            await pool.close()

    server: MCPServer[_State] = MCPServer(
        SERVER_NAME,
        instructions=(
            "Read the team's Slack archive as one Slack user sees it: public channels and "
            "the private channels and DMs that user is in. Find messages with "
            "search_messages, then read around them with get_thread and "
            "get_message_context; list_channels and list_users name what there is."
        ),
        lifespan=lifespan,
    )
    for tool in _tools():
        add_tool(server, tool)
    add_health(server)
    return server


def _tools() -> list[Callable[..., Any]]:
    async def list_channels(
        ctx: SlackContext,
        name: Annotated[
            str | None, Field(description="Only channels whose name contains this")
        ] = None,
        limit: _Entries = 200,
    ) -> list[SlackChannel]:
        """The channels, private channels, DMs and group DMs you can read."""
        _check("limit", limit, 1, 1000)
        with as_tool_errors():
            channels = await _reader(ctx).channels(name, limit)
        return [_channel(c) for c in channels]

    async def list_users(
        ctx: SlackContext,
        name: Annotated[
            str | None, Field(description="Only people whose id or any name contains this")
        ] = None,
        limit: _Entries = 100,
    ) -> list[SlackUser]:
        """People and bots of the workspace, with their ids (for the user filters)."""
        _check("limit", limit, 1, 1000)
        with as_tool_errors():
            users = await _reader(ctx).users(name, limit)
        return [_user(u) for u in users]

    async def get_channel_history(
        ctx: SlackContext,
        channel: _Channel,
        since: _Since = None,
        until: _Until = None,
        limit: _Messages = 50,
    ) -> Messages:
        """A channel's messages in a time range, oldest first: the newest `limit` of them.

        Thread replies are left out; a parent's reply_count says when to call get_thread.
        """
        _check("limit", limit, 1, 200)
        period = _period(since, until)
        with as_tool_errors():
            reader = _reader(ctx)
            page = await reader.history(channel, period, limit)
            return await _page(reader, page)

    async def get_thread(
        ctx: SlackContext,
        channel: _Channel,
        thread_ts: Annotated[str, Field(description="The ts of the thread's parent or a reply")],
        limit: _Replies = 200,
    ) -> Messages:
        """A thread's messages, the parent first, then the replies in order."""
        _check("limit", limit, 1, 1000)
        with as_tool_errors():
            reader = _reader(ctx)
            return await _page(reader, await reader.thread(channel, thread_ts, limit))

    async def get_message_context(
        ctx: SlackContext,
        channel: _Channel,
        ts: _Ts,
        before: Annotated[int, Field(description="Messages before it, 0 to 50")] = 5,
        after: Annotated[int, Field(description="Messages after it, 0 to 50")] = 5,
    ) -> Messages:
        """A message with the messages around it: in its thread if it is a reply, else in
        the channel. Oldest first."""
        _check("before", before, 0, 50)
        _check("after", after, 0, 50)
        with as_tool_errors():
            reader = _reader(ctx)
            found = await reader.context(channel, ts, before, after)
            return await _page(reader, search.Page(found, has_more=False))

    async def get_messages_with_user(
        ctx: SlackContext,
        user: Annotated[
            str, Field(description="The other person: user id (U…) or name; see list_users")
        ],
        since: _Since = None,
        until: _Until = None,
        limit: _Messages = 50,
    ) -> Messages:
        """What a person wrote where you can read it, and your DMs with them; oldest first,
        the newest `limit`."""
        _check("limit", limit, 1, 200)
        period = _period(since, until)
        with as_tool_errors():
            reader = _reader(ctx)
            return await _page(reader, await reader.with_user(user, period, limit))

    async def search_messages(
        ctx: SlackContext,
        query: Annotated[str, Field(description="What to look for, in plain words")],
        channel: Annotated[str | None, Field(description="Only this channel: id or #name")] = None,
        author: Annotated[
            str | None, Field(description="Only messages by this person: user id or name")
        ] = None,
        since: _Since = None,
        until: _Until = None,
        limit: _Hits = 10,
        include_heron: Annotated[
            bool,
            Field(
                description="Heron's own messages (its earlier answers) and the questions "
                "asked of it (messages mentioning it) are left out unless true"
            ),
        ] = False,
    ) -> list[SearchHit]:
        """Search the messages you can read, best first.

        Word matches and similar meaning are fused, so a question in natural language
        works. Heron's own answers and the questions put to it are left out unless
        include_heron is true. Read a hit's surroundings with get_message_context or
        get_thread.
        """
        _check("limit", limit, 1, 50)
        period = _period(since, until)
        state = ctx.request_context.lifespan_context
        with as_tool_errors():
            reader = _reader(ctx)
            if state.catch_up is not None:
                await state.catch_up.run(state.pool)
            hits = await reader.search(
                query,
                channel=channel,
                author=author,
                period=period,
                limit=limit,
                include_heron=include_heron,
            )
            url = await reader.workspace_url()
        return [
            SearchHit(**_message(message, url).model_dump(), score=score) for message, score in hits
        ]

    return [
        list_channels,
        list_users,
        get_channel_history,
        get_thread,
        get_message_context,
        get_messages_with_user,
        search_messages,
    ]


def _user(user: search.User) -> SlackUser:
    return SlackUser(
        id=user.id,
        name=user.name,
        real_name=user.real_name,
        display_name=user.display_name,
        is_bot=user.is_bot,
        deleted=user.deleted,
        tz=user.tz,
    )


async def _page(reader: search.ArchiveReader, page: search.Page) -> Messages:
    url = await reader.workspace_url()
    return Messages(messages=[_message(m, url) for m in page.messages], has_more=page.has_more)


# -- HTTP: who is asking ---------------------------------------------------------------------


def build_http_app(server: MCPServer[_State], host: str, auth: HttpAuth) -> ASGIApp:
    """Streamable HTTP at /mcp behind IdentityMiddleware; /health stays open."""
    app: ASGIApp = server.streamable_http_app(streamable_http_path=MCP_PATH, host=host)
    return IdentityMiddleware(app, auth)


# -- entry point -----------------------------------------------------------------------------


def main(
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8002,
    *,
    config: Config | None = None,
    as_user: str | None = None,
) -> None:
    """Serve heron-slack until interrupted: `stdio`, or streamable HTTP at host:port/mcp.

    Configuration problems (an unknown transport, stdio without a user, a bad user id or
    HERON_MCP_USER_TOKENS, a public HTTP address without a token) raise `ConfigError`
    before anything starts.
    """
    config = config or Config()
    user = (as_user or config.heron_mcp_slack_user or "").strip() or None
    problems = transport_problems(transport)
    if user is not None and not search.is_user_id(user):
        problems.append(f"{USER_ENV} / --as-user: {user!r} is not a Slack user id (U0123ABCD)")
    if transport == "stdio" and user is None:
        problems.append(
            f"{USER_ENV}: over stdio the server reads the archive as one Slack user; "
            "pass --as-user U0123ABCD or set it"
        )
    if problems:
        raise ConfigError(problems)
    secret = config.heron_mcp_user_tokens
    tokens = parse_user_tokens(secret.get_secret_value() if secret else "")
    auth = http_auth(host, tokens, user) if transport == "http" else None
    conninfo, embedder = _archive(config)
    if auth is None:
        serve(build_slack_server(conninfo, embedder, user=user), "stdio", host, port, None)
        return
    import uvicorn

    app = build_http_app(build_slack_server(conninfo, embedder, user=None), host, auth)
    uvicorn.run(app, host=host, port=port, log_level="info")


def _archive(config: Config) -> tuple[str, Embedder]:
    """The migrated database and the configured embedder (it loads on first use)."""
    from heron.database.connection import resolve_database_url
    from heron.database.migrate import migrate
    from heron.database.url import psycopg_conninfo
    from heron.docsearch.embedding import make_embedder

    conninfo = psycopg_conninfo(resolve_database_url(config.database_url))
    migrate(conninfo)
    return conninfo, make_embedder(config)


def _run_from_environment(argv: list[str]) -> None:
    """`python -m heron.mcp_servers.slack [stdio|http] [host] [port]`, settings from env."""
    from heron.log import configure_logging

    config = Config()
    configure_logging(config.heron_log_level, config.heron_log_format)  # to stderr
    transport = argv[0] if argv else "stdio"
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 8002
    main(transport, host, port, config=config)


if __name__ == "__main__":
    import sys

    _run_from_environment(sys.argv[1:])


__all__: list[str] = [
    "SearchHit",
    "SlackChannel",
    "SlackMessage",
    "SlackUser",
    "build_http_app",
    "build_slack_server",
    "main",
]
