"""The replay server in a process of its own, for benchmarks.

An in-process `ReplayServer` shares the caller's interpreter and GIL, so a
benchmark of a client would time the emulator as well. `ReplayProcess` serves
the same recorded files, mounted per city as `mount_city` does, from a child
Python process; tests that script faults or inspect requests keep the
in-process server. The child can also be run by hand:

    python -m tooling.replay.process nyc=data/demo/feed.json

prints the server's root URL once it listens, and serves until interrupted.
"""

from __future__ import annotations

import select
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

START_TIMEOUT_SECONDS = 300.0  # a large file takes a while to read and index


class ReplayProcess:
    """Serve `{city_id: [files]}` on 127.0.0.1 from a child process; use as a context manager."""

    def __init__(self, served: Mapping[str, Sequence[Path]], host: str = "127.0.0.1") -> None:
        self.served = {city_id: [Path(p).resolve() for p in paths] for city_id, paths in served.items()}
        self.host = host
        self._process: subprocess.Popen | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """The server's root; a city's feed is at `City.base_url(url)`."""
        if self._url is None:
            raise RuntimeError("ReplayProcess is not started")
        return self._url

    @property
    def pid(self) -> int:
        """The child's process id, for benchmarks that read its memory."""
        if self._process is None:
            raise RuntimeError("ReplayProcess is not started")
        return self._process.pid

    def start(self) -> ReplayProcess:
        if self._process is not None:
            raise RuntimeError("ReplayProcess is already started")
        specs = [f"{city_id}={path}" for city_id, paths in self.served.items() for path in paths]
        self._process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", __name__, "--host", self.host, *specs],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            ready, _, _ = select.select([self._process.stdout], [], [], START_TIMEOUT_SECONDS)
            line = self._process.stdout.readline().strip() if ready else ""
            if not line.startswith("http://"):
                if ready:  # end of output: the child is exiting
                    self._process.wait(timeout=10)
                code = self._process.poll()
                raise RuntimeError(
                    f"the replay process exited with code {code} before it listened (its error is above)"
                    if code is not None
                    else f"the replay process did not listen within {START_TIMEOUT_SECONDS:.0f} s"
                )
            self._url = line
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        self._url = None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

    def __enter__(self) -> ReplayProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> None:
    """Mount each CITY=PATH and serve; the first line on stdout is the root URL."""
    import argparse

    from ingestion.registry import load_registry
    from tooling.replay.catalog import mount_city
    from tooling.replay.server import ReplayServer

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("served", nargs="+", metavar="CITY=PATH")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    files: dict[str, list[Path]] = {}
    for spec in args.served:
        city_id, _, path = spec.partition("=")
        if not path:
            parser.error(f"expected CITY=PATH, got {spec!r}")
        files.setdefault(city_id, []).append(Path(path))
    registry = load_registry()
    server = ReplayServer(host=args.host)
    for city_id, paths in files.items():
        mount_city(server, registry.city(city_id), paths)
    server.serve_forever(ready=lambda: print(server.url, flush=True))


if __name__ == "__main__":
    main()
