"""``python -m bench [name ...]`` — run the registered benchmarks (all of them by default).

Each prints a compact table and writes ``bench/results/<name>.json``. To add one, write a
module here with ``run() -> dict`` and ``render(result)`` (and optionally ``failed(result)
-> list[str]``), then register it below.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

# name → module (imported only when run)
BENCHES = {
    "ledger": "bench.ledger",
    "api_http": "bench.api_http",
    "shopify_webhooks": "bench.shopify_webhooks",
    "claims": "bench.claims",
    "clawback": "bench.clawback",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="name", help=f"one of: {', '.join(BENCHES)}")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(BENCHES))
        return 0
    unknown = [n for n in args.names if n not in BENCHES]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHES)}")

    from . import common

    common.prepare()
    problems = []
    started = time.perf_counter()
    for name in args.names or list(BENCHES):
        module = importlib.import_module(BENCHES[name])
        result = module.run()
        module.render(result)
        path = common.write_results(name, result)
        print(f"→ {path.relative_to(path.parents[2])}")
        problems += [f"{name}: {p}" for p in getattr(module, "failed", lambda r: [])(result)]
    print(f"\nbench: done in {time.perf_counter() - started:.0f} s")
    for problem in problems:
        print(f"bench: FAILED {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
