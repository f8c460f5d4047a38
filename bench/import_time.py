"""Code-location load time: what `dagster dev` pays before the UI shows the location.

    python bench/import_time.py [--repeat N]

Each measure runs in a fresh interpreter (this one's), `--repeat` times (default 5):
  baseline     `import duckdb`, the one heavy library every path of civic311 needs
  import       `import orchestration.definitions`
  load         importing it and resolving its Definitions as the Dagster loader does
               (`loadable_targets_from_python_module`, then `repository_def_from_target_def`,
               then every job): assets, checks, jobs, schedules and sensors built

The dbt manifest must be prepared beforehand (`make env`); the bench says so if it is not.
Prints JSON: the median and the fastest seconds of each, and the medians' ratio to the
baseline's, all measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

MEASURES = {
    "baseline": "import duckdb",
    "import": "import orchestration.definitions",
    "load": (
        "from dagster._core.workspace.autodiscovery import loadable_targets_from_python_module\n"
        "from dagster._core.definitions.reconstruct import repository_def_from_target_def\n"
        "[target] = loadable_targets_from_python_module('orchestration.definitions', None)\n"
        "repository = repository_def_from_target_def(target.target_definition)\n"
        "repository.get_all_jobs()"
    ),
}


def seconds_in_fresh_interpreter(code: str) -> float:
    """Wall time of `code` in a new interpreter, from before its first import to after
    its last statement (the interpreter's own start-up left out)."""
    timed = f"import time\nstart = time.perf_counter()\n{code}\nprint(time.perf_counter() - start)"
    done = subprocess.run(  # noqa: S603 - this interpreter, fixed code
        [sys.executable, "-c", timed], cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"bench/import_time.py: {code.splitlines()[0]!r} failed:\n{done.stderr}")
    return float(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    started = time.perf_counter()
    runs: dict[str, list[float]] = {name: [] for name in MEASURES}
    # Interleaved, so a busy moment on the machine falls on every measure alike.
    for _ in range(args.repeat):
        for name, code in MEASURES.items():
            runs[name].append(seconds_in_fresh_interpreter(code))
    baseline = statistics.median(runs["baseline"])
    report = {
        name: {
            "median_s": round(statistics.median(times), 3),
            "fastest_s": round(min(times), 3),
            "ratio_to_baseline": round(statistics.median(times) / baseline, 1),
        }
        for name, times in runs.items()
    }
    report["repeat"] = args.repeat
    report["bench_s"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
