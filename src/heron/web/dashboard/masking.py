"""What the dashboard shows of payloads and error texts: secrets replaced by a mask.

Settings have their own masking (`Config.masked`); this is for data: event payloads,
error messages and MCP errors, which may carry a token a user pasted or an exception
quoted. A value is masked when its key names a secret (`token`, `client_secret`,
`Authorization`, `apiKey`…) or when it looks like a credential wherever it appears
(Slack, Anthropic, OpenAI and GitHub tokens, bearer headers, URL passwords).
"""

from __future__ import annotations

import re
from itertools import pairwise
from typing import Any, Final

from heron.database.url import redact_text

MASK: Final = "********"

# Key words that name a secret; matched against a key's words (snake, kebab or camel case)
# so that `input_tokens` or `authorizations` (counts and ids in Slack payloads) stay shown.
_SECRET_WORDS: Final = frozenset(
    {
        "token",
        "secret",
        "password",
        "passwd",
        "pwd",
        "authorization",
        "apikey",
        "cookie",
        "credential",
        "credentials",
        "signature",
    }
)
_SECRET_PAIRS: Final = frozenset({("api", "key"), ("private", "key"), ("access", "key")})
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")

# Credentials recognisable by their form alone.
_CREDENTIAL = re.compile(
    r"""
    \bxox[abposre]-[A-Za-z0-9-]{6,}        # Slack bot/user/… tokens
  | \bxapp-[A-Za-z0-9-]{6,}                # Slack app-level tokens
  | \bsk-[A-Za-z0-9_-]{16,}                # Anthropic (sk-ant-…) and OpenAI keys
  | \b(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{20,}
  | \bgithub_pat_[A-Za-z0-9_]{20,}
  | \bAKIA[0-9A-Z]{16}\b                   # AWS access key ids
  | (?i:\bbearer\s+)[A-Za-z0-9._~+/=-]{8,}
    """,
    re.VERBOSE,
)


def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (`bot_token`, `clientSecret`, `X-Api-Key`)."""
    words = [word.lower() for word in _WORD.findall(key)]
    if any(word in _SECRET_WORDS for word in words):
        return True
    return any(pair in _SECRET_PAIRS for pair in pairwise(words))


def mask_text(text: str) -> str:
    """The text with credentials it quotes masked, and any URL's password hidden."""
    masked = _CREDENTIAL.sub(MASK, text)
    return " ".join(redact_text(part) if "://" in part else part for part in masked.split(" "))


def mask_value(value: Any) -> Any:
    """A JSON-like value with secret-named keys masked and credential-like strings hidden."""
    if isinstance(value, dict):
        return {
            key: MASK if item is not None and is_secret_key(str(key)) else mask_value(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_value(item) for item in value]
    if isinstance(value, str):
        return mask_text(value)
    return value
