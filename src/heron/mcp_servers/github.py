"""heron-github: read-only GitHub over its REST API, as an MCP server (stdio or HTTP).

Six tools: `search_code`, `search_issues` (issues and pull requests), `get_file`,
`get_issue` (with comments, and reviews for a pull request), `recent_commits` and
`list_releases`. Every repository argument and every search is confined to an
allow-list of organisations and repositories (GITHUB_REPOS): searches get `repo:` /
`org:` qualifiers added, and a repository outside the list is a tool error.

GitHub's failures reach the client as tool errors that say what to do: a rate limit
names the time it resets (one short retry at most, for `retry-after` of 2 s or less;
the server never hammers GitHub), 401/403/404/5xx and network errors are explained,
and the server keeps serving. HTTP serving reuses heron-docs' bearer-token helpers.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Annotated, Any, Final, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field

from heron.errors import ConfigError
from heron.github.allow import REPOS_ENV, AllowList, parse_repos, scoped_query
from heron.github.client import DEFAULT_API_URL, SERVER_NAME, GitHubClient, GitHubError
from heron.github.models import (
    MAX_COMMENTS,
    CodeHit,
    Commit,
    FileContent,
    Issue,
    IssueHit,
    Release,
    decode_file,
    login_of,
    repo_of_issue,
    to_issue,
)
from heron.mcp_servers.serving import (
    add_health,
    add_tool,
    as_tool_errors,
    http_token,
    serve,
    transport_problems,
)

MAX_LIMIT: Final = 50
MAX_FILE_BYTES: Final = 1_000_000
_TEXT_MATCH: Final = "application/vnd.github.text-match+json"

# -- the server -----------------------------------------------------------------------------


def _check_limit(limit: int) -> None:
    if not 1 <= limit <= MAX_LIMIT:
        raise ToolError(f"limit must be between 1 and {MAX_LIMIT}, got {limit}")


_Limit = Annotated[int, Field(description=f"How many results to return, 1 to {MAX_LIMIT}")]
_Repo = Annotated[str, Field(description="The repository as 'owner/name'")]
_OptRepo = Annotated[
    str | None,
    Field(description="Confine to one 'owner/name' repository; default: every allowed one"),
]


def build_github_server(
    client: GitHubClient, allowed: AllowList, max_file_bytes: int = MAX_FILE_BYTES
) -> MCPServer:
    """The `heron-github` MCP server: six read-only tools confined to `allowed`."""
    server: MCPServer = MCPServer(
        SERVER_NAME,
        instructions=(
            "Read GitHub for these organisations and repositories only: "
            f"{allowed.describe()}. Find things with search_code and search_issues, then read "
            "them with get_file and get_issue; recent_commits and list_releases show activity."
        ),
    )

    async def search_code(
        query: Annotated[str, Field(description="Words or code to find (GitHub code search)")],
        repo: _OptRepo = None,
        limit: _Limit = 10,
    ) -> list[CodeHit]:
        """Search code in the allowed repositories; each hit names a file for get_file.

        Needs GITHUB_TOKEN: GitHub's code search API refuses anonymous requests.
        """
        _check_limit(limit)
        with as_tool_errors():
            q = scoped_query(query, allowed, repo)
            if client.token is None:
                raise GitHubError(
                    "search_code needs GITHUB_TOKEN: GitHub's code search requires authentication"
                )
            found = await client.get(
                "/search/code", {"q": q, "per_page": limit}, accept=_TEXT_MATCH
            )
        return [
            CodeHit(
                repo=str(item.get("repository", {}).get("full_name", "")),
                path=str(item.get("path", "")),
                url=str(item.get("html_url", "")),
                fragments=[str(m.get("fragment", "")) for m in item.get("text_matches", [])],
            )
            for item in found.get("items", [])[:limit]
        ]

    async def search_issues(
        query: Annotated[str, Field(description="Words to find in titles, bodies and comments")],
        repo: _OptRepo = None,
        state: Annotated[
            Literal["open", "closed"] | None, Field(description="Only open or only closed")
        ] = None,
        kind: Annotated[
            Literal["issue", "pr"] | None,
            Field(description="Only issues or only pull requests; default: both"),
        ] = None,
        limit: _Limit = 10,
    ) -> list[IssueHit]:
        """Search issues and pull requests in the allowed repositories, best match first."""
        _check_limit(limit)
        extra = [f"state:{state}"] if state else []
        extra += [f"is:{kind}"] if kind else []
        with as_tool_errors():
            q = scoped_query(query, allowed, repo, extra)
            found = await client.get("/search/issues", {"q": q, "per_page": limit})
        return [
            IssueHit(
                repo=repo_of_issue(item),
                number=int(item["number"]),
                title=str(item.get("title", "")),
                state=str(item.get("state", "")),
                is_pull_request="pull_request" in item,
                author=login_of(item.get("user")),
                comments=int(item.get("comments", 0)),
                updated_at=str(item.get("updated_at", "")),
                url=str(item.get("html_url", "")),
            )
            for item in found.get("items", [])[:limit]
        ]

    async def get_file(
        repo: _Repo,
        path: Annotated[str, Field(description="Path of the file in the repository")],
        ref: Annotated[
            str | None, Field(description="Branch, tag or commit sha; default: default branch")
        ] = None,
    ) -> FileContent:
        """Return a text file's contents (binary and very large files are refused)."""
        with as_tool_errors():
            name = allowed.check(repo)
            clean = path.strip().strip("/")
            if not clean or ".." in clean.split("/"):
                raise GitHubError(f"path must be a file path in the repository, got {path!r}")
            item = await client.get(f"/repos/{name}/contents/{clean}", {"ref": ref or None})
            return decode_file(name, clean, ref, item, max_file_bytes)

    async def get_issue(
        repo: _Repo,
        number: Annotated[int, Field(description="The issue or pull request number", ge=1)],
    ) -> Issue:
        """Return an issue or pull request with its comments (and, for a PR, its reviews)."""
        with as_tool_errors():
            name = allowed.check(repo)
            item = await client.get(f"/repos/{name}/issues/{number}")
            comments = await client.get(
                f"/repos/{name}/issues/{number}/comments", {"per_page": MAX_COMMENTS}
            )
            reviews: Any = []
            if "pull_request" in item:
                reviews = await client.get(
                    f"/repos/{name}/pulls/{number}/reviews", {"per_page": MAX_COMMENTS}
                )
        return to_issue(name, item, comments, reviews)

    async def recent_commits(
        repo: _Repo,
        branch: Annotated[
            str | None,
            Field(description="Branch (or sha) to start from; default branch if omitted"),
        ] = None,
        limit: _Limit = 10,
    ) -> list[Commit]:
        """The latest commits on a branch, newest first."""
        _check_limit(limit)
        with as_tool_errors():
            name = allowed.check(repo)
            items = await client.get(f"/repos/{name}/commits", {"sha": branch, "per_page": limit})
        return [
            Commit(
                sha=str(item.get("sha", "")),
                message=str(item.get("commit", {}).get("message", "")),
                author=login_of(item.get("author"))
                or str(item.get("commit", {}).get("author", {}).get("name", "")),
                date=str(item.get("commit", {}).get("author", {}).get("date", "")),
                url=str(item.get("html_url", "")),
            )
            for item in items[:limit]
        ]

    async def list_releases(repo: _Repo, limit: _Limit = 10) -> list[Release]:
        """The repository's releases, newest first."""
        _check_limit(limit)
        with as_tool_errors():
            name = allowed.check(repo)
            items = await client.get(f"/repos/{name}/releases", {"per_page": limit})
        return [
            Release(
                tag=str(item.get("tag_name", "")),
                name=str(item.get("name") or item.get("tag_name", "")),
                draft=bool(item.get("draft", False)),
                prerelease=bool(item.get("prerelease", False)),
                published_at=item.get("published_at"),
                body=str(item.get("body") or ""),
                url=str(item.get("html_url", "")),
            )
            for item in items[:limit]
        ]

    add_tool(server, search_code)
    add_tool(server, search_issues)
    add_tool(server, get_file)
    add_tool(server, get_issue)
    add_tool(server, recent_commits)
    add_tool(server, list_releases)
    add_health(server)
    return server


# -- entry point ----------------------------------------------------------------------------


def main(
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    allowed: Sequence[str],
    github_token: str | None = None,
    api_url: str = DEFAULT_API_URL,
) -> None:
    """Serve heron-github until interrupted: `stdio`, or streamable HTTP at host:port/mcp.

    `allowed` holds GITHUB_REPOS's entries ('org' or 'org/repo'); configuration problems
    (none allowed, a bad api_url, an unknown transport, a public HTTP address without
    HERON_MCP_TOKEN) raise `ConfigError` before anything starts.
    """
    problems = transport_problems(transport)
    if not api_url.startswith(("https://", "http://")):
        problems.append(f"GITHUB_API_URL: {api_url!r} is not an http(s) URL")
    if problems:
        raise ConfigError(problems)
    allow = AllowList.parse(allowed)
    token = http_token(host) if transport == "http" else None
    serve(
        build_github_server(GitHubClient(github_token, api_url), allow),
        transport,
        host,
        port,
        token,
    )


def _run_from_environment(argv: list[str]) -> None:
    """`python -m heron.mcp_servers.github [stdio|http] [host] [port]`, settings from env."""
    transport = argv[0] if argv else "stdio"
    host = argv[1] if len(argv) > 1 else "127.0.0.1"
    port = int(argv[2]) if len(argv) > 2 else 8000
    main(
        transport,
        host,
        port,
        allowed=parse_repos(os.environ.get(REPOS_ENV, "")),
        github_token=os.environ.get("GITHUB_TOKEN", "").strip() or None,
        api_url=os.environ.get("GITHUB_API_URL", "").strip() or DEFAULT_API_URL,
    )


if __name__ == "__main__":
    import sys

    _run_from_environment(sys.argv[1:])


__all__: list[str] = ["build_github_server", "main"]
