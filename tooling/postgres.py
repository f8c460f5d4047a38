"""A local PostgreSQL cluster for Dagster's instance storage, on 127.0.0.1 only.

`civic311 dev --postgres` and `civic311 postgres start|stop` use it, and so does
tests/integration/test_postgres_instance.py. Debian's PostgreSQL binaries (`initdb`,
`pg_ctl`) create the cluster in a folder of the caller's on first use. Every connection,
local ones included, authenticates with a password (scram-sha-256): the one in
CIVIC311_PG_PASSWORD when the cluster was created, handed to `initdb` in a private
temporary file and never written anywhere else. PostgreSQL refuses to run as root: as
root, the cluster belongs to the `postgres` system user that Debian's package creates.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from ingestion.redact import RedactedError

# The connection settings, read from the environment only; orchestration/dagster_postgres.yaml
# names the same variables. Everything but the password has a default for the local cluster.
HOST_ENV = "CIVIC311_PG_HOST"
PORT_ENV = "CIVIC311_PG_PORT"
USER_ENV = "CIVIC311_PG_USER"
PASSWORD_ENV = "CIVIC311_PG_PASSWORD"  # noqa: S105 - the variable's name, not a password
DATABASE_ENV = "CIVIC311_PG_DB"
LOCAL_HOST = "127.0.0.1"
DEFAULT_PORT = 54311
DEFAULT_USER = "civic311"
DEFAULT_DATABASE = "dagster"
# Who owns the cluster when we run as root.
SERVER_USER = "postgres"
POSTGRES_ROOT = Path("/usr/lib/postgresql")
ORCHESTRATION = Path(__file__).resolve().parents[1] / "orchestration"


class PostgresError(RedactedError):
    """The local cluster could not be created, started or reached; says why and what to do."""


@dataclass(frozen=True)
class Settings:
    """Where Dagster's instance database is, and who connects to it."""

    port: int
    user: str
    password: str
    database: str
    host: str = LOCAL_HOST

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, password_required: bool = True) -> Settings:
        """The local cluster's settings: CIVIC311_PG_PORT, _USER and _DB or their defaults,
        the password from CIVIC311_PG_PASSWORD (there is no default password; stopping
        the cluster needs none)."""
        environ = os.environ if environ is None else environ
        password = environ.get(PASSWORD_ENV, "")
        if not password and password_required:
            raise PostgresError(
                f"set {PASSWORD_ENV}: the local PostgreSQL cluster is created with that password "
                "and Dagster connects with it (it is read from the environment only)"
            )
        port = environ.get(PORT_ENV) or str(DEFAULT_PORT)
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise PostgresError(f"{PORT_ENV}={port!r} is not a TCP port")
        return cls(
            port=int(port),
            user=environ.get(USER_ENV) or DEFAULT_USER,
            password=password,
            database=environ.get(DATABASE_ENV) or DEFAULT_DATABASE,
        )

    def environment(self) -> dict[str, str]:
        """The variables orchestration/dagster_postgres.yaml reads, for a Dagster process."""
        return {
            HOST_ENV: self.host,
            PORT_ENV: str(self.port),
            USER_ENV: self.user,
            PASSWORD_ENV: self.password,
            DATABASE_ENV: self.database,
        }

    def connect(self, database: str | None = None):
        """A psycopg2 connection (the driver dagster-postgres uses), the password passed
        as a parameter, never in a URL."""
        import psycopg2

        return psycopg2.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname=database or self.database,
            connect_timeout=10,
        )


def server_binaries() -> Path:
    """The folder holding Debian's `initdb` and `pg_ctl` (newest major version first);
    they are not on PATH in Debian's layout."""
    versions = sorted(
        (path.parent for path in POSTGRES_ROOT.glob("*/bin/pg_ctl")),
        key=lambda folder: int(folder.parent.name) if folder.parent.name.isdigit() else 0,
        reverse=True,
    )
    if versions:
        return versions[0]
    on_path = shutil.which("pg_ctl")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresError(
        "no PostgreSQL server binaries (initdb, pg_ctl): install Debian's package "
        "(`apt-get install postgresql`)"
    )


def write_instance_settings(home: Path) -> Path:
    """`home`/dagster.yaml: the project's instance settings (orchestration/dagster.yaml)
    with PostgreSQL storage (orchestration/dagster_postgres.yaml), whose connection
    fields Dagster reads from the environment."""
    home.mkdir(parents=True, exist_ok=True)
    settings = home / "dagster.yaml"
    base = (ORCHESTRATION / "dagster.yaml").read_text()
    storage = (ORCHESTRATION / "dagster_postgres.yaml").read_text()
    settings.write_text(f"{base.rstrip()}\n\n{storage}")
    return settings


class LocalCluster:
    """A PostgreSQL cluster in `folder`: the data in `cluster/`, the server's log in
    `postgres.log`. Listens on 127.0.0.1 at the settings' port, TCP only."""

    def __init__(self, folder: Path, settings: Settings):
        self.folder = Path(folder).resolve()
        self.settings = settings
        self.data = self.folder / "cluster"
        self.log = self.folder / "postgres.log"
        self.binaries = server_binaries()

    def start(self) -> bool:
        """Create the cluster on first use, start it, and create the database Dagster uses.
        False when it was running already (the caller then leaves it running)."""
        if self.running():
            self._create_database()
            return False
        self._prepare_folder()
        if not (self.data / "PG_VERSION").exists():
            self._initdb()
        options = f"-c listen_addresses={LOCAL_HOST} -p {self.settings.port} -c unix_socket_directories=''"
        started = self._server_command(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )
        if started.returncode != 0:
            raise PostgresError(
                f"PostgreSQL did not start on {LOCAL_HOST}:{self.settings.port} (a port in use?):\n"
                f"{started.stdout}{started.stderr}{self._log_tail()}"
            )
        self._create_database()
        return True

    def stop(self) -> bool:
        """Stop the server (fast: open sessions are ended); False when it was not running."""
        if not self.running():
            return False
        stopped = self._server_command("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")
        if stopped.returncode != 0:
            raise PostgresError(f"PostgreSQL did not stop:\n{stopped.stdout}{stopped.stderr}")
        return True

    def running(self) -> bool:
        if not (self.data / "PG_VERSION").exists():
            return False
        # pg_ctl status: 0 running, 3 not running, 4 no readable data folder.
        return self._server_command("pg_ctl", "-D", str(self.data), "status").returncode == 0

    def describe(self) -> str:
        s = self.settings
        return (
            f"PostgreSQL on {s.host}:{s.port}, database {s.database}, user {s.user} "
            f"(password from {PASSWORD_ENV}); data in {self.data}, log in {self.log}"
        )

    def _server_user(self) -> pwd.struct_passwd | None:
        """The user the server runs as when we are root; None when we are not."""
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam(SERVER_USER)
        except KeyError:
            raise PostgresError(
                f"PostgreSQL does not run as root, and there is no {SERVER_USER!r} user to run it as "
                "(Debian's postgresql package creates one)"
            ) from None

    def _prepare_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self.log.touch()
        owner = self._server_user()
        if owner is None:
            return
        for path in (self.folder, self.log):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        if self._server_command(shutil.which("test") or "/usr/bin/test", "-w", str(self.folder)).returncode:
            raise PostgresError(
                f"{self.folder}: the {SERVER_USER} user cannot reach this folder (one of its parents "
                "is private to root); choose a folder under /tmp or the repository"
            )

    def _initdb(self) -> None:
        owner = self._server_user()
        with tempfile.NamedTemporaryFile("w", dir=self.folder, prefix=".pwfile-") as pwfile:
            pwfile.write(self.settings.password)
            pwfile.flush()
            if owner is not None:
                os.chown(pwfile.name, owner.pw_uid, owner.pw_gid)
            created = self._server_command(
                "initdb",
                "-D",
                str(self.data),
                "--username",
                self.settings.user,
                f"--pwfile={pwfile.name}",
                "--auth=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C.UTF-8",
            )
        if created.returncode != 0:
            raise PostgresError(f"initdb failed:\n{created.stdout}{created.stderr}")

    def _create_database(self) -> None:
        import psycopg2
        from psycopg2 import sql

        try:
            with closing(self.settings.connect("postgres")) as connection:
                connection.autocommit = True
                with connection.cursor() as cursor:
                    cursor.execute("select 1 from pg_database where datname = %s", [self.settings.database])
                    if cursor.fetchone() is None:
                        cursor.execute(
                            sql.SQL("create database {}").format(sql.Identifier(self.settings.database))
                        )
        except psycopg2.OperationalError as exc:
            raise PostgresError(
                f"cannot connect to the cluster in {self.data} as {self.settings.user} ({str(exc).strip()}); "
                f"{PASSWORD_ENV} must hold the password the cluster was created with"
            ) from None

    def _server_command(self, program: str, *args: str) -> subprocess.CompletedProcess:
        """Run a server program (by name, or a path) as the server user when we are root."""
        owner = self._server_user()
        return subprocess.run(  # noqa: S603 - fixed programs, arguments we build
            [str(self.binaries / program), *args],
            capture_output=True,
            text=True,
            cwd="/",
            user=owner.pw_uid if owner else None,
            group=owner.pw_gid if owner else None,
            extra_groups=[] if owner else None,
            check=False,
        )

    def _log_tail(self, lines: int = 20) -> str:
        if not self.log.is_file():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
