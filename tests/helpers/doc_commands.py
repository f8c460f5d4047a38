"""Reads the commands the README and docs/ show, and checks each against what runs it.

Shell blocks (and untagged or text blocks, line by line, where a line starts with a
command we know) are read as commands, usage synopses expanded, and each checked:
`civic311` and Python scripts against the argparse parser they build, `make`
against the Makefile, `dbt` against dbt's own click CLI. Inline code that starts
with such a command is checked as a reference: its subcommands and options exist.
A command nothing here can check fails, asking for a checker, so a new kind of
command is never skipped in silence. tests/unit/test_doc_commands.py runs it.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import importlib
import importlib.util
import io
import re
import runpy
import shlex
import shutil
import sys
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from tests.helpers.data import REPO

SHELL_LANGUAGES = {"sh", "bash", "shell", "zsh", "console"}
# Blocks that hold commands or anything else: a line is a command when it starts with one we know.
LOOSE_LANGUAGES = {"", "text", "txt", "plain"}
PYTHON = re.compile(r"python(3(\.\d+)?)?")
# Tools whose own flags are not checked: it is enough that they are installed.
EXECUTABLES = {"pytest", "ruff", "git", "dagster", "uv", "ln"}
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
# A value standing for one: <city_id>, N, PATH, CITY=PATH, YYYY-MM-DD.
PLACEHOLDER = re.compile(r"<[^<>]+>|[A-Z][A-Z0-9_]*(?:[-=:/.][A-Z0-9_]+)*")
OPERATORS = {"|", "||", "&&", ";", "&"}
# `> out.csv`, `2>&1`, `< in.json` (but not a `<placeholder>`): where output goes is not the command.
REDIRECTION = re.compile(r"(?<!\S)(?:\d*>>?|&>>?)(?:&\d+|\s*[^\s|&;]+)|(?<!\S)<(?:\s+|(?!\S*>))[^\s|&;]+")
MOST_VARIANTS = 256
FENCE = re.compile(r"(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<language>[^\s`]*)")


class DocCommandError(Exception):
    """What is wrong with a command a doc shows."""


@dataclass(frozen=True)
class DocCommand:
    doc: str
    line: int
    text: str
    reference: bool = False  # inline code naming a command, not a whole invocation

    def __str__(self) -> str:
        return f"{self.doc}:{self.line}: {self.text}"


# --------------------------------------------------------------------------- reading the docs


def documents() -> list[Path]:
    """The README, everything in docs/, and the README of any top-level folder."""
    found = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md")), *sorted(REPO.glob("*/README.md"))]
    return [path for path in dict.fromkeys(found) if path.is_file() and not path.parent.name.startswith(".")]


def fenced_blocks(text: str) -> Iterator[tuple[str, int, int, list[tuple[int, str]]]]:
    """(language, first line, last line, [(line number, line)]) of each fenced block, its indent removed."""
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opener = FENCE.match(lines[index])
        if not opener:
            index += 1
            continue
        first, indent, fence = index + 1, len(opener["indent"]), opener["fence"]
        closer = re.compile(rf"[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*")
        body = []
        index += 1
        while index < len(lines) and not closer.fullmatch(lines[index]):
            line = lines[index]
            body.append((index + 1, line[indent:] if not line[:indent].strip() else line.lstrip()))
            index += 1
        yield opener["language"].lower(), first, index + 1, body
        index += 1


def strip_comment(text: str) -> str:
    """The line without a shell comment (a `#` that starts a word, outside quotes)."""
    quote = None
    for position, char in enumerate(text):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (position == 0 or text[position - 1].isspace()):
            return text[:position].rstrip()
    return text.rstrip()


def first_command_word(text: str) -> str | None:
    """The command a line runs: its first word after any `NAME=value` settings."""
    return next((word for word in text.split() if not ENV_ASSIGNMENT.match(word)), None)


def is_known_command(text: str) -> bool:
    word = first_command_word(strip_comment(text.removeprefix("$ ")))
    return word is not None and checker_for(word.removeprefix(".venv/bin/")) is not None


def block_commands(language: str, body: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    """A block's commands as (line number, text): `$ ` and comments dropped, continuations joined."""
    if language not in SHELL_LANGUAGES | LOOSE_LANGUAGES:
        return
    pending: list | None = None
    for number, line in body:
        if pending and pending[1].endswith("\\"):
            pending[1] = f"{pending[1][:-1].rstrip()} {strip_comment(line.strip())}"
            continue
        # A usage synopsis wrapped onto an indented line: `    [--fail-429 N ...]`.
        if pending and line[:1].isspace() and line.lstrip()[:1] in ("[", "{"):
            pending[1] = f"{pending[1]} {strip_comment(line.strip())}"
            continue
        if pending:
            yield pending[0], pending[1]
            pending = None
        text = line.strip()
        if language == "console" and not text.startswith("$ "):
            continue  # the command's output
        text = strip_comment(text.removeprefix("$ ").strip())
        if not text or (language in LOOSE_LANGUAGES and not is_known_command(text)):
            continue
        pending = [number, text]
    if pending:
        yield pending[0], pending[1]


def inline_commands(prose: str) -> Iterator[tuple[int, str]]:
    """Inline code spans that start with a command we know, as (line number, text)."""
    for paragraph in re.finditer(r"(?:[^\n]+\n?)+", prose):
        for span in re.finditer(r"`([^`]+)`", paragraph[0]):
            text = " ".join(span[1].split())
            if " " in text and is_known_command(text):
                yield prose.count("\n", 0, paragraph.start() + span.start()) + 1, text


def doc_commands(doc: str, text: str) -> Iterator[DocCommand]:
    lines = text.splitlines()
    for language, first, last, body in fenced_blocks(text):
        for number, command in block_commands(language, body):
            yield DocCommand(doc, number, command)
        lines[first - 1 : last] = [""] * (min(last, len(lines)) - first + 1)
    for number, command in inline_commands("\n".join(lines)):
        yield DocCommand(doc, number, command, reference=True)


def all_doc_commands() -> list[DocCommand]:
    return [
        command
        for path in documents()
        for command in doc_commands(str(path.relative_to(REPO)), path.read_text())
    ]


# --------------------------------------------------------------------------- commands and synopses


def peel(token: str) -> list[str]:
    """`[--city` -> `[`, `--city`; `C]` -> `C`, `]`: the brackets of a synopsis as their own tokens."""
    lead, trail = [], []
    while token[:1] in ("[", "{"):
        lead.append(token[0])
        token = token[1:]
    while token[-1:] in ("]", "}"):
        trail.insert(0, token[-1])
        token = token[:-1]
    return lead + ([token] if token else []) + trail


def tokens(text: str) -> list[str]:
    lexer = shlex.shlex(REDIRECTION.sub("", text), posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        return [piece for token in lexer for piece in peel(token)]
    except ValueError as error:
        raise DocCommandError(f"cannot be read as a shell command: {error}") from None


def segments(words: list[str]) -> Iterator[list[str]]:
    """The commands of a pipeline or list (`a && b | c`); a `|` inside a synopsis group is a choice."""
    depth, current = 0, []
    for word in words:
        depth += (word in ("[", "{")) - (word in ("]", "}"))
        if depth == 0 and word in OPERATORS:
            yield current
            current = []
        else:
            current.append(word)
    yield current


def synopsis(words: list[str]) -> list:
    """A usage synopsis as items: a word, or (optional, [alternatives]) for `[a | b]` and `{a|b}`."""
    position = 0

    def sequence(closer: str | None) -> list[list]:
        nonlocal position
        alternatives, items = [], []
        while position < len(words):
            word = words[position]
            position += 1
            if word in ("[", "{"):
                items.append((word == "[", sequence("]" if word == "[" else "}")))
            elif word == closer:
                return [*alternatives, items]
            elif word == "|" and closer:
                alternatives.append(items)
                items = []
            elif word in ("]", "}"):
                raise DocCommandError(f"an unmatched {word!r} in the usage synopsis")
            elif word != "...":  # repeats the part before it: once is enough to check
                items.append(word)
        if closer:
            raise DocCommandError(f"the usage synopsis never closes with {closer!r}")
        return [*alternatives, items]

    return sequence(None)[0]


def expand(items: list) -> list[list[str]]:
    """Every reading of a synopsis: each optional part left out and put in, each choice taken."""
    readings: list[list[str]] = [[]]
    for item in items:
        if isinstance(item, str):
            choices = [[item]]
        else:
            optional, alternatives = item
            readings_of_part = [reading for alternative in alternatives for reading in expand(alternative)]
            choices = ([[]] if optional else []) + readings_of_part
        readings = [reading + choice for reading in readings for choice in choices]
        if len(readings) > MOST_VARIANTS:
            raise DocCommandError(f"the usage synopsis has over {MOST_VARIANTS} readings: split it")
    return readings


def check(command: DocCommand) -> None:
    for segment in segments(tokens(command.text)):
        for reading in expand(synopsis(segment)):
            check_invocation(reading, command.reference)


def problem(command: DocCommand) -> str | None:
    try:
        check(command)
    except DocCommandError as error:
        return f"{command}\n    {error}"
    return None


def check_invocation(words: list[str], reference: bool) -> None:
    while words and ENV_ASSIGNMENT.match(words[0]):
        check_environment_variable(words.pop(0).partition("=")[0])
    if not words:
        raise DocCommandError("no command")
    name, args = words[0], words[1:]
    if name.startswith(".venv/bin/"):
        if not (REPO / name).exists():
            raise DocCommandError(f"{name} does not exist: `make env` creates it")
        name = name.removeprefix(".venv/bin/")
    checker = checker_for(name)
    if checker is None:
        raise DocCommandError(
            f"nothing checks `{name}` commands: add a checker to tests/helpers/doc_commands.py"
        )
    checker(name, args, reference)


def checker_for(name: str) -> Callable[[str, list[str], bool], None] | None:
    if name in console_scripts():
        return check_console_script
    if name == "make":
        return check_make
    if name == "dbt":
        return check_dbt
    if PYTHON.fullmatch(name):
        return check_python
    if name in EXECUTABLES:
        return check_executable
    return None


# --------------------------------------------------------------------------- checkers


def check_executable(name: str, args: list[str], reference: bool) -> None:
    if not (Path(sys.executable).with_name(name).exists() or shutil.which(name)):
        raise DocCommandError(f"`{name}` is installed neither in the venv nor on PATH")


@functools.cache
def project_text() -> str:
    """What reads the environment: the code, the Makefile, dbt's profiles and .env.example."""
    paths = [REPO / "Makefile", REPO / ".env.example", *(REPO / "dbt_project").glob("*.yml")]
    for folder in ("ingestion", "orchestration", "bench"):
        paths += (REPO / folder).rglob("*.py")
    return "\n".join(path.read_text() for path in paths if path.is_file())


def check_environment_variable(name: str) -> None:
    if not re.search(rf"\b{re.escape(name)}\b", project_text()):
        raise DocCommandError(f"nothing in the project reads the environment variable {name}")


@functools.cache
def make_targets() -> frozenset[str]:
    rule = re.compile(r"([^\s#:=][^:=#]*?)\s*::?(?!=)")
    names = {
        name
        for line in (REPO / "Makefile").read_text().splitlines()
        if (match := rule.match(line))
        for name in match[1].split()
    }
    return frozenset(name for name in names if "$(" not in name and not name.startswith("."))


def check_make(name: str, args: list[str], reference: bool) -> None:
    for arg in args:
        if ENV_ASSIGNMENT.match(arg):
            variable = arg.partition("=")[0]
            if not re.search(rf"\b{re.escape(variable)}\b", (REPO / "Makefile").read_text()):
                raise DocCommandError(f"the Makefile has no variable {variable}")
        elif arg.startswith("-"):
            raise DocCommandError(f"`make {arg}`: nothing checks make's flags, add a checker")
        elif arg not in make_targets():
            targets = ", ".join(sorted(make_targets()))
            raise DocCommandError(f"the Makefile has no target {arg!r} (it has {targets})")


class _Parsed(Exception):
    def __init__(self, parser: argparse.ArgumentParser):
        self.parser = parser


def captured_parser(run: Callable[[], object], program: str) -> argparse.ArgumentParser:
    """The argparse parser `run` builds, taken from it as it parses: the program does no work.

    It is run as `program --help`, so one that parses some other way prints usage and exits.
    """

    def intercept(self, *args, **kwargs):
        raise _Parsed(self)

    with (
        mock.patch.object(argparse.ArgumentParser, "parse_args", intercept),
        mock.patch.object(argparse.ArgumentParser, "parse_known_args", intercept),
        mock.patch.object(sys, "argv", [program, "--help"]),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        try:
            run()
        except _Parsed as parsed:
            return tolerant(parsed.parser)
        except SystemExit:
            pass
    raise DocCommandError(f"{program} does not parse its arguments with argparse: add a checker for it")


def subparsers(parser: argparse.ArgumentParser) -> Iterator[argparse.ArgumentParser]:
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in {id(p): p for p in action.choices.values()}.values():
                yield from subparsers(child)


def tolerant(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The parser, raising instead of exiting, taking placeholders as values, and refusing
    abbreviated options (a doc names an option in full)."""
    for each in subparsers(parser):

        def refuse(message: str, prog: str = each.prog):
            raise DocCommandError(f"{prog}: {message}")

        def get_value(action, value, original=each._get_value):
            placeholder = PLACEHOLDER.fullmatch(value) and not isinstance(action, argparse._SubParsersAction)
            return value if placeholder else original(action, value)

        def check_value(action, value, original=each._check_value):
            placeholder = isinstance(value, str) and PLACEHOLDER.fullmatch(value)
            if not placeholder or isinstance(action, argparse._SubParsersAction):
                original(action, value)

        each.error, each._get_value, each._check_value = refuse, get_value, check_value
        each.allow_abbrev = False
    return parser


def check_argparse(parser: argparse.ArgumentParser, args: list[str], reference: bool) -> None:
    if reference:
        check_names(parser, args)
        return
    output = io.StringIO()
    try:
        with contextlib.redirect_stdout(output), contextlib.redirect_stderr(output):
            parser.parse_args(args)
    except SystemExit as exit:  # --help and --version print and exit 0
        if exit.code not in (0, None):
            raise DocCommandError(f"{parser.prog} exits {exit.code}: {output.getvalue().strip()}") from None


def arity(action: argparse.Action) -> tuple[int, float]:
    return {None: (1, 1), "?": (0, 1), "*": (0, float("inf")), "+": (1, float("inf"))}.get(
        action.nargs, (action.nargs, action.nargs)
    )


def check_names(parser: argparse.ArgumentParser, args: list[str]) -> None:
    """A command named in prose: its subcommands and options exist, each option with its values."""
    positionals = [action for action in parser._actions if not action.option_strings]
    index = 0
    while index < len(args):
        arg = args[index]
        index += 1
        if arg.startswith("-") and arg != "-":
            name, inline_value, _ = arg.partition("=")
            action = parser._option_string_actions.get(name)
            if action is None:
                raise DocCommandError(f"{parser.prog} has no option {name}")
            least, most = arity(action)
            if inline_value and most == 0:
                raise DocCommandError(f"{parser.prog} {name} takes no value")
            values = 1 if inline_value else 0
            while values < most and index < len(args) and not args[index].startswith("-"):
                values, index = values + 1, index + 1
            if values < least and index < len(args):
                raise DocCommandError(f"{parser.prog} {name} needs {least} value(s)")
        elif not positionals:
            raise DocCommandError(f"{parser.prog} takes no argument {arg!r}")
        elif isinstance(positionals[0], argparse._SubParsersAction):
            commands = positionals[0].choices
            if arg not in commands:
                raise DocCommandError(f"{parser.prog} has no command {arg!r} (it has {', '.join(commands)})")
            check_names(commands[arg], args[index:])
            return
        elif positionals[0].nargs not in ("*", "+"):
            positionals.pop(0)


@functools.cache
def console_scripts() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return project.get("scripts", {})


@functools.cache
def console_script_parser(name: str) -> argparse.ArgumentParser:
    module, _, function = console_scripts()[name].partition(":")
    return captured_parser(getattr(importlib.import_module(module), function), name)


def check_console_script(name: str, args: list[str], reference: bool) -> None:
    check_executable(name, args, reference)
    check_argparse(console_script_parser(name), args, reference)


@functools.cache
def script_parser(path: str) -> argparse.ArgumentParser:
    if "argparse" not in (REPO / path).read_text():
        raise DocCommandError(f"{path} does not use argparse: add a checker for it")
    return captured_parser(lambda: runpy.run_path(str(REPO / path), run_name="__main__"), path)


@functools.cache
def module_parser(module: str) -> argparse.ArgumentParser:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise DocCommandError(f"no module {module} is installed")
    if "argparse" not in Path(spec.origin).read_text():
        raise DocCommandError(f"{module} does not use argparse: add a checker for it")
    return captured_parser(lambda: runpy.run_module(module, run_name="__main__", alter_sys=True), module)


def check_python(name: str, args: list[str], reference: bool) -> None:
    check_executable(name, args, reference)
    if not args and reference:
        return
    if args[:1] == ["-m"] and len(args) > 1:
        if args[1] in EXECUTABLES:
            if importlib.util.find_spec(args[1]) is None:
                raise DocCommandError(f"no module {args[1]} is installed")
            return
        check_argparse(module_parser(args[1]), args[2:], reference)
    elif not args or args[0].startswith("-"):
        raise DocCommandError(f"`{name} {' '.join(args)}`: nothing checks it, add a checker")
    elif not (REPO / args[0]).is_file():
        raise DocCommandError(f"no script {args[0]} in the repository")
    else:
        check_argparse(script_parser(args[0]), args[1:], reference)


@functools.cache
def dbt_nodes() -> frozenset[str]:
    """The names `--select` can take: models, seeds, snapshots, singular tests, analyses."""
    project = REPO / "dbt_project"
    names = {path.stem for path in project.rglob("*") if path.suffix in (".sql", ".py", ".csv")}
    for path in (project / "snapshots").rglob("*.sql"):
        names.update(re.findall(r"\{%-?\s*snapshot\s+(\w+)", path.read_text()))
    return frozenset(names)


def flatten(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list | tuple):
        for item in value:
            yield from flatten(item)


def check_dbt_selectors(options: dict) -> None:
    for value in flatten([options.get("select", ()), options.get("exclude", ())]):
        for part in value.split(","):
            name = re.sub(r"\+\d*$", "", re.sub(r"^(?:\d*\+|@)", "", part))
            if ":" in name or re.search(r"[*?/\[]", name) or PLACEHOLDER.fullmatch(name):
                continue  # a method (path:, tag:, source:), a glob or a placeholder
            if name not in dbt_nodes():
                raise DocCommandError(f"dbt_project/ has no model, seed, snapshot or test named {name!r}")


def check_dbt(name: str, args: list[str], reference: bool) -> None:
    import click
    from dbt.cli.main import cli

    check_executable(name, args, reference)
    command, words, prog = cli, list(args), "dbt"
    while True:
        try:
            options, rest, _ = command.make_parser(click.Context(command, info_name=prog)).parse_args(words)
        except click.UsageError as error:
            raise DocCommandError(f"{prog}: {error.format_message()}") from None
        if not isinstance(command, click.Group):
            if rest and not any(isinstance(param, click.Argument) for param in command.params):
                raise DocCommandError(f"{prog} takes no argument {rest[0]!r}")
            check_dbt_selectors(options)
            return
        if not rest:
            return  # `dbt --version`
        sub = command.commands.get(rest[0])
        if sub is None:
            raise DocCommandError(f"{prog} has no command {rest[0]!r} (it has {', '.join(command.commands)})")
        command, words, prog = sub, rest[1:], f"{prog} {rest[0]}"
