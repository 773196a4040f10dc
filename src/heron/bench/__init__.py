"""`heron bench`: reproducible benchmarks that print numbers and write them as JSON.

Heavy or optional imports (PGQueuer, asyncpg) happen inside the functions that need them,
so that `heron` itself never depends on them.
"""
