"""The Evidence dashboard (bi/, docs/bi.md): build its static site from a serving file, serve it.

`python -m tooling.bi build [--serving PATH]` runs `npm ci` when bi/node_modules is missing or
stale, then Evidence's sources and build steps into bi/build; `python -m tooling.bi serve
[--port 3001]` serves that folder on 127.0.0.1. `make bi` runs both.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROJECT = REPO / "bi"
# The source's name in bi/sources/civic311/connection.yaml, and the variable Evidence
# reads its `filename` option from (EVIDENCE_SOURCE__<source>__<option>).
SOURCE = "serving"
SOURCE_DIR = Path("sources") / "civic311"
FILENAME_ENV = f"EVIDENCE_SOURCE__{SOURCE}__filename"
# Written at each build, served at /generated/areas.geojson (pages/service-gaps.md).
AREA_SHAPES = Path("static") / "generated" / "areas.geojson"
DEFAULT_PORT = 3001
FIRST_LINES, LAST_LINES = 10, 30


class BuildError(RuntimeError):
    """A step of the site's build that failed, with the start and the end of its output."""


def install(project: Path = PROJECT) -> None:
    """`npm ci` when node_modules is missing or older than package-lock.json (npm writes
    node_modules/.package-lock.json at every install)."""
    installed = project / "node_modules" / ".package-lock.json"
    lock = project / "package-lock.json"
    if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
        return
    _run("npm ci", ["npm", "ci"], project, os.environ.copy())


def build(serving: Path, project: Path = PROJECT, published: Path | None = None) -> Path:
    """Build the static site from `serving` (a serving file, opened read-only) into
    `project`/build and return that folder. The area shapes come from the GeoParquet of
    the same publish under `published` (default: as `publish` places it)."""
    serving = serving.resolve()
    if not serving.is_file():
        raise BuildError(f"no serving file at {serving}: run `make demo`, or pass --serving PATH")
    _check_telemetry_off(project)
    install(project)
    write_area_shapes(serving, _published_dir(serving, published), project / AREA_SHAPES)
    # Evidence keeps the old data of a query that now returns no rows, and copies each
    # build over the last: start both empty, so the site holds this publish only.
    for stale in (project / ".evidence" / "template" / "static" / "data", project / "build"):
        shutil.rmtree(stale, ignore_errors=True)
    env = os.environ.copy()
    # Relative to the source folder: the connector joins `filename` to it.
    env[FILENAME_ENV] = os.path.relpath(serving, project / SOURCE_DIR)
    _run("npm run sources", ["npm", "run", "sources"], project, env)
    _run("npm run build", ["npm", "run", "build"], project, env)
    return project / "build"


def write_area_shapes(serving: Path, published: Path, target: Path) -> int:
    """GeoJSON of every mapped area of the publish in `serving` (boundary layers and H3
    cells; ZIPs have no shape), each feature keyed `city_id/layer/area_id` and nothing
    else, from its GeoParquet `published`/<publish_id>/geo/dim_area.parquet. Returns the
    number of features. The serving file holds no geometry, and the browser's DuckDB
    could only read WKB with an extension it would download."""
    import duckdb
    import geopandas as gpd
    import numpy as np
    import shapely

    with duckdb.connect(str(serving), read_only=True) as con:
        (publish_id,) = con.execute("select publish_id from civic311.publishes").fetchone()
    shapes = published / publish_id / "geo" / "dim_area.parquet"
    if not shapes.is_file():
        raise BuildError(
            f"no area shapes for publish {publish_id}: expected {shapes} (set CIVIC311_PUBLISHED "
            "to the published folder of this serving file)"
        )
    areas = gpd.read_parquet(shapes, columns=["city_id", "layer", "area_id", "area_type", "geometry"])
    areas = areas[areas.geometry.notna() & (areas.area_type != "unlocated")]
    # 6 decimals of a degree (about 0.1 m): the polygons are simplified to 10 m anyway.
    geometries = shapely.transform(areas.geometry.values, lambda xy: np.round(xy, 6))
    features = [
        {
            "type": "Feature",
            "properties": {"area_key": f"{city}/{layer}/{area}"},
            "geometry": json.loads(shapely.to_geojson(geometry)),
        }
        for city, layer, area, geometry in zip(
            areas.city_id, areas.layer, areas.area_id, geometries, strict=True
        )
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"type": "FeatureCollection", "features": features}, separators=(",", ":")))
    return len(features)


def _published_dir(serving: Path, published: Path | None) -> Path:
    if published is not None:
        return published.resolve()
    from orchestration.serving import published_dir

    # The publish writes the serving file and published/ side by side, beside the
    # warehouse, so the serving file's folder stands for the warehouse's.
    return published_dir(serving)


def _check_telemetry_off(project: Path) -> None:
    """Evidence sends usage statistics unless this file says no (it ignores the environment)."""
    settings = project / "evidence.settings.json"
    if not settings.is_file() or json.loads(settings.read_text()).get("send_anonymous_usage_stats") != "no":
        raise BuildError(f'{settings} must hold {{"send_anonymous_usage_stats": "no"}}: telemetry stays off')


def _run(step: str, command: list[str], cwd: Path, env: dict[str, str]) -> None:
    """Run one step and print its time; on failure raise with the step and the ends of its output."""
    started = time.monotonic()
    print(f"{step} in {cwd} ...", flush=True)
    try:
        result = subprocess.run(  # noqa: S603 - fixed commands
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    except FileNotFoundError as error:
        raise BuildError(f"{step}: {command[0]} is missing (the site needs Node 18+ and npm)") from error
    if result.returncode != 0:
        # Evidence colours its output; npm puts its reason first and its usage after it.
        lines = re.sub(r"\x1b\[[0-9;]*m", "", result.stdout).rstrip().splitlines()
        if len(lines) > FIRST_LINES + LAST_LINES:
            lines = [*lines[:FIRST_LINES], "...", *lines[-LAST_LINES:]]
        ended = f"{step} failed (exit {result.returncode}) in {cwd}; its output:"
        raise BuildError("\n".join([ended, *lines]))
    print(f"{step}: done in {time.monotonic() - started:.0f} s", flush=True)


class RangeRequestHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single byte ranges: the browser's DuckDB reads Parquet by range
    requests, and without them it falls back to whole files with a console warning."""

    def send_head(self):
        ranged = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", "").strip())
        path = Path(self.translate_path(self.path))
        if not ranged or not path.is_file() or ranged.groups() == ("", ""):
            return super().send_head()
        size = path.stat().st_size
        first, last = ranged.groups()
        start, end = (int(first), int(last or size - 1)) if first else (max(size - int(last), 0), size - 1)
        end = min(end, size - 1)
        if start > end:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.end_headers()
            return None
        body = path.open("rb")
        body.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._range_left = end - start + 1
        return body

    def copyfile(self, source, outputfile):
        left = getattr(self, "_range_left", None)
        if left is None:
            return super().copyfile(source, outputfile)
        self._range_left = None
        outputfile.write(source.read(left))

    def end_headers(self):
        if not self.headers.get("Range"):
            self.send_header("Accept-Ranges", "bytes")
        super().end_headers()

    def log_message(self, format, *args):
        """Quiet: a page asks for dozens of files, and the terminal shows the address only."""


def server(build_dir: Path, port: int = DEFAULT_PORT) -> http.server.ThreadingHTTPServer:
    """An HTTP server of `build_dir` on 127.0.0.1:`port` (0: a free port), not yet serving."""
    handler = partial(RangeRequestHandler, directory=str(build_dir))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(build_dir: Path, port: int = DEFAULT_PORT) -> None:
    """Serve the built site on 127.0.0.1 until interrupted."""
    if not (build_dir / "index.html").is_file():
        raise BuildError(f"no site in {build_dir}: run `python -m tooling.bi build` first")
    with server(build_dir, port) as httpd:
        address = f"http://127.0.0.1:{httpd.server_address[1]}/"
        print(f"civic311 dashboard: {address} (Ctrl-C stops it)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how it stops
            httpd.serve_forever()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tooling.bi", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_command = commands.add_parser("build", help="build the site into bi/build")
    build_command.add_argument(
        "--serving",
        type=Path,
        default=None,
        help="the serving file (default: $CIVIC311_SERVING, else serving.duckdb beside the warehouse: "
        "data/serving.duckdb, the publish of `make demo`)",
    )
    build_command.add_argument(
        "--published",
        type=Path,
        default=None,
        help="the published folder with the publish's GeoParquet (default: $CIVIC311_PUBLISHED, "
        "else published/ beside the serving file)",
    )
    serve_command = commands.add_parser("serve", help="serve the built site on 127.0.0.1")
    serve_command.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"the port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            serving = args.serving or _default_serving()
            site = build(serving, PROJECT, args.published)
            print(f"site built from {serving.resolve()} into {site}", flush=True)
        else:
            serve(PROJECT / "build", args.port)
    except BuildError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


def _default_serving() -> Path:
    from ingestion.pipeline import warehouse_path
    from orchestration.serving import serving_path

    return serving_path(warehouse_path())


if __name__ == "__main__":
    sys.exit(main())
