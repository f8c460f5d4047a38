"""Runs launched as the UI launches them: from the workspace's code location.

`civic311 refresh`, `civic311 publish`, `civic311 bootstrap` and the demo create each
run on the instance in DAGSTER_HOME from the code location that `workspace.yaml`
names (`civic311`), with that location's job snapshot and origin, as the UI's Launch
button does. So a run is listed under its job and on the timeline, and the UI can
re-execute it. A run made by `JobDefinition.execute_in_process` has no origin: the UI
shows it in the run list only, under no job, and cannot re-execute it.

The run then executes in this process (every job's executor runs its steps in the
run's process, orchestration/definitions.py), so the command's progress display
follows its steps, and dbt's output can be sent to a log file. Launching through the
instance's run launcher instead would start a code server and a run worker, each
importing the code location (about 5 s each), and leave the run's output to them.

The code location is loaded in this process from the workspace file's one entry,
under its name, with the environment this process has: CIVIC311_WAREHOUSE,
CIVIC311_CITIES and the replay's URL choose what it builds, as they do for `dagster dev`.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from pathlib import Path

import yaml
from dagster import AssetCheckSeverity, AssetKey, DagsterInstance, DagsterRun, JobExecutionResult
from dagster._core.definitions.reconstruct import ReconstructableJob
from dagster._core.definitions.selector import JobSubsetSelector
from dagster._core.execution.api import execute_run
from dagster._core.remote_origin import InProcessCodeLocationOrigin
from dagster._core.remote_representation.code_location import CodeLocation, InProcessCodeLocation
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin

from orchestration.partitions import range_tags
from orchestration.progress import Display
from orchestration.sensors import release_dead_runs

WORKSPACE = Path(__file__).resolve().parents[1] / "workspace.yaml"


class WorkspaceError(ValueError):
    """The workspace file does not name the one code location a run is launched from."""


def location_origin(workspace: Path = WORKSPACE) -> InProcessCodeLocationOrigin:
    """The code location `workspace` names, as loaded in this process: its module and its
    name (the name the UI lists runs under)."""
    try:
        entries = yaml.safe_load(workspace.read_text())["load_from"]
        (entry,) = entries
        module = entry["python_module"]
        module_name, location_name = module["module_name"], module["location_name"]
    except (OSError, KeyError, TypeError, ValueError) as exc:
        raise WorkspaceError(
            f"{workspace}: expected one `load_from` entry, a `python_module` with `module_name` and "
            f"`location_name` ({type(exc).__name__}: {exc}). Fix: restore the file from the repository."
        ) from exc
    return InProcessCodeLocationOrigin(
        LoadableTargetOrigin(
            executable_path=sys.executable,
            module_name=module_name,
            working_directory=str(workspace.parent),
        ),
        location_name=location_name,
    )


@contextlib.contextmanager
def code_location(instance: DagsterInstance, workspace: Path = WORKSPACE) -> Iterator[InProcessCodeLocation]:
    """The workspace's code location, loaded in this process."""
    location = location_origin(workspace).create_location(instance)
    try:
        yield location
    finally:
        location.cleanup()


def create_run(
    instance: DagsterInstance,
    location: CodeLocation,
    job_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
    asset_selection: Sequence[AssetKey] | None = None,
) -> DagsterRun:
    """A run of `job_name` (or of `asset_selection` within it) created on the instance from
    the location's snapshot of the job, as the UI creates one: with the job's tags, its
    execution plan and the location's origin."""
    (repository,) = location.get_repositories().values()
    remote_job = location.get_job(
        JobSubsetSelector(
            location_name=location.name,
            repository_name=repository.name,
            job_name=job_name,
            op_selection=None,
            asset_selection=asset_selection,
        )
    )
    run_config = dict(run_config or {})
    plan = location.get_execution_plan(
        remote_job, run_config, step_keys_to_execute=None, known_state=None, instance=instance
    ).execution_plan_snapshot
    return instance.create_run(
        job_name=job_name,
        run_id=None,
        run_config=run_config,
        resolved_op_selection=None,
        step_keys_to_execute=plan.step_keys_to_execute,
        op_selection=None,
        status=None,
        root_run_id=None,
        parent_run_id=None,
        tags={**remote_job.tags, **(tags or {})},
        job_snapshot=remote_job.job_snapshot,
        execution_plan_snapshot=plan,
        parent_job_snapshot=remote_job.parent_job_snapshot,
        remote_job_origin=remote_job.get_remote_origin(),
        job_code_origin=remote_job.get_python_origin(),
        asset_selection=frozenset(asset_selection) if asset_selection else None,
        asset_check_selection=None,
        asset_graph=repository.asset_graph,
    )


def launch(
    job_name: str,
    *,
    tags: Mapping[str, str] | None = None,
    run_config: Mapping[str, object] | None = None,
    asset_selection: Sequence[AssetKey] | None = None,
    instance: DagsterInstance | None = None,
    location: InProcessCodeLocation | None = None,
    display: Display | None = None,
) -> JobExecutionResult:
    """Create the run from the workspace's code location (`location`, else loaded for
    this run) and execute it here, after releasing the runs a kill left started (whose
    pool slot would make this one wait forever). `display` follows the run's events.
    Returns the finished run's result."""
    instance = instance or DagsterInstance.get()
    release_dead_runs(instance)
    with contextlib.ExitStack() as stack:
        if location is None:
            location = stack.enter_context(code_location(instance))
        run = create_run(
            instance, location, job_name, tags=tags, run_config=run_config, asset_selection=asset_selection
        )
        repository = run.remote_job_origin.repository_origin
        # Dagster keeps the last job it reconstructed in a process-wide cache keyed by
        # the code pointer, the same for every launch: a process that launches again in
        # another environment (another warehouse, as the tests do) would run the job
        # built for the first. The location just built its own; drop the cached one.
        ReconstructableJob.get_definition.cache_clear()
        ReconstructableJob.get_repository_definition.cache_clear()
        job = location.get_reconstructable_job(repository.repository_name, job_name)
        if display is not None:
            selected = job.get_subset(asset_selection=frozenset(asset_selection)) if asset_selection else job
            stack.enter_context(display.following(run, selected.get_definition()))
        return execute_run(job, run, instance)


def launch_days(job_name: str, first: date, last: date, **options) -> JobExecutionResult:
    """`launch` over the partitions first..last (inclusive) as one run, as a backfill runs
    them; `options` as for `launch` (their tags are added to the range's)."""
    tags = {**(options.pop("tags", None) or {}), **range_tags(first, last)}
    return launch(job_name, tags=tags, **options)


def failures(result: JobExecutionResult) -> list[str]:
    """What stopped a run, a line each: its blocking checks that failed, with their
    description, then its failed steps."""
    checks = [
        f"failed check {evaluation.asset_key.to_user_string()}:{evaluation.check_name}"
        + (f": {evaluation.description}" if evaluation.description else "")
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
    ]
    steps = [f"failed step {event.step_key}" for event in result.all_events if event.is_step_failure]
    return checks + steps
