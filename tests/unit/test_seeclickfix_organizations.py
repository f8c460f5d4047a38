"""SeeClickFix organisation scoping: the registry's `organizations` entries against
the organisations named in the real recorded issues."""

from __future__ import annotations

import json
import logging

import pytest

from ingestion.registry import load_registry, organization_matches
from ingestion.sources.seeclickfix import split_foreign
from tests.helpers.data import SHARED_DATA
from tooling.replay.seeclickfix import load_scf_issues

SCF = SHARED_DATA / "seeclickfix"
DETROIT_ORGANIZATIONS = {
    "City of Detroit",
    "City of Detroit - Buildings, Safety, Engineering & Environmental Dept.",
    "City of Detroit - General Services Division",
    "Detroit Water & Sewerage Dept.",
}


@pytest.fixture(scope="module")
def nationwide() -> list[dict]:
    return [i for path in sorted(SCF.glob("scf_v2_issues_nationwide_*.json")) for i in load_scf_issues(path)]


def organization_of(issue: dict) -> str | None:
    return (issue.get("request_type") or {}).get("organization")


@pytest.mark.parametrize(
    ("name", "matches"),
    [
        ("City of Detroit", True),
        ("city of detroit", True),  # case-insensitive
        ("  City  of\tDetroit ", True),  # whitespace collapsed
        ("City of Detroit - General Services Division", True),  # the glob
        ("CITY OF DETROIT -   Water Dept.", True),
        ("City of Detroit -", False),  # the glob needs its " - " and a department
        ("City of Detroit Lakes", False),
        ("Detroit Water & Sewerage Dept.", True),
        ("Detroit Water & Sewerage Dept", False),  # exact names are exact
        ("Township of Detroit", False),
        (None, False),
        ("", False),
        ("   ", False),
    ],
)
def test_exact_names_and_globs_match_case_and_whitespace_blind(name, matches):
    entries = ["City of Detroit", "City of Detroit - *", "Detroit Water & Sewerage Dept."]
    assert organization_matches(name, entries) is matches


def test_a_name_with_glob_characters_still_matches_itself():
    # As a glob, "[Test]" is a character class that the name "[Test] Streets" would not match.
    assert organization_matches("[Test] Streets", ["[test]  streets"])
    assert organization_matches("Streets?", ["Streets?"]) and organization_matches("Streets!", ["Streets?"])


def test_detroits_entries_take_exactly_its_four_organisations(nationwide):
    detroit = load_registry().city("detroit").source
    named = {organization_of(i) for i in nationwide} - {None}
    assert len(named) == 184  # the nationwide pages' organisations
    assert {name for name in named if detroit.handles(name)} == DETROIT_ORGANIZATIONS
    # Every issue at a Detroit address is handled by one of them.
    at_detroit = [i for i in nationwide if "Detroit" in (i.get("address") or "")]
    assert len(at_detroit) == 38 and all(detroit.handles(organization_of(i)) for i in at_detroit)


def test_jersey_citys_entries_take_only_organisations_of_its_issues(nationwide):
    jersey = load_registry().city("jersey_city").source
    detail = json.loads((SCF / "scf_v2_issue_detail_jerseycity_20980365.json").read_text())
    assert organization_of(detail) == "Sidewalk Concern" and jersey.handles(organization_of(detail))
    taken = [i for i in nationwide if jersey.handles(organization_of(i))]
    assert sorted(i["id"] for i in taken) == [17411279, 17411567, 17411578, 17411616]
    assert all("Jersey City" in i["address"] for i in taken)
    assert not any(organization_of(i) in DETROIT_ORGANIZATIONS for i in taken)


def test_a_page_is_split_by_organisation_and_an_issue_without_one_is_foreign(nationwide):
    detroit = load_registry().city("detroit")
    ours, foreign = split_foreign(detroit, nationwide)
    assert len(ours) + len(foreign) == 500
    assert {organization_of(i) for i in ours} == DETROIT_ORGANIZATIONS
    assert len(ours) == 44
    # Eight issues carry an empty request_type: no organisation, so not Detroit's.
    assert sum(1 for i in foreign if organization_of(i) is None) == 8


def test_a_page_without_request_type_is_kept_unjudged_and_only_counted(caplog):
    jersey = load_registry().city("jersey_city")
    page = load_scf_issues(SCF / "scf_v2_issues_jerseycity_page1_envelope.json")
    assert not any("request_type" in i for i in page)
    caplog.set_level(logging.DEBUG, logger="civic311.seeclickfix")
    ours, foreign = split_foreign(jersey, page)
    assert (len(ours), foreign) == (20, [])
    assert [r.getMessage() for r in caplog.records] == [
        "jersey_city: 20 issues kept unjudged: the page has no request_type, so no organisation"
    ]
