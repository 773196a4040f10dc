"""Locust users that are Slack's Events API: signed event_callback POSTs to /slack/events.

Run by the load harness (`python -m heron.bench.load`, `make load`), never imported by
pytest or by Heron: locust monkey-patches the standard library with gevent on import.
Everything it needs comes from the environment the harness sets:

  HERON_LOAD_SIGNING_SECRET   the app's signing secret (v0 HMAC-SHA256, as Slack signs)
  HERON_LOAD_TEAM_ID, HERON_LOAD_APP_ID, HERON_LOAD_BOT_USER_ID
  HERON_LOAD_CHANNELS         channel ids, comma-separated (the bot is in each)
  HERON_LOAD_USERS            user ids, comma-separated
  HERON_LOAD_MENTION_SHARE    share of new messages that mention the bot (0..1)
  HERON_LOAD_RETRY_SHARE      share of requests that redeliver an acked event (0..1)
  HERON_LOAD_RATE             requests per second per user (0: as fast as acks come)
  HERON_LOAD_OUTPUT           folder for each process's record of what it sent

The traffic is what Slack sends an app in busy channels: messages and thread replies
(`message.channels`), and for a mention both the `app_mention` event and its `message`
twin (two event ids, one question). A share of requests repeat an event already acked,
with `X-Slack-Retry-Num` and `X-Slack-Retry-Reason` as Slack's redeliveries carry them:
they must change nothing.

Every request is recorded (when it was sent, how long the ack took, the status, the
event id, the message's channel and ts, whether it was a mention or a redelivery) and
each process writes its records to HERON_LOAD_OUTPUT/requests-PID.csv when it stops; the
harness checks them against the database.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import itertools
import json
import os
import random
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import constant, constant_throughput, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.runners import MasterRunner

from heron.bench.chat import chat_words

FIELDS = ("sent_at", "ms", "status", "kind", "event_id", "channel", "ts", "retry_num")
_env = os.environ.get
SECRET = _env("HERON_LOAD_SIGNING_SECRET", "")
TEAM_ID = _env("HERON_LOAD_TEAM_ID", "T0LOAD")
APP_ID = _env("HERON_LOAD_APP_ID", "A0LOAD")
BOT_USER_ID = _env("HERON_LOAD_BOT_USER_ID", "U0HERON")
CHANNELS = [c for c in _env("HERON_LOAD_CHANNELS", "C0LOAD").split(",") if c]
USERS = [u for u in _env("HERON_LOAD_USERS", "U0LOAD").split(",") if u]
MENTION_SHARE = float(_env("HERON_LOAD_MENTION_SHARE", "0.05"))
RETRY_SHARE = float(_env("HERON_LOAD_RETRY_SHARE", "0.05"))
RATE = float(_env("HERON_LOAD_RATE", "0"))
OUTPUT = Path(_env("HERON_LOAD_OUTPUT", "."))

_user_slots = itertools.count()
# One record per request: [sent_at, ms, status, kind, event_id, channel, ts, retry_num].
# The status stays "" for a request cut off before its answer (it may or may not have
# been taken in).
_records: list[list[Any]] = []


def sign(stamp: str, body: bytes) -> str:
    """Slack's v0 signature: HMAC-SHA256 over `v0:{timestamp}:{body}`."""
    base = b"v0:" + stamp.encode() + b":" + body
    return "v0=" + hmac.new(SECRET.encode(), base, hashlib.sha256).hexdigest()


def event_callback(event: dict[str, Any], event_id: str) -> bytes:
    """The body Slack posts around an event (the fields Bolt and Heron read)."""
    return json.dumps(
        {
            "token": "load-verification-token",
            "team_id": TEAM_ID,
            "context_team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "team_id": TEAM_ID,
                    "user_id": BOT_USER_ID,
                    "is_bot": True,
                    "is_enterprise_install": False,
                    "enterprise_id": None,
                }
            ],
            "is_ext_shared_channel": False,
        },
        separators=(",", ":"),
    ).encode()


@dataclass(slots=True)
class Sent:
    """An acked event, kept so that it can be delivered again as Slack retries do."""

    body: bytes
    event_id: str
    channel: str
    ts: str
    kind: str
    retries: int = 0


class SlackEventsApi(FastHttpUser):
    """One busy person's worth of Slack traffic, paced at HERON_LOAD_RATE requests/s."""

    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)
    # Heron answers quickly or not at all; a stuck request should show, not hang the run.
    network_timeout = 30.0
    connection_timeout = 10.0

    def on_start(self) -> None:
        slot = next(_user_slots)
        process = int(getattr(self.environment.runner, "worker_index", 0))
        if slot > 99 or process > 9:
            raise RuntimeError("ts uniqueness holds for 100 users in each of 10 processes")
        # Message ts is `seconds.PUUSSS`: process, user, and a sequence within the second,
        # so no two users ever make the same (channel, ts).
        self.prefix = f"{process}{slot:02d}"
        self.second = 0
        self.sequence = 0
        self.rng = random.Random()  # seeded from os.urandom: new ids every run
        self.user_id = USERS[(process * 100 + slot) % len(USERS)]
        self.acked: deque[Sent] = deque(maxlen=64)
        self.twins: list[Sent] = []  # the message twin of a mention, sent next
        self.thread: tuple[str, str] | None = None  # (channel, ts) of this user's last thread

    @task
    def deliver(self) -> None:
        if self.twins:
            self.post(self.twins.pop(), retry_num=0)
        elif self.acked and self.rng.random() < RETRY_SHARE:
            again = self.rng.choice(self.acked)
            again.retries = min(again.retries + 1, 3)
            self.post(again, retry_num=again.retries)
        else:
            self.post(self.new_message(), retry_num=0)

    def new_message(self) -> Sent:
        ts = self.next_ts()
        mention = self.rng.random() < MENTION_SHARE
        # A third of plain messages reply in the thread this user started last.
        reply = not mention and self.thread is not None and self.rng.random() < 0.33
        channel = self.thread[0] if reply and self.thread else self.rng.choice(CHANNELS)
        words = chat_words(self.rng)
        text = f"<@{BOT_USER_ID}> how do we {words}?" if mention else words
        message: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "channel_type": "channel",
            "user": self.user_id,
            "text": text,
            "ts": ts,
            "event_ts": ts,
            "team": TEAM_ID,
            "client_msg_id": str(uuid.UUID(int=self.rng.getrandbits(128))),
        }
        if reply and self.thread:
            message["thread_ts"] = self.thread[1]
        elif not mention:
            self.thread = (channel, ts)
        as_message = self.sent(message, "mention-message" if mention else "message")
        if not mention:
            return as_message
        self.twins.append(as_message)
        keys = ("user", "text", "ts", "event_ts", "channel", "team", "client_msg_id")
        return self.sent({"type": "app_mention"} | {k: message[k] for k in keys}, "mention")

    def sent(self, event: dict[str, Any], kind: str) -> Sent:
        # An Events API event id: `Ev` and random characters, unique across processes.
        event_id = "Ev" + uuid.UUID(int=self.rng.getrandbits(128)).hex[:12].upper()
        body = event_callback(event, event_id)
        return Sent(body, event_id, event["channel"], event["ts"], kind)

    def next_ts(self) -> str:
        now = int(time.time())
        if now > self.second:
            self.second, self.sequence = now, 0
        elif self.sequence >= 999:  # a thousand in one second: borrow the next one
            self.second, self.sequence = self.second + 1, 0
        self.sequence += 1
        return f"{self.second}.{self.prefix}{self.sequence:03d}"

    def post(self, sent: Sent, *, retry_num: int) -> None:
        stamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Slackbot 1.0 (+https://api.slack.com/robots)",
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": sign(stamp, sent.body),
        }
        kind = sent.kind
        if retry_num:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
            kind = "retry"
        record: list[Any] = [
            time.time(),
            "",
            "",
            kind,
            sent.event_id,
            sent.channel,
            sent.ts,
            retry_num,
        ]
        _records.append(record)
        started = time.perf_counter()
        with self.client.post(
            "/slack/events", data=sent.body, headers=headers, name=kind, catch_response=True
        ) as response:
            record[1] = round((time.perf_counter() - started) * 1000, 3)
            record[2] = response.status_code
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {response.text!r:.200}")
            elif not retry_num:
                self.acked.append(sent)


@events.test_stop.add_listener
def write_answered(environment: Any, **_: Any) -> None:
    """At the end of the run, write what was answered; requests still in flight stay."""
    _write(environment, [r for r in _records if r[2] != ""])


@events.quitting.add_listener
def write_rest(environment: Any, **_: Any) -> None:
    """On the way out, write the rest: requests still unanswered now were cut off."""
    _write(environment, list(_records))


def _write(environment: Any, records: list[list[Any]]) -> None:
    """Append records to this process's own file (the master sends nothing)."""
    if isinstance(environment.runner, MasterRunner) or not records:
        return
    OUTPUT.mkdir(parents=True, exist_ok=True)
    path = OUTPUT / f"requests-{os.getpid()}.csv"
    new = not path.exists()
    with path.open("a", newline="") as file:
        writer = csv.writer(file)
        if new:
            writer.writerow(FIELDS)
        writer.writerows(records)
    written = {id(r) for r in records}
    _records[:] = [r for r in _records if id(r) not in written]
