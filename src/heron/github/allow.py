"""Which organisations and repositories Heron may read (GITHUB_REPOS), and scoped searches."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from heron.errors import ConfigError
from heron.github.client import GitHubError

REPOS_ENV: Final = "GITHUB_REPOS"

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
# Qualifiers that would widen a search beyond the allow-list (GitHub ORs repeated ones).
_SCOPE_QUALIFIER = re.compile(r"(?:^|\s)-?(repo|org|user|owner):", re.IGNORECASE)


# -- the allow-list -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowList:
    """The organisations and `owner/repo` repositories the tools may read (lower case)."""

    orgs: frozenset[str]
    repos: frozenset[str]

    @classmethod
    def parse(cls, entries: Sequence[str]) -> AllowList:
        """Entries like `acme` or `acme/tool`; raises `ConfigError` if none or malformed."""
        orgs: set[str] = set()
        repos: set[str] = set()
        bad: list[str] = []
        for raw in entries:
            entry = raw.strip().strip("/").lower()
            if not entry:
                continue
            parts = entry.split("/")
            if len(parts) > 2 or not all(_NAME.match(part) for part in parts):
                bad.append(raw.strip())
            elif len(parts) == 1:
                orgs.add(entry)
            else:
                repos.add(entry)
        example = f"e.g. {REPOS_ENV}=acme,other-org/tool"
        if bad:
            raise ConfigError(
                [f"{REPOS_ENV}: {', '.join(map(repr, bad))} is not 'org' or 'org/repo' ({example})"]
            )
        if not orgs and not repos:
            raise ConfigError(
                [
                    f"{REPOS_ENV}: required; set it to a comma-separated list of the GitHub "
                    f"organisations ('org') and repositories ('org/repo') heron may read "
                    f"({example})"
                ]
            )
        return cls(frozenset(orgs), frozenset(repos))

    def describe(self) -> str:
        """The allow-list as the user wrote it in GITHUB_REPOS, sorted."""
        return ", ".join(sorted(self.orgs | self.repos))

    def check(self, repo: str) -> str:
        """`repo` as `owner/name` if the allow-list covers it; `GitHubError` otherwise."""
        name = repo.strip().strip("/")
        parts = name.split("/")
        if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
            raise GitHubError(f"repo must be 'owner/name', got {repo!r}")
        if name.lower() in self.repos or parts[0].lower() in self.orgs:
            return name
        raise GitHubError(
            f"repo {name!r} is not in the allowed list ({self.describe()}); "
            f"use one of those, or ask an operator to add it to {REPOS_ENV}"
        )

    def qualifiers(self, repo: str | None) -> str:
        """Search qualifiers confining a query to `repo`, or to the whole allow-list."""
        if repo is not None:
            return f"repo:{self.check(repo)}"
        scopes = [f"org:{org}" for org in sorted(self.orgs)]
        scopes += [
            f"repo:{name}" for name in sorted(self.repos) if name.split("/")[0] not in self.orgs
        ]
        return " ".join(scopes)


def scoped_query(query: str, allow: AllowList, repo: str | None, extra: Sequence[str] = ()) -> str:
    """`query` with the allow-list's qualifiers (and `extra` ones) appended."""
    text = query.strip()
    if not text:
        raise GitHubError("query is empty: pass the words to search for")
    if _SCOPE_QUALIFIER.search(text):
        raise GitHubError(
            "query must not contain repo:, org:, user: or owner: qualifiers; "
            "pass the repository as the repo argument instead"
        )
    return " ".join([text, *extra, allow.qualifiers(repo)])


def parse_repos(value: str) -> list[str]:
    """GITHUB_REPOS's comma-separated entries."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]
