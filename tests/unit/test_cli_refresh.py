"""`civic311 refresh` refuses days it cannot run, before it loads anything, naming the
day and the fix; `civic311 --help` and each command's help give every option's default."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from orchestration.cli import _parser, main


@pytest.mark.parametrize(
    ("days", "said"),
    [
        (["--from", "2012-01-05", "--to", "2012-01-01"], "--from 2012-01-05 is after --to 2012-01-01"),
        (["--from", "2009-12-31"], "2009-12-31 is before nyc's first partition, 2010-01-01 (its first_day"),
        (["--to", "2999-01-01"], "2999-01-01 has not ended yet (UTC): the last day to refresh is"),
    ],
)
def test_refresh_refuses_a_day_it_cannot_run(days, said, capsys):
    assert main(["refresh", "--city", "nyc", *days]) == 2
    assert said in capsys.readouterr().err


def test_refresh_starts_at_each_city_s_own_first_day(capsys):
    assert main(["refresh", "--city", "chicago", "--from", "2018-11-30"]) == 2
    assert "before chicago's first partition, 2018-12-01" in capsys.readouterr().err


def test_refresh_refuses_today_which_has_not_ended(capsys):
    today = datetime.now(UTC).date()
    assert main(["refresh", "--city", "nyc", "--from", today.isoformat()]) == 2
    assert f"the last day to refresh is {today - timedelta(days=1)}" in capsys.readouterr().err


def test_refresh_names_the_cities_of_an_unknown_one(capsys):
    assert main(["refresh", "--city", "atlantis"]) == 2
    assert "unknown city 'atlantis'" in capsys.readouterr().err


def test_every_option_says_what_it_does_and_its_default():
    parser = _parser()
    commands = parser._subparsers._group_actions[0].choices
    for name, command in [("", parser), *commands.items()]:
        for action in command._actions:
            if action.dest == "help":
                continue
            assert action.help, f"civic311 {name} {action.option_strings or action.dest} has no help"
    demo = " ".join(commands["demo"].format_help().split())
    assert "(default: 200000)" in demo and "(default: 70)" in demo and "without it, today (UTC)" in demo
    assert "--from YYYY-MM-DD" in commands["refresh"].format_help()
