"""Tooling for tests, the demo and benchmarks: the replay of the city APIs
(`tooling.replay`), the synthetic NYC feed (`tooling.synthetic`), the demo
run (`tooling.demo`) and a local PostgreSQL cluster for the Dagster instance
(`tooling.postgres`). The runtime (`ingestion`, `orchestration`) never imports
it; only the `civic311` commands that use it do, inside the command."""
