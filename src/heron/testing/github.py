"""A loopback GitHub REST API holding a few repositories, for heron-github's tests.

It serves exactly the GET endpoints heron's client calls, with GitHub's JSON shapes
(the fields heron reads): code and issue search (qualifiers `repo:`, `org:`, `state:`,
`is:`, ORed like GitHub's for repeated scopes), contents (base64, directories, GitHub's
`encoding: none` above 1 MB), issues with comments, pull request reviews, commits and
releases. Every request is recorded; `fail_next` scripts failures: a 403 with an
exhausted rate limit, a 429 with `retry-after`, a 500.
"""

from __future__ import annotations

import base64
import hashlib
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from heron.testing.http import JsonHandler, start_server, stop_server

CONTENTS_LIMIT = 1_000_000  # GitHub's contents API sends no content above this size


@dataclass
class RecordedRequest:
    """One request the fake received."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeRepo:
    """A repository: files per ref, issues and PRs, commits (oldest first), releases."""

    full_name: str
    default_branch: str = "main"
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    issues: dict[int, dict[str, Any]] = field(default_factory=dict)
    commits: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    releases: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    reset: float | None


@dataclass
class FakeGitHub:
    """Start with `with FakeGitHub() as fake:`; point the client at `fake.api_url`.

    `token`: when set, requests with another `Authorization` are refused with 401;
    anonymous requests are served, except code search (401 like GitHub's).
    """

    token: str | None = None
    requests: list[RecordedRequest] = field(default_factory=list)
    repos: dict[str, FakeRepo] = field(default_factory=dict)
    _failures: list[_Failure] = field(default_factory=list)
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _clock: int = 1_700_000_000

    # -- data -------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        assert self._server is not None, "start the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def add_repo(
        self,
        full_name: str,
        files: dict[str, str | bytes] | None = None,
        default_branch: str = "main",
    ) -> FakeRepo:
        repo = FakeRepo(full_name, default_branch)
        self.repos[full_name.lower()] = repo
        for path, content in (files or {}).items():
            self.add_file(full_name, path, content)
        return repo

    def add_file(self, repo: str, path: str, content: str | bytes, ref: str | None = None) -> None:
        data = content.encode() if isinstance(content, str) else content
        fake = self._repo(repo)
        fake.files.setdefault(ref or fake.default_branch, {})[path] = data

    def add_issue(
        self,
        repo: str,
        number: int,
        title: str,
        body: str = "",
        *,
        state: str = "open",
        author: str = "octocat",
        labels: tuple[str, ...] = (),
        pull: bool = False,
        comments: tuple[tuple[str, str], ...] = (),
        reviews: tuple[tuple[str, str, str], ...] = (),
    ) -> None:
        """`comments` as (author, body); `reviews` (PRs only) as (author, state, body)."""
        fake = self._repo(repo)
        base = f"{self.api_url}/repos/{fake.full_name}"
        kind = "pull" if pull else "issues"
        issue: dict[str, Any] = {
            "number": number,
            "title": title,
            "body": body,
            "state": state,
            "user": {"login": author},
            "labels": [{"name": name} for name in labels],
            "comments": len(comments),
            "created_at": self._stamp(),
            "updated_at": self._stamp(),
            "html_url": f"https://github.com/{fake.full_name}/{kind}/{number}",
            "repository_url": base,
            "_comments": [
                {"user": {"login": who}, "body": text, "created_at": self._stamp()}
                for who, text in comments
            ],
            "_reviews": [
                {
                    "user": {"login": who},
                    "state": verdict,
                    "body": text,
                    "submitted_at": self._stamp(),
                }
                for who, verdict, text in reviews
            ],
        }
        if pull:
            issue["pull_request"] = {"url": f"{base}/pulls/{number}"}
        fake.issues[number] = issue

    def add_commit(
        self, repo: str, message: str, author: str = "octocat", branch: str | None = None
    ) -> str:
        """Append a commit to `branch` (default branch if None); returns its sha."""
        fake = self._repo(repo)
        sha = hashlib.sha1(
            f"{repo}{message}{self._clock}".encode(), usedforsecurity=False
        ).hexdigest()
        fake.commits.setdefault(branch or fake.default_branch, []).append(
            {
                "sha": sha,
                "commit": {
                    "message": message,
                    "author": {"name": author.title(), "date": self._stamp()},
                },
                "author": {"login": author},
                "html_url": f"https://github.com/{fake.full_name}/commit/{sha}",
            }
        )
        return sha

    def add_release(
        self, repo: str, tag: str, name: str = "", body: str = "", *, prerelease: bool = False
    ) -> None:
        fake = self._repo(repo)
        fake.releases.append(
            {
                "tag_name": tag,
                "name": name or tag,
                "body": body,
                "draft": False,
                "prerelease": prerelease,
                "published_at": self._stamp(),
                "html_url": f"https://github.com/{fake.full_name}/releases/tag/{tag}",
            }
        )

    def fail_next(
        self,
        status: int,
        *,
        retry_after: float | None = None,
        reset: float | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests with `status`; `reset` marks an exhausted limit."""
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, reset) for _ in range(times))

    def _repo(self, name: str) -> FakeRepo:
        return self.repos[name.lower()]

    def _stamp(self) -> str:
        self._clock += 60
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._clock))

    # -- serving ----------------------------------------------------------------------------

    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {key: values[-1] for key, values in parse_qs(url.query).items()}
                fake.requests.append(RecordedRequest("GET", url.path, query, dict(self.headers)))
                with fake._lock:
                    failure = fake._failures.pop(0) if fake._failures else None
                auth = self.headers.get("Authorization")
                if auth is not None and auth != f"Bearer {fake.token}":
                    self.reply(401, {"message": "Bad credentials"})
                elif failure is not None:
                    self._fail(failure)
                else:
                    status, payload = fake._route(unquote(url.path), query, auth is not None)
                    self.reply(status, payload)

            def _fail(self, failure: _Failure) -> None:
                headers: dict[str, str] = {}
                if failure.retry_after is not None:
                    headers["Retry-After"] = f"{failure.retry_after:g}"
                if failure.reset is not None:
                    headers["X-RateLimit-Limit"] = "60"
                    headers["X-RateLimit-Remaining"] = "0"
                    headers["X-RateLimit-Reset"] = str(int(failure.reset))
                message = "API rate limit exceeded" if headers else "scripted failure"
                self.reply(failure.status, {"message": message}, headers)

        self._server = start_server(Handler)
        return self

    def __exit__(self, *exc: object) -> None:
        stop_server(self._server)

    def _route(self, path: str, query: dict[str, str], authenticated: bool) -> tuple[int, Any]:
        per_page = int(query.get("per_page", "30"))
        if path == "/search/code":
            if not authenticated:
                return 401, {"message": "Requires authentication"}
            return 200, self._search_code(query.get("q", ""), per_page)
        if path == "/search/issues":
            return 200, self._search_issues(query.get("q", ""), per_page)
        match = re.fullmatch(r"/repos/([^/]+/[^/]+)/(.+)", path)
        repo = self.repos.get(match.group(1).lower()) if match else None
        if match is None or repo is None:
            return 404, {"message": "Not Found"}
        rest = match.group(2)
        if rest.startswith("contents/"):
            return self._contents(repo, rest.removeprefix("contents/"), query.get("ref"))
        if m := re.fullmatch(r"issues/(\d+)", rest):
            issue = repo.issues.get(int(m.group(1)))
            if issue is None:
                return 404, {"message": "Not Found"}
            return 200, {k: v for k, v in issue.items() if not k.startswith("_")}
        if m := re.fullmatch(r"issues/(\d+)/comments", rest):
            issue = repo.issues.get(int(m.group(1)))
            return (
                (404, {"message": "Not Found"})
                if issue is None
                else (200, issue["_comments"][:per_page])
            )
        if m := re.fullmatch(r"pulls/(\d+)/reviews", rest):
            issue = repo.issues.get(int(m.group(1)))
            if issue is None or "pull_request" not in issue:
                return 404, {"message": "Not Found"}
            return 200, issue["_reviews"][:per_page]
        if rest == "commits":
            branch = query.get("sha") or repo.default_branch
            if branch not in repo.commits:
                return 404, {"message": f"No commit found for SHA: {branch}"}
            return 200, list(reversed(repo.commits[branch]))[:per_page]
        if rest == "releases":
            return 200, list(reversed(repo.releases))[:per_page]
        return 404, {"message": "Not Found"}

    def _contents(self, repo: FakeRepo, path: str, ref: str | None) -> tuple[int, Any]:
        files = repo.files.get(ref or repo.default_branch)
        if files is None:
            return 404, {"message": f"No commit found for the ref {ref}"}
        path = path.strip("/")
        if path in files:
            data = files[path]
            large = len(data) > CONTENTS_LIMIT
            content = "" if large else base64.encodebytes(data).decode()
            return 200, {
                "type": "file",
                "name": path.rsplit("/", 1)[-1],
                "path": path,
                "size": len(data),
                "sha": hashlib.sha1(data, usedforsecurity=False).hexdigest(),
                "encoding": "none" if large else "base64",
                "content": content,
            }
        entries = sorted(
            {p[len(path) + 1 :].split("/")[0] for p in files if p.startswith(path + "/")}
        )
        if not entries:
            return 404, {"message": "Not Found"}
        return 200, [{"type": "file", "name": name, "path": f"{path}/{name}"} for name in entries]

    def _scopes(self, q: str) -> tuple[list[str], dict[str, list[str]]]:
        terms: list[str] = []
        qualifiers: dict[str, list[str]] = {}
        for token in q.split():
            key, sep, value = token.partition(":")
            if sep and key.lower() in {"repo", "org", "state", "is"}:
                qualifiers.setdefault(key.lower(), []).append(value.lower())
            else:
                terms.append(token.lower())
        return terms, qualifiers

    def _in_scope(self, repo: FakeRepo, qualifiers: dict[str, list[str]]) -> bool:
        repos, orgs = qualifiers.get("repo", []), qualifiers.get("org", [])
        if not repos and not orgs:
            return True
        name = repo.full_name.lower()
        return name in repos or name.split("/")[0] in orgs

    def _search_code(self, q: str, per_page: int) -> dict[str, Any]:
        terms, qualifiers = self._scopes(q)
        items = []
        for repo in self.repos.values():
            if not self._in_scope(repo, qualifiers):
                continue
            for path, data in repo.files.get(repo.default_branch, {}).items():
                text = data.decode(errors="replace")
                if terms and all(term in text.lower() for term in terms):
                    line = next(ln for ln in text.splitlines() if terms[0] in ln.lower())
                    items.append(
                        {
                            "name": path.rsplit("/", 1)[-1],
                            "path": path,
                            "html_url": f"https://github.com/{repo.full_name}/blob/{repo.default_branch}/{path}",
                            "repository": {"full_name": repo.full_name},
                            "text_matches": [{"fragment": line.strip()}],
                        }
                    )
        return {"total_count": len(items), "incomplete_results": False, "items": items[:per_page]}

    def _search_issues(self, q: str, per_page: int) -> dict[str, Any]:
        terms, qualifiers = self._scopes(q)
        items = []
        for repo in self.repos.values():
            if not self._in_scope(repo, qualifiers):
                continue
            for issue in repo.issues.values():
                kind = "pr" if "pull_request" in issue else "issue"
                if qualifiers.get("is") and kind not in qualifiers["is"]:
                    continue
                if qualifiers.get("state") and issue["state"] not in qualifiers["state"]:
                    continue
                text = " ".join(
                    [issue["title"], issue["body"], *(c["body"] for c in issue["_comments"])]
                ).lower()
                if all(term in text for term in terms):
                    items.append({k: v for k, v in issue.items() if not k.startswith("_")})
        return {"total_count": len(items), "incomplete_results": False, "items": items[:per_page]}


__all__: list[str] = ["FakeGitHub", "FakeRepo", "RecordedRequest"]
