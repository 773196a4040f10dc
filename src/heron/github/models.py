"""What the GitHub tools return, and the pure mapping from GitHub's JSON."""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

from pydantic import BaseModel, Field

from heron.github.client import GitHubError

MAX_COMMENTS: Final = 100

# -- results --------------------------------------------------------------------------------


class CodeHit(BaseModel):
    """One file that matches a code search."""

    repo: str = Field(description="owner/name of the repository")
    path: str = Field(description="Path of the file in the repository")
    url: str = Field(description="The file on github.com")
    fragments: list[str] = Field(description="Excerpts around the matches, when GitHub sends them")


class IssueHit(BaseModel):
    """One issue or pull request that matches a search."""

    repo: str
    number: int
    title: str
    state: str = Field(description="open or closed")
    is_pull_request: bool
    author: str
    comments: int = Field(description="Number of comments")
    updated_at: str
    url: str


class FileContent(BaseModel):
    """A text file's decoded contents at a ref."""

    repo: str
    path: str
    ref: str | None = Field(description="The ref asked for; None means the default branch")
    sha: str = Field(description="Blob sha of the file")
    size: int = Field(description="Size in bytes")
    text: str


class Comment(BaseModel):
    """A comment on an issue or pull request."""

    author: str
    body: str
    created_at: str


class Review(BaseModel):
    """A pull request review."""

    author: str
    state: str = Field(description="APPROVED, CHANGES_REQUESTED, COMMENTED, ...")
    body: str
    submitted_at: str | None


class Issue(BaseModel):
    """An issue or pull request with its discussion."""

    repo: str
    number: int
    title: str
    state: str
    is_pull_request: bool
    author: str
    labels: list[str]
    body: str
    created_at: str
    url: str
    comments: list[Comment] = Field(description=f"Oldest first, at most {MAX_COMMENTS}")
    reviews: list[Review] = Field(description="Pull request reviews; empty for an issue")


class Commit(BaseModel):
    """One commit on a branch."""

    sha: str
    message: str
    author: str
    date: str
    url: str


class Release(BaseModel):
    """One published (or draft) release."""

    tag: str
    name: str
    draft: bool
    prerelease: bool
    published_at: str | None
    body: str
    url: str


# -- payload mapping (pure) -----------------------------------------------------------------


def login_of(user: Any) -> str:
    return str(user.get("login", "")) if isinstance(user, dict) else ""


def repo_of_issue(item: dict[str, Any]) -> str:
    # repository_url: {api}/repos/{owner}/{name}
    return "/".join(str(item.get("repository_url", "")).split("/")[-2:])


def decode_file(repo: str, path: str, ref: str | None, item: Any, max_bytes: int) -> FileContent:
    """A contents-API payload as text; `GitHubError` for a directory, binary or large file."""
    if isinstance(item, list):
        names = ", ".join(str(entry.get("name")) for entry in item[:20])
        raise GitHubError(f"{path!r} in {repo} is a directory, not a file; it holds: {names}")
    if not isinstance(item, dict) or item.get("type") != "file":
        kind = item.get("type") if isinstance(item, dict) else type(item).__name__
        raise GitHubError(f"{path!r} in {repo} is a {kind}, not a file")
    size = int(item.get("size", 0))
    if size > max_bytes or item.get("encoding") != "base64":
        raise GitHubError(
            f"{path!r} in {repo} is too large to return ({size} bytes; the limit is "
            f"{max_bytes}); search_code finds the relevant part"
        )
    try:
        data = base64.b64decode(str(item.get("content", "")), validate=False)
    except (binascii.Error, ValueError) as error:
        raise GitHubError(f"GitHub sent undecodable contents for {path!r}") from error
    try:
        if b"\x00" in data:
            raise UnicodeDecodeError("utf-8", data, 0, 1, "NUL byte")
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise GitHubError(
            f"{path!r} in {repo} is a binary file ({size} bytes); only text files can be returned"
        ) from error
    return FileContent(
        repo=repo, path=path, ref=ref, sha=str(item.get("sha", "")), size=size, text=text
    )


def to_issue(repo: str, item: dict[str, Any], comments: Any, reviews: Any) -> Issue:
    """An issue payload with its comments (and reviews) as an `Issue`."""
    return Issue(
        repo=repo,
        number=int(item["number"]),
        title=str(item.get("title", "")),
        state=str(item.get("state", "")),
        is_pull_request="pull_request" in item,
        author=login_of(item.get("user")),
        labels=[
            str(label.get("name", ""))
            for label in item.get("labels", [])
            if isinstance(label, dict)
        ],
        body=str(item.get("body") or ""),
        created_at=str(item.get("created_at", "")),
        url=str(item.get("html_url", "")),
        comments=[
            Comment(
                author=login_of(c.get("user")),
                body=str(c.get("body") or ""),
                created_at=str(c.get("created_at", "")),
            )
            for c in comments
        ],
        reviews=[
            Review(
                author=login_of(r.get("user")),
                state=str(r.get("state", "")),
                body=str(r.get("body") or ""),
                submitted_at=r.get("submitted_at"),
            )
            for r in reviews
        ],
    )
