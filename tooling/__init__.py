"""Tooling for tests, the demo and benchmarks: the replay of the city APIs
(`tooling.replay`), the synthetic NYC feed (`tooling.synthetic`) and the demo
run (`tooling.demo`). The runtime (`ingestion`, `orchestration`) never imports
it; only the `civic311` commands that use it do, inside the command."""
