"""Chat about running software, for load runs: what the locust users post and the history
the archive holds before they start, so that the archive (and what a question's search
finds) looks like a team's rather than one sentence repeated."""

from __future__ import annotations

import random

VOCABULARY = (
    "deploy rollback release canary staging production migration schema index vacuum "
    "replica failover backup restore latency p99 timeout retry queue worker lease "
    "postgres timescale hypertable chunk compression partition query plan slow lock "
    "deadlock connection pool pgbouncer cpu memory disk alert pager incident postmortem "
    "dashboard grafana metrics logs trace span kubernetes pod node helm terraform "
    "docker image build ci flaky test merge review branch hotfix feature flag config "
    "secret token rotate certificate dns load balancer cache redis kafka consumer "
    "offset lag throughput error rate budget slo sla customer ticket support billing "
    "invoice report export import csv api endpoint webhook slack bot model prompt "
    "embedding search docs runbook oncall handover standup sprint roadmap estimate"
)
WORDS = VOCABULARY.split()


def chat_words(rng: random.Random) -> str:
    """One message's words: 4 to 24 of the vocabulary."""
    return " ".join(rng.choices(WORDS, k=rng.randint(4, 24)))
