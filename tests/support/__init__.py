"""Helpers the tests share, one module a concern, so each is written once: conftests hold only
fixtures, and a test imports what it needs from here.

- `servers`: the fast job timings and every way to start the service (a process, a thread,
  the bare command, any ASGI app on loopback);
- `jobs`: the jobs a service holds, counted at the service;
- `projects`: a pipeline project's table and service settings on disk; `builders`: the
  requests, lineage rows and ids the tests build in memory;
- `embedded`: the service reached in-process; `fakes`: fake servers for the client;
- `clock`, `spec`: the fake clock and the OpenAPI validator of the service tests;
- `reliability`: a project driven by subprocesses and the checks every reliability case ends
  with;
- `gateway`, `litellm_proxy`: the real LiteLLM proxy in front of the service;
- `dagster_ui`: the sample checkout served by `dagster dev` or `dagster-webserver`;
- `browser`: headless Chromium; `postgres`: the PostgreSQL test server;
- `needs`: skip a test for a missing part locally, fail it under CI.
"""
