"""Benchmarks: ``make bench`` (or ``python -m bench [name ...]``).

Performance is measured here, never by timed assertions in the test suite. Each benchmark is a
module in this package with a ``run() -> dict`` function, registered in ``bench.__main__``;
it runs against its own PostgreSQL database (see ``bench.common``) and writes its figures to
``bench/results/<name>.json``.
"""
