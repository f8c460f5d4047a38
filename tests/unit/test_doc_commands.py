"""Every command the README and docs/ show is one the tree accepts (issue 14, house
style 11): tests/helpers/doc_commands.py reads and checks them; the cases below show it
reports a wrong command, naming the doc, the line and what is wrong."""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.data import REPO
from tests.helpers.doc_commands import (
    DocCommand,
    DocCommandError,
    all_doc_commands,
    check,
    console_script_parser,
    doc_commands,
    expand,
    problem,
    synopsis,
    tokens,
)

DOC_COMMANDS = all_doc_commands()


@pytest.mark.parametrize("command", DOC_COMMANDS, ids=str)
def test_the_docs_show_commands_that_run(command: DocCommand):
    if message := problem(command):
        pytest.fail(message, pytrace=False)


def test_the_readme_two_commands_are_read():
    readme = {command.text for command in DOC_COMMANDS if command.doc == "README.md"}
    assert {"make demo", "make test"} <= readme, readme


def test_the_installed_civic311_runs_help_offline():
    civic311 = Path(sys.executable).with_name("civic311")
    result = subprocess.run([civic311, "--help"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0, result.stderr
    parser = console_script_parser("civic311")
    (commands,) = (a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert [command for command in commands if command not in result.stdout] == [], result.stdout


# --------------------------------------------------------------------------- the checker itself


SAMPLE = """\
# A doc

```sh
$ make demo   # the demo
CIVIC311_REPLAY_URL=http://127.0.0.1:8311 \\
  make dev
civic311 replay --serve CITY=PATH [--serve CITY=PATH ...]
                [--port 8311]
```

```sql
select 1 -- civic311 demo
```

```
civic311 quarantine
unmapped service type: city_id=x
```

  ```console
  $ civic311 quarantine --help
  usage: civic311 quarantine [-h] [--city CITY]
  ```

Load with `civic311 load --city nyc
--from-file PATH`; `civic311` alone is a name.
"""


def test_commands_are_read_from_blocks_and_inline_code():
    assert [(c.line, c.text, c.reference) for c in doc_commands("doc.md", SAMPLE)] == [
        (4, "make demo", False),
        (5, "CIVIC311_REPLAY_URL=http://127.0.0.1:8311 make dev", False),
        (7, "civic311 replay --serve CITY=PATH [--serve CITY=PATH ...] [--port 8311]", False),
        (16, "civic311 quarantine", False),
        (21, "civic311 quarantine --help", False),
        (25, "civic311 load --city nyc --from-file PATH", True),
    ]
    assert not [problem(c) for c in doc_commands("doc.md", SAMPLE) if problem(c)]


def test_a_synopsis_is_read_every_way():
    assert expand(synopsis(tokens("civic311 dev [--port 3000]"))) == [
        ["civic311", "dev"],
        ["civic311", "dev", "--port", "3000"],
    ]
    assert expand(synopsis(tokens("civic311 taxonomy unmapped [--city C] {--csv|--json}"))) == [
        ["civic311", "taxonomy", "unmapped", "--csv"],
        ["civic311", "taxonomy", "unmapped", "--json"],
        ["civic311", "taxonomy", "unmapped", "--city", "C", "--csv"],
        ["civic311", "taxonomy", "unmapped", "--city", "C", "--json"],
    ]


def test_the_old_replay_flags_are_reported_with_file_and_line():
    doc = "```bash\ncivic311 replay --city chicago --file path/to/records.json  # at /chicago\n```\n"
    (command,) = doc_commands("docs/adding-a-city.md", doc)
    assert problem(command) == (
        "docs/adding-a-city.md:2: civic311 replay --city chicago --file path/to/records.json\n"
        "    civic311: unrecognized arguments: --city chicago --file path/to/records.json"
    )


@pytest.mark.parametrize(
    "text",
    [
        "civic311 --help",
        "civic311 quarantine --help",
        "civic311 quarantine --city CITY > counts.txt 2>&1",
        "civic311 load --city <city_id> --from-file path/to/export.csv",
        "civic311 demo --end YYYY-MM-DD",
        "make test && ruff check .",
        "dbt --version",
        "dbt docs generate",
        "dbt build --select +mart_hotspots,tag:daily --exclude path:models/staging",
        ".venv/bin/python bench/spatial.py --points 1000 5000 --threads 2",
        "python -m pytest tests/unit -q",
    ],
)
def test_a_right_command_is_accepted(text):
    check(DocCommand("doc.md", 1, text))


@pytest.mark.parametrize(
    ("text", "reported"),
    [
        ("civic311 frobnicate", "invalid choice: 'frobnicate'"),
        ("civic311 dev --port", "--port: expected one argument"),
        ("civic311 demo --req 5", "unrecognized arguments: --req 5"),  # no abbreviations
        ("civic311 load --from-file x.csv", "the following arguments are required: --city"),
        ("civic311 demo [--requests N --nonsense]", "unrecognized arguments: --nonsense"),
        ("civic311 quarantine {--city C|--town T}", "unrecognized arguments: --town T"),
        ("civic311 replay --serve CITY=PATH [--port]", "--port: expected one argument"),
        ("civic311 demo --end yesterday", "invalid fromisoformat value: 'yesterday'"),
        ("civic311 dev [--port 3000", "never closes"),
        ("make deploy", "the Makefile has no target 'deploy'"),
        ("make demo FLAVOUR=x", "the Makefile has no variable FLAVOUR"),
        ("CIVIC311_NO_SUCH_SETTING=1 make dev", "reads the environment variable CIVIC311_NO_SUCH_SETTING"),
        ("dbt build --no-such-flag", "No such option"),
        ("dbt deploy", "dbt has no command 'deploy'"),
        ("dbt build --select", "requires an argument"),
        ("dbt build --select stg_atlantis__service_requests+", "named 'stg_atlantis__service_requests'"),
        (".venv/bin/python bench/ingest.py --skip-socrata 3", "unrecognized arguments: 3"),
        ("python bench/missing.py", "no script bench/missing.py"),
        ("python -c 'print(1)'", "add a checker"),
        ("make test && frobnicate --all", "nothing checks `frobnicate` commands"),
        ("ruff check . | no-such-pager", "nothing checks `no-such-pager` commands"),
    ],
)
def test_a_wrong_command_is_reported(text, reported):
    with pytest.raises(DocCommandError, match=re.escape(reported)):
        check(DocCommand("doc.md", 1, text))


@pytest.mark.parametrize(
    ("text", "reported"),
    [
        ("civic311 load --form-file", "civic311 load has no option --form-file"),
        ("civic311 taxonomies", "civic311 has no command 'taxonomies'"),
        ("civic311 quarantine [--town T]", "civic311 quarantine has no option --town"),
        ("civic311 dev --port=x --port", None),
        ("civic311 demo --seed S extra", "civic311 demo takes no argument 'extra'"),
    ],
)
def test_a_command_named_in_prose_is_checked_by_its_names(text, reported):
    if reported is None:
        check(DocCommand("doc.md", 1, text, reference=True))
    else:
        with pytest.raises(DocCommandError, match=re.escape(reported)):
            check(DocCommand("doc.md", 1, text, reference=True))
