"""Claiming ahead: only as much as the slots get through within the wait budget."""

from heron.config import Config
from heron.queue.runner import PREFETCH_WAIT_BUDGET, PoolRunner


def runner(size: int = 5, cap: int = 20) -> PoolRunner:
    config = Config(_env_file=None, heron_prefetch=cap)
    return PoolRunner(size, print, store=None, listener_conninfo="", config=config, worker_id="w")  # type: ignore[arg-type]


def test_no_prefetch_before_any_handler_has_run():
    r = runner()
    assert r._prefetch_room() == 0
    assert r._room() == 5


def test_fast_handlers_prefetch_up_to_the_cap():
    r = runner(size=5, cap=20)
    for _ in range(20):
        r._observe_handler(0.00005)
    assert r._prefetch_room() == 20
    assert r._room() == 25


def test_slow_handlers_never_prefetch():
    r = runner(size=5, cap=20)
    for _ in range(20):
        r._observe_handler(2.0)  # a model call
    assert r._prefetch_room() == 0


def test_prefetch_keeps_the_average_local_wait_within_budget():
    r = runner(size=4, cap=1000)
    for _ in range(50):
        r._observe_handler(0.001)
    room = r._prefetch_room()
    assert room > 0
    assert room / 4 * 0.001 <= PREFETCH_WAIT_BUDGET


def test_a_cap_of_zero_turns_prefetch_off():
    r = runner(cap=0)
    r._observe_handler(0.00001)
    assert r._prefetch_room() == 0
