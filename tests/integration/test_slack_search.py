"""Reading the archive as one Slack user, on real PostgreSQL: access, filters, hybrid search."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg_pool import AsyncConnectionPool

from heron.docsearch.embedding import HashingEmbedder
from heron.docsearch.minilm import MiniLMEmbedder
from heron.queue.store import open_pool
from heron.slack.archive import Archive
from heron.slack.embeddings import MessageVectors, embed_archive, embed_pending
from heron.slack.events import (
    BotIdentity,
    DeleteMessage,
    Membership,
    React,
    SaveChannel,
    SaveMessage,
    SaveUser,
    SetMembers,
    message_row,
)
from heron.slack.search import (
    COMMON_WORD_MESSAGES,
    ArchiveQueryError,
    ArchiveReader,
    NotFoundError,
    Period,
    _searchable,
    permalink,
    search_messages,
)
from tests.conftest import WatchedEmbedder

WORKSPACE = "https://acme.slack.com/"
BOT = BotIdentity(user_id="UHERON", bot_id="BHERON", team_id="T1", url=WORKSPACE)
DAY = 1732579200  # 2024-11-26T00:00:00Z


def ts(seconds: int) -> str:
    return f"{DAY + seconds}.000100"


# The messages of the workspace, by a short name: (channel, ts, author, text, thread_ts).
T1, T2, T3, T4, T5, T6 = ts(1), ts(600), ts(1200), ts(1800), ts(1860), ts(1920)
T7 = ts(86400 + 9 * 3600)  # the next day, 09:00
PLACEHOLDER = ts(2400)
MESSAGES: dict[str, tuple[str, str, str, str, str | None]] = {
    "deploy": ("CGEN", T1, "UALICE", "Deploy of the billing service is scheduled for Friday", None),
    "disk": ("CGEN", T2, "UBOB", "The database server ran out of disk space last night", None),
    "secret": ("CGEN", T3, "UCAROL", "password for the staging box is hunter2", None),
    "lunch": ("CGEN", T4, "UDAVE", "Lunch at noon?", T4),
    "count_me": ("CGEN", T5, "UALICE", "Count me in for lunch", T4),
    "pizza": ("CGEN", T6, "UBOB", "Pizza again please", T4),
    "deployed": ("CGEN", T7, "UBOB", "Billing deploy went fine", None),
    "vacuum": ("CENG", ts(100), "UALICE", "Vacuum the billing tables weekly", None),
    "launch": ("GSEC", ts(200), "UBOB", "Launch codes rotate on Monday", None),
    "party": ("DBC", ts(300), "UCAROL", "Surprise party for alice on Friday", None),
    "review": ("DAB", ts(400), "UBOB", "Can you review my billing patch?", None),
    "sure": ("DAB", ts(500), "UALICE", "Sure, tomorrow", None),
    "old": ("GOLD", ts(700), "UBOB", "Old plans for the billing rewrite", None),
    "doomed": ("CDEL", ts(800), "UALICE", "Doomed channel message about billing", None),
}


def user(uid: str, name: str, real: str, display: str = "") -> SaveUser:
    profile = {"display_name": display}
    return SaveUser({"id": uid, "name": name, "real_name": real, "profile": profile})


async def seed(archive: Archive) -> None:
    """Alice, Bob, Carol and Dave; public, private, DM, left and deleted conversations."""
    await archive.save_workspace()
    await archive.save(
        [
            user("UALICE", "alice", "Alice Liddell", "Alice"),
            user("UBOB", "bob", "Bob Builder"),
            user("UCAROL", "carol", "Carol Danvers"),
            user("UDAVE", "dave", "Dave Grohl"),
            SaveChannel(
                "CGEN",
                name="general",
                is_private=False,
                is_im=False,
                is_mpim=False,
                raw={"topic": {"value": "Everything"}},
            ),
            SaveChannel("CENG", name="engineering", is_private=False),
            SaveChannel("GSEC", name="secret-launch", is_private=True),
            SetMembers("GSEC", ("UALICE", "UBOB")),
            SaveChannel("DBC", name="", is_private=True, is_im=True),
            SetMembers("DBC", ("UBOB", "UCAROL")),
            SaveChannel("DAB", name="", is_private=True, is_im=True),
            SetMembers("DAB", ("UALICE", "UBOB")),
            SaveChannel("GOLD", name="old-project", is_private=True),
            SetMembers("GOLD", ("UALICE", "UBOB")),
            SaveChannel("CDEL", name="doomed", is_private=False),
            # a reaction taken in before its message: a placeholder row without text
            React("CGEN", PLACEHOLDER, "eyes", "UBOB", added=True),
        ]
    )
    await archive.save(
        SaveMessage(
            message_row(channel, {"ts": when, "user": author, "text": text, "thread_ts": thread})
        )
        for channel, when, author, text, thread in MESSAGES.values()
    )
    await archive.save(
        [
            DeleteMessage("CGEN", T3),
            Membership("GOLD", "UALICE", joined=False),  # Alice left old-project
            SaveChannel("CDEL", is_deleted=True),
        ]
    )


def make_plain(database_url: str) -> None:
    """slack_messages as one plain table (the migration partitions it), to check that
    search finds the statistics of either kind."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("ALTER TABLE slack_messages RENAME TO slack_messages_partitioned")
        conn.execute("CREATE TABLE slack_messages (LIKE slack_messages_partitioned INCLUDING ALL)")


@pytest.fixture
async def pool(
    database_url: str, request: pytest.FixtureRequest
) -> AsyncIterator[AsyncConnectionPool[Any]]:
    """The seeded archive; `indirect` parametrization "plain" stores it in a plain table."""
    if getattr(request, "param", "partitioned") == "plain":
        make_plain(database_url)
    pool = open_pool(database_url, max_size=4, name="test-slack-search")
    await pool.open()
    try:
        await seed(Archive(pool, BOT))
        yield pool
    finally:
        await pool.close()


async def analyze(pool: AsyncConnectionPool[Any]) -> None:
    """The statistics search reads (autovacuum never analyzes a partitioned parent)."""
    async with pool.connection() as conn:
        await conn.execute("ANALYZE slack_messages")


def common_above(monkeypatch: pytest.MonkeyPatch, messages: int) -> None:
    """A word is common in more than `messages` messages: these archives are small."""
    monkeypatch.setattr("heron.slack.search.COMMON_WORD_MESSAGES", messages)


def texts(messages: Any) -> list[str]:
    return [m.text for m in messages]


def names(*keys: str) -> list[str]:
    return [MESSAGES[key][3] for key in keys]


async def test_each_user_sees_public_channels_and_their_own_private_ones(
    pool: AsyncConnectionPool[Any],
) -> None:
    async def ids(user_id: str) -> set[str]:
        return {c.id for c in await ArchiveReader(pool, user_id).channels(None, 100)}

    assert await ids("UALICE") == {"CGEN", "CENG", "GSEC", "DAB"}  # left GOLD, CDEL deleted
    assert await ids("UBOB") == {"CGEN", "CENG", "GSEC", "DBC", "DAB", "GOLD"}
    assert await ids("UCAROL") == {"CGEN", "CENG", "DBC"}
    assert await ids("UNOBODY") == {"CGEN", "CENG"}
    channels = {c.id: c for c in await ArchiveReader(pool, "UALICE").channels(None, 100)}
    assert channels["CGEN"].topic == "Everything"
    assert channels["DAB"].members == ["Alice", "Bob Builder"]
    assert channels["DAB"].name == "DAB"
    assert channels["GSEC"].member_count == 2
    secret_only = await ArchiveReader(pool, "UBOB").channels("LAUNCH", 10)
    assert [c.id for c in secret_only] == ["GSEC"]


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
async def test_search_only_finds_what_the_user_may_read(
    pool: AsyncConnectionPool[Any], analyzed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if analyzed:  # every word is then common: the least common chooses the candidates
        common_above(monkeypatch, 0)
        await analyze(pool)

    async def found(user_id: str, query: str) -> set[str]:
        hits = await ArchiveReader(pool, user_id).search(query, limit=50)
        return {m.text for m, _ in hits}

    billing = set(names("deploy", "deployed", "vacuum"))
    assert await found("UALICE", "billing") == billing | set(names("review"))
    assert await found("UDAVE", "billing") == billing  # not Alice and Bob's DM
    assert await found("UBOB", "billing") == billing | set(names("review", "old"))
    assert await found("UALICE", "launch codes") == set(names("launch"))
    assert await found("UDAVE", "launch codes") == set()
    assert await found("UALICE", "surprise party") == set()  # a DM between two others
    assert await found("UCAROL", "surprise party") == set(names("party"))
    assert await found("UBOB", "hunter2 password staging") == set()  # deleted


async def test_deleted_messages_and_placeholders_never_appear(
    pool: AsyncConnectionPool[Any],
) -> None:
    reader = ArchiveReader(pool, "UCAROL")  # the deleted message's own author
    history = await reader.history("general", Period(), 50)
    assert texts(history.messages) == names("deploy", "disk", "lunch", "deployed")
    assert all(m.ts not in (T3, PLACEHOLDER) for m in history.messages)
    with pytest.raises(NotFoundError):
        await reader.context("CGEN", T3, 2, 2)
    with pytest.raises(NotFoundError):
        await reader.thread("CGEN", T3, 10)
    with pytest.raises(NotFoundError):
        await reader.context("CGEN", PLACEHOLDER, 2, 2)
    mine = await reader.with_user("UCAROL", Period(), 50)
    assert texts(mine.messages) == names("party")


async def test_an_invisible_channel_is_reported_like_a_missing_one(
    pool: AsyncConnectionPool[Any],
) -> None:
    alice = ArchiveReader(pool, "UALICE")

    async def error(call: Any) -> str:
        with pytest.raises(NotFoundError) as caught:
            await call
        return str(caught.value)

    missing = await error(alice.history("CNOPE", Period(), 10))
    for hidden in ("GOLD", "old-project", "DBC", "CDEL", "doomed"):  # left, others' DM, deleted
        assert await error(alice.history(hidden, Period(), 10)) == missing.replace("CNOPE", hidden)
    assert await error(alice.thread("GOLD", MESSAGES["old"][1], 10)) == missing.replace(
        "CNOPE", "GOLD"
    )
    assert await error(alice.context("DBC", MESSAGES["party"][1], 1, 1)) == missing.replace(
        "CNOPE", "DBC"
    )
    bob = ArchiveReader(pool, "UBOB")
    assert texts((await bob.history("#old-project", Period(), 10)).messages) == names("old")
    with pytest.raises(NotFoundError):
        await alice.search("billing", channel="GOLD")


async def test_history_is_top_level_oldest_first_within_the_period(
    pool: AsyncConnectionPool[Any],
) -> None:
    reader = ArchiveReader(pool, "UDAVE")
    page = await reader.history("#general", Period(), 2)
    assert (texts(page.messages), page.has_more) == (names("lunch", "deployed"), True)
    assert page.messages[0].thread_ts == T4
    next_day = await reader.history("CGEN", Period.parse("2024-11-27", None), 10)
    assert (texts(next_day.messages), next_day.has_more) == (names("deployed"), False)
    first_day = await reader.history("general", Period.parse(None, "2024-11-26"), 10)
    assert texts(first_day.messages) == names("deploy", "disk", "lunch")
    morning = Period.parse("2024-11-26T00:05:00Z", "2024-11-26T00:30:00.000100+00:00")
    assert texts((await reader.history("CGEN", morning, 10)).messages) == names("disk", "lunch")
    at = page.messages[-1].at
    assert at == datetime(2024, 11, 27, 9, 0, 0, 100, tzinfo=UTC)


async def test_threads_from_the_parent_or_a_reply(pool: AsyncConnectionPool[Any]) -> None:
    reader = ArchiveReader(pool, "UDAVE")
    whole = names("lunch", "count_me", "pizza")
    assert texts((await reader.thread("CGEN", T4, 10)).messages) == whole
    assert texts((await reader.thread("general", T6, 10)).messages) == whole
    short = await reader.thread("CGEN", T4, 2)
    assert (texts(short.messages), short.has_more) == (whole[:2], True)
    with pytest.raises(ArchiveQueryError, match="ts must be a Slack message ts"):
        await reader.thread("CGEN", "yesterday", 10)


async def test_context_is_taken_at_the_message_s_level(pool: AsyncConnectionPool[Any]) -> None:
    reader = ArchiveReader(pool, "UDAVE")
    around_disk = await reader.context("CGEN", T2, 1, 1)
    assert texts(around_disk) == names("deploy", "disk", "lunch")  # the deleted one skipped
    around_reply = await reader.context("CGEN", T5, 5, 5)
    assert texts(around_reply) == names("lunch", "count_me", "pizza")
    assert texts(await reader.context("CGEN", T7, 0, 3)) == names("deployed")


async def test_messages_with_a_user(pool: AsyncConnectionPool[Any]) -> None:
    alice = ArchiveReader(pool, "UALICE")
    with_bob = await alice.with_user("bob", Period(), 50)
    expected = names("launch", "review", "sure", "disk", "pizza", "deployed")
    assert texts(with_bob.messages) == expected  # not old-project (left): oldest first
    assert texts((await alice.with_user("<@UBOB>", Period(), 2)).messages) == expected[-2:]
    carol = ArchiveReader(pool, "UCAROL")
    with_carol = names("party", "disk", "pizza", "deployed")  # their DM, then Bob's
    assert texts((await carol.with_user("bob", Period(), 50)).messages) == with_carol
    dave = ArchiveReader(pool, "UDAVE")
    assert texts((await dave.with_user("Alice", Period(), 50)).messages) == names(
        "deploy", "vacuum", "count_me"
    )


async def test_users_by_id_or_name(pool: AsyncConnectionPool[Any]) -> None:
    reader = ArchiveReader(pool, "UDAVE")
    for ref in ("UBOB", "ubob", "bob", "@bob", "<@UBOB>", "Bob Builder", "bob builder"):
        assert await reader.user_ref(ref) == "UBOB", ref
    assert await reader.user_ref("UNEWCOMER") == "UNEWCOMER"  # not synced yet
    with pytest.raises(NotFoundError, match="no user 'zed'"):
        await reader.user_ref("zed")
    await Archive(pool, BOT).save([user("UBOB2", "bob2", "Bob Builder")])
    with pytest.raises(ArchiveQueryError, match="several people"):
        await reader.user_ref("Bob Builder")
    listed = await reader.users("alice", 10)
    assert [(u.id, u.display_name, u.real_name) for u in listed] == [
        ("UALICE", "Alice", "Alice Liddell")
    ]
    assert len(await reader.users(None, 3)) == 3


@pytest.mark.parametrize("analyzed", [False, True], ids=["no-statistics", "analyzed"])
async def test_search_filters(
    pool: AsyncConnectionPool[Any], analyzed: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if analyzed:
        common_above(monkeypatch, 0)
        await analyze(pool)
    reader = ArchiveReader(pool, "UALICE")

    async def found(**filters: Any) -> set[str]:
        return {m.text for m, _ in await reader.search("billing", limit=50, **filters)}

    assert await found(channel="#general") == set(names("deploy", "deployed"))
    assert await found(channel="CENG") == set(names("vacuum"))
    assert await found(author="bob") == set(names("deployed", "review"))
    assert await found(period=Period.parse("2024-11-27", None)) == set(names("deployed"))
    assert await found(period=Period.parse(None, "2024-11-26")) == set(
        names("deploy", "vacuum", "review")
    )
    assert len(await reader.search("billing", limit=2)) == 2
    with pytest.raises(ArchiveQueryError, match="query is empty"):
        await reader.search("  <@UBOB> ")


def test_periods_and_permalinks() -> None:
    day = Period.parse("2024-11-26", "2024-11-26")
    assert (day.since, day.until) == (
        datetime(2024, 11, 26, tzinfo=UTC),
        datetime(2024, 11, 27, tzinfo=UTC),
    )
    local = Period.parse("2024-11-26T10:00:00+02:00", None)
    assert local.since == datetime(2024, 11, 26, 8, tzinfo=UTC)
    assert Period.parse("", None) == Period()
    with pytest.raises(ArchiveQueryError, match=r"since: 'last week' is not an ISO date"):
        Period.parse("last week", None)
    with pytest.raises(ArchiveQueryError, match="must be before"):
        Period.parse("2024-11-27", "2024-11-26")
    link = permalink(WORKSPACE, "C1", "1732579200.000100", None)
    assert link == "https://acme.slack.com/archives/C1/p1732579200000100"
    reply = permalink(WORKSPACE, "C1", "1732579300.000200", "1732579200.000100")
    assert reply == (
        "https://acme.slack.com/archives/C1/p1732579300000200?thread_ts=1732579200.000100&cid=C1"
    )
    assert permalink(None, "C1", "1.2", None) is None


async def test_the_responder_s_full_text_search_keeps_its_contract(
    pool: AsyncConnectionPool[Any],
) -> None:
    hits = await search_messages(pool, "UALICE", "<@UHERON> billing deploy", limit=10)
    assert {h.text for h in hits} == set(names("deploy", "deployed", "vacuum", "review"))
    assert hits[0].rank >= hits[-1].rank
    excluded = await search_messages(pool, "UALICE", "billing", exclude=("CGEN", T1))
    assert MESSAGES["deploy"][3] not in {h.text for h in excluded}
    assert await search_messages(pool, "UALICE", "<@UHERON>") == []
    review = next(h for h in hits if h.channel_id == "DAB")
    assert review.permalink(WORKSPACE) == "https://acme.slack.com/archives/DAB/p1732579600000100"


# -- common words ----------------------------------------------------------------------------

STANDUPS = 150  # messages with "standup"
KUBERNETES = "Standup: the kubernetes upgrade is done"  # in engineering, public
SECRET_KUBERNETES = "Kubernetes secrets rotate tonight"  # in secret-launch (Alice and Bob)


async def add_standups(pool: AsyncConnectionPool[Any]) -> set[str]:
    """STANDUPS messages in #general with the common word only, and two with a rare one;
    returns the texts of the first."""
    rows = [("CGEN", ts(10_000 + i), "UDAVE", f"Standup {i} notes") for i in range(STANDUPS)]
    rows += [("CENG", ts(20_000), "UALICE", KUBERNETES),
             ("GSEC", ts(20_100), "UBOB", SECRET_KUBERNETES)]  # fmt: skip
    await Archive(pool, BOT).save(
        SaveMessage(message_row(channel, {"ts": when, "user": author, "text": text}))
        for channel, when, author, text in rows
    )
    return {text for _, _, _, text in rows[:STANDUPS]}


async def messages_with(pool: AsyncConnectionPool[Any], *words: str) -> dict[str, float]:
    """How many messages have each word by ANALYZE's statistics (absent: not among the
    most common)."""
    async with pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT e.word, f.share * c.reltuples AS n FROM pg_stats AS s"
            " JOIN pg_class AS c ON c.relname = s.tablename,"
            " unnest(s.most_common_elems::text::text[]) WITH ORDINALITY AS e(word, i)"
            " JOIN unnest(s.most_common_elem_freqs) WITH ORDINALITY AS f(share, i) USING (i)"
            " WHERE s.tablename = 'slack_messages' AND s.attname = 'search'"
            " AND e.word = ANY(%s)",
            (list(words),),
        )
        return {row["word"]: row["n"] for row in await cursor.fetchall()}


@pytest.mark.parametrize("pool", ["partitioned", "plain"], indirect=True)
async def test_common_words_rank_but_do_not_choose_the_candidates(
    pool: AsyncConnectionPool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    common_above(monkeypatch, 20)
    standups = await add_standups(pool)
    # No statistics yet (autovacuum never analyzes a partitioned parent): every word
    # chooses candidates, as before.
    before = await search_messages(pool, "UDAVE", "standup kubernetes", limit=500)
    assert before[0].text == KUBERNETES  # both words
    assert {h.text for h in before} == standups | {KUBERNETES}  # not the private one

    await analyze(pool)
    counts = await messages_with(pool, "standup", "kubernet")
    assert counts["standup"] > 100 > 20 >= counts.get("kubernet", 0.0)
    # "standup" now only ranks: the messages with nothing but it are not candidates.
    after = await search_messages(pool, "UDAVE", "standup kubernetes", limit=500)
    assert [h.text for h in after] == [KUBERNETES]
    alice = await search_messages(pool, "UALICE", "standup kubernetes", limit=500)
    assert [h.text for h in alice] == [KUBERNETES, SECRET_KUBERNETES]  # ranked by both
    assert alice[0].rank > alice[1].rank
    # The MCP server's search: the same candidates, and its filters still apply.
    dave = ArchiveReader(pool, "UDAVE")
    found = await dave.search("standup kubernetes", limit=50)
    assert [m.text for m, _ in found] == [KUBERNETES]
    assert await dave.search("standup kubernetes", channel="general", limit=50) == []
    bob = ArchiveReader(pool, "UBOB")
    by_bob = await bob.search("kubernetes standup", author="bob", limit=50)
    assert [m.text for m, _ in by_bob] == [SECRET_KUBERNETES]


async def test_a_query_of_common_words_only_still_finds_messages(
    pool: AsyncConnectionPool[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    common_above(monkeypatch, 1)
    standups = await add_standups(pool)
    await analyze(pool)
    counts = await messages_with(pool, "standup", "note", "kubernet")
    assert min(counts.values()) > 1
    # A word alone chooses the candidates however common it is.
    only_standup = await search_messages(pool, "UDAVE", "standup", limit=500)
    assert {h.text for h in only_standup} == standups | {KUBERNETES}
    # Every word common: the messages with both of the two least common are the
    # candidates, not every message with either (Bob's secret has no "standup").
    alice = await search_messages(pool, "UALICE", "standup kubernetes", limit=500)
    assert [h.text for h in alice] == [KUBERNETES]
    reader = ArchiveReader(pool, "UALICE")
    assert [m.text for m, _ in await reader.search("kubernetes standup", limit=50)] == [KUBERNETES]
    notes = await search_messages(pool, "UDAVE", "standup notes", limit=500)
    assert {h.text for h in notes} == standups


async def test_in_an_archive_too_small_for_common_words_any_word_finds(
    pool: AsyncConnectionPool[Any],
) -> None:
    await analyze(pool)
    counts = await messages_with(pool, "bill", "friday")
    assert 0 < min(counts.values()) <= max(counts.values()) < COMMON_WORD_MESSAGES
    found = await search_messages(pool, "UDAVE", "billing friday", limit=50)
    assert {h.text for h in found} == set(names("deploy", "deployed", "vacuum"))


# -- vectors ---------------------------------------------------------------------------------


def vector_rows(database_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(
            "SELECT channel_id, ts FROM slack_message_embeddings ORDER BY channel_id, ts"
        ).fetchall()


async def test_embed_pending_fills_updates_and_prunes(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    embedder = HashingEmbedder()
    live = len(MESSAGES) - 1  # all but the deleted one (the placeholder has no text)
    assert await embed_pending(pool, embedder, batch=5) == 5
    assert await embed_pending(database_url, embedder, batch=100) == live - 5  # by conninfo
    assert await embed_pending(pool, embedder) == 0
    assert len(vector_rows(database_url)) == live
    assert ("CGEN", T3) not in vector_rows(database_url)

    archive = Archive(pool, BOT)
    edited = message_row("CENG", {"ts": MESSAGES["vacuum"][1], "user": "UALICE",
                                  "text": "Vacuum the billing tables daily",
                                  "edited": {"ts": ts(5000)}})  # fmt: skip
    await archive.save([SaveMessage(edited), DeleteMessage("CGEN", T1)])
    assert await embed_pending(pool, embedder) == 1  # the edit; the delete is pruned
    assert ("CGEN", T1) not in vector_rows(database_url)
    assert len(vector_rows(database_url)) == live - 1


async def test_embed_archive_embeds_what_it_counted_and_reports_progress(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    embedder = HashingEmbedder()
    seen: list[tuple[int, int]] = []
    first = await embed_archive(pool, embedder, lambda *p: seen.append(p), batch=3)
    live = len(MESSAGES) - 1  # all but the deleted one (the placeholder has no text)
    # count_pending_embeddings and pending_embeddings agree: every counted message embedded.
    assert (first.embedded, first.left, first.model) == (live, 0, embedder.name)
    assert seen[0] == (0, live)
    assert seen[-1] == (live, live)
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(vector_rows(database_url)) == live
    edited = message_row("CENG", {"ts": MESSAGES["vacuum"][1], "user": "UALICE",
                                  "text": "Vacuum the billing tables hourly",
                                  "edited": {"ts": ts(6000)}})  # fmt: skip
    await Archive(pool, BOT).save([SaveMessage(edited)])
    again = await embed_archive(pool, embedder)
    assert (again.embedded, again.left) == (1, 0)


async def test_hybrid_search_finds_by_meaning_what_words_miss(
    pool: AsyncConnectionPool[Any],
) -> None:
    words_only = ArchiveReader(pool, "UDAVE")
    assert await words_only.search("storage is full") == []
    vectors = MessageVectors(MiniLMEmbedder())
    async with pool.connection() as conn:
        await vectors.embed_pending(conn)
    hybrid = ArchiveReader(pool, "UDAVE", vectors)
    (top, score), *_ = await hybrid.search("storage is full", limit=3)
    assert top.text == MESSAGES["disk"][3]
    assert score > 0
    # Vectors obey the same access rules: the DM and the private channel stay out.
    assert {m.channel_id for m, _ in await hybrid.search("celebration", limit=50)} <= {
        "CGEN",
        "CENG",
    }
    # A message deleted after it was embedded is not returned, before any pruning.
    await Archive(pool, BOT).save([DeleteMessage("CGEN", T2)])
    assert all(m.ts != T2 for m, _ in await hybrid.search("storage is full", limit=50))
    # Filters apply to the vector side too (measured exactly, or on the index scan).
    hits = await hybrid.search("storage is full", channel="CENG", limit=50)
    assert {m.channel_id for m, _ in hits} == {"CENG"}
    next_day = await hybrid.search("storage is full", period=Period.parse("2024-11-27", None))
    assert texts(m for m, _ in next_day) == names("deployed")


async def test_the_question_is_embedded_while_the_server_ranks_its_words(
    pool: AsyncConnectionPool[Any], database_url: str
) -> None:
    """The full-text query is on its way before the embedding starts: with the messages
    locked, the search still gets as far as embedding the question."""
    embedder = WatchedEmbedder()
    vectors = MessageVectors(embedder)
    async with pool.connection() as conn:
        await vectors.embed_pending(conn)
    reader = ArchiveReader(pool, "UDAVE", vectors)
    alone = await reader.search("the disk is full")
    assert alone
    embedding = embedder.started
    embedding.clear()
    # the lock goes (locker closes) before the search is waited for, even on a failure
    async with await psycopg.AsyncConnection.connect(database_url) as locker:
        await locker.execute("LOCK TABLE slack_messages IN ACCESS EXCLUSIVE MODE")
        found = asyncio.create_task(reader.search("the disk is full"))
        assert await asyncio.to_thread(embedding.wait, 30)
        assert not found.done()  # its full text still waits for the lock
        await locker.rollback()
    assert await asyncio.wait_for(found, 30) == alone


# -- Heron's own messages --------------------------------------------------------------------

# A question put to Heron and its earlier answers.
HERON: dict[str, tuple[str, str, str, str]] = {
    "question": ("CGEN", ts(3000), "UDAVE", f"<@{BOT.user_id}> when is the billing deploy?"),
    "answer": ("CGEN", ts(3060), BOT.user_id, "The billing deploy is scheduled for Friday"),
    "eng_answer": ("CENG", ts(3120), BOT.user_id, "Vacuum the billing tables weekly, I said"),
    "labelled": ("CGEN", ts(3090), "UBOB", f"<@{BOT.user_id}|heron> and the billing deploy?"),
}
# A mention of someone whose id begins like Heron's: not a question to Heron.
NOT_HERON = ("CGEN", ts(3180), "UDAVE", f"<@{BOT.user_id}X> the billing deploy, any news?")


async def add_heron(pool: AsyncConnectionPool[Any]) -> set[str]:
    """HERON's messages (returns their texts) and NOT_HERON."""
    await Archive(pool, BOT).save(
        SaveMessage(message_row(channel, {"ts": when, "user": author, "text": text}))
        for channel, when, author, text in (*HERON.values(), NOT_HERON)
    )
    return {text for _, _, _, text in HERON.values()}


async def test_search_leaves_heron_out_unless_asked_on_both_sides(
    pool: AsyncConnectionPool[Any],
) -> None:
    heron = await add_heron(pool)
    human = set(names("deploy", "deployed", "vacuum")) | {NOT_HERON[3]}
    words_only = ArchiveReader(pool, "UDAVE")
    assert {m.text for m, _ in await words_only.search("billing deploy", limit=50)} == human
    included = await words_only.search("billing deploy", limit=50, include_heron=True)
    assert {m.text for m, _ in included} == human | heron
    # The retrieval-only responder leaves out the same messages by the same rule.
    retrieval = await search_messages(pool, "UDAVE", "billing deploy", bot_user_id=BOT.user_id)
    assert {h.text for h in retrieval} == human

    # Vectors: words no message has, so that only the vector side finds anything (it
    # always returns the nearest), through the index and measured exactly.
    vectors = MessageVectors(HashingEmbedder())
    async with pool.connection() as conn:
        await vectors.embed_pending(conn)
    hybrid = ArchiveReader(pool, "UDAVE", vectors)
    for filters in ({}, {"channel": "general"}, {"period": Period.parse("2024-11-26", None)}):
        by_meaning = {m.text for m, _ in await hybrid.search("quokka", limit=50, **filters)}
        assert by_meaning, filters
        assert by_meaning.isdisjoint(heron), filters
        everything = await hybrid.search("quokka", limit=50, include_heron=True, **filters)
        assert heron & {m.text for m, _ in everything}, filters
    assert await hybrid.search("quokka", author=BOT.user_id) == []
    by_heron = await hybrid.search("quokka", author=BOT.user_id, include_heron=True)
    assert {m.text for m, _ in by_heron} == {HERON["answer"][3], HERON["eng_answer"][3]}


async def test_heron_s_answers_do_not_crowd_others_out_of_the_nearest_vectors(
    pool: AsyncConnectionPool[Any],
) -> None:
    # More of Heron's answers than the nearest-neighbour scan keeps, all nearer than any
    # other message: they are left out on the scan, not after it.
    answer = "The quokka report is in the wiki"
    await Archive(pool, BOT).save(
        SaveMessage(
            message_row(
                "CGEN", {"ts": ts(40_000 + i), "user": BOT.user_id, "text": f"{answer}, {i}"}
            )
        )
        for i in range(120)
    )
    vectors = MessageVectors(HashingEmbedder())
    async with pool.connection() as conn:
        await vectors.embed_pending(conn)
    reader = ArchiveReader(pool, "UDAVE", vectors)
    # (Only the vector side finds anything; the index is approximate: some, not all.)
    found = {m.text for m, _ in await reader.search(answer, limit=10)}
    assert found
    assert found <= set(names("deploy", "disk", "lunch", "count_me", "pizza", "deployed", "vacuum"))
    with_heron = await reader.search(answer, limit=10, include_heron=True)
    assert all(m.text.startswith(answer) for m, _ in with_heron)


async def test_the_nearest_vectors_check_heron_s_rule_per_candidate(
    pool: AsyncConnectionPool[Any],
) -> None:
    """Not by hashing every searchable message first: expecting the HNSW scan to look at
    half the table, the planner chose that from a few thousand messages up, and it cost
    200 ms a search at 100k messages, where checking the hundred or so candidates the
    scan really visits costs under a millisecond."""
    rows = [
        message_row("CGEN", {"ts": ts(50_000 + 60 * i), "user": "UBOB", "text": f"note {i}"})
        for i in range(5000)
    ]
    await Archive(pool, BOT).import_messages(rows)
    vectors = MessageVectors(HashingEmbedder())
    async with pool.connection() as conn:
        assert await vectors.available(conn)
        await conn.execute(  # any vectors will do: the plan is what is looked at
            "INSERT INTO slack_message_embeddings (channel_id, ts, model, embedding, text_hash)"
            " SELECT channel_id, ts, %s, array_fill(0.05::real, ARRAY[384])::vector, md5(text)"
            " FROM slack_messages",
            (vectors.embedder.name,),
        )
        await conn.execute("ANALYZE slack_messages")
        await conn.execute("ANALYZE slack_message_embeddings")
        statement = sql.SQL("EXPLAIN " + _searchable("vector_nearest")).format(
            dims=sql.Literal(vectors.embedder.dimensions),
            model=sql.Literal(vectors.embedder.name),
        )
        params = {
            "user_id": "UDAVE",
            "vector": await vectors.embed_query("billing"),
            "limit": 50,
            "nearest": 100,
            "channel_id": None,
            "author_id": None,
            "since": None,
            "until": None,
            "bot_user_id": BOT.user_id,
        }
        explained = await (await conn.execute(statement, params)).fetchall()
    lines = [row["QUERY PLAN"] for row in explained]
    scan = next(n for n, line in enumerate(lines) if "_hnsw on slack_message_embeddings" in line)
    check = next(line for line in lines[scan + 1 :] if "Filter:" in line)
    assert "EXISTS(SubPlan" in check
    assert "hashed" not in check


async def test_without_a_known_bot_user_nothing_is_left_out(
    pool: AsyncConnectionPool[Any],
) -> None:
    heron = await add_heron(pool)
    async with pool.connection() as conn:  # an archive imported from an export only
        await conn.execute("DELETE FROM slack_workspace")
    vectors = MessageVectors(HashingEmbedder())
    async with pool.connection() as conn:
        await vectors.embed_pending(conn)
    reader = ArchiveReader(pool, "UDAVE", vectors)
    assert heron <= {m.text for m, _ in await reader.search("billing deploy", limit=50)}
    assert heron <= {m.text for m, _ in await reader.search("quokka", limit=50)}
    by_heron = await reader.search("quokka", author=BOT.user_id, limit=50)
    assert {m.text for m, _ in by_heron} == {HERON["answer"][3], HERON["eng_answer"][3]}
