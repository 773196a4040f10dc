"""The PostgreSQL event queue: exactly-once claims, leases, retries, a worker pool."""

from heron.queue.enqueue import enqueue
from heron.queue.event_processor import EventProcessor
from heron.queue.handlers import HandlerRegistry
from heron.queue.retry import RetryPolicy
from heron.queue.worker_pool import WorkerPool

__all__ = ["EventProcessor", "HandlerRegistry", "RetryPolicy", "WorkerPool", "enqueue"]
