"""Serve recorded files as a registry city's feed, in the city's own protocol.

`mount_city(server, city, files)` puts the records under `/<city_id>`, where
`City.base_url(replay_url)` points the city's adapter. Used by
`civic311 replay --serve`, the demo and the tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ingestion.registry import City
from tooling.replay.ckan import CkanApi, load_ckan_records
from tooling.replay.open311 import Open311Api, load_open311_records
from tooling.replay.records import DEFAULT_UPDATED_AT_FIELDS, iter_records
from tooling.replay.seeclickfix import SeeClickFixApi, load_scf_issues
from tooling.replay.server import ReplayServer


def mount_city(
    server: ReplayServer, city: City, files: Sequence[Path], dataset_id: str | None = None
) -> None:
    """Serve the records in `files` as `city`'s feed.

    Socrata: the records become `dataset_id` (default: the city's first dataset)
    and its other datasets answer empty. CKAN: they become the newest year's
    resource, earlier years answer empty. Open311 and SeeClickFix: one endpoint.
    """
    prefix = f"/{city.id}"
    source = city.source
    if source.protocol == "socrata":
        # One record at a time: the dataset keeps only their JSON.
        records = (r for path in files for r in iter_records(Path(path)))
        fields = tuple(city.export.updated_at_fields) if city.export else DEFAULT_UPDATED_AT_FIELDS
        target = dataset_id or source.all_datasets[0].id
        for dataset in source.all_datasets:
            server.add_dataset(
                dataset.id,
                records if dataset.id == target else [],
                id_field=source.id_field,
                updated_at_fields=fields,
                # The last of the change fields is when the request was made.
                created_field=fields[-1],
                prefix=prefix,
            )
    elif source.protocol == "open311":
        requests = [r for path in files for r in load_open311_records(Path(path))]
        server.mount(
            prefix,
            Open311Api(
                requests,
                jurisdiction_id=source.jurisdiction_id,
                supports_paging=source.page_size is not None,
                window_field=source.window_field,
                format_default=source.format,
            ),
        )
    elif source.protocol == "seeclickfix":
        issues = [i for path in files for i in load_scf_issues(Path(path))]
        server.mount(prefix, SeeClickFixApi({source.place_url: issues}))
    elif source.protocol == "ckan":
        records = [r for path in files for r in load_ckan_records(Path(path))]
        years = sorted(source.resources_by_year)
        api = CkanApi({source.resources_by_year[years[-1]]: records}, id_field=source.id_field)
        for year in years[:-1]:
            api.add_resource(source.resources_by_year[year], [], fields=list(records[0]) if records else ())
        server.mount(prefix, api)
    else:  # the registry's discriminated union makes this unreachable
        raise ValueError(f"{city.id}: the replay has no emulation of {source.protocol!r}")
