"""Tools that make and check example apps: synthetic traffic and its expected anomaly
report for `network_monitoring_app` (`traffic`), and a generator of layered random
DAG apps of any size (`dummy`).

Nothing here is imported by the orchestrator itself; the tests, the benchmarks and
`scripts/generate_dummy_app.py` use it.
"""
