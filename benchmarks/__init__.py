"""fanout's performance suite: ``python -m benchmarks all`` (see benchmarks/README.md).

Every goal starts the built-in simulator in its own process on loopback and
never touches the internet. Goals:

- ``p1`` throughput: validated extractions per second, fanout's engine against
  the article's stack and a bare aiohttp client, with identical results;
- ``p2`` fidelity: each strategy's elapsed time against ``ceil(N/k)·L``;
- ``p3`` dashboard overhead: the same run headless and in the dashboard, with
  event-loop lag and key-press latency measured inside the app;
- ``p4`` scale: loading and running 100,000 rows, with peak memory;
- ``p5`` the endpoint: requests/s of ``fanout serve`` and 1,000 open connections;
- ``article``: the article's own code against ``fanout serve``.
"""
