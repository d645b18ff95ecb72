"""A real PostgreSQL server for the ledger's PostgreSQL tests, started by the test session.

One throwaway cluster per test session (``initdb`` then ``pg_ctl -w start``, stopped with
``-m immediate`` whatever happens), reachable only through a Unix socket in its own
temporary folder. Each test gets a fresh schema in it (``pg_url``), so tests cannot see
each other's missions, and creating one costs a statement rather than a database.

Debian puts the server outside PATH (``/usr/lib/postgresql/<version>/bin``), and
``initdb``/``postgres`` refuse to run as root: as root the cluster runs as the
``postgres`` user, in a folder that user owns. Missing binaries skip the tests on a
developer machine and fail them under ``CI=true``, where ``.ci/run`` installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import quote

import pytest


def server_bindir() -> str | None:
    """Folder with initdb and pg_ctl: $PG_BINDIR, PATH, or Debian's newest version."""
    candidates = [os.environ.get("PG_BINDIR", "")]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(os.path.dirname(on_path))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                         key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
                         reverse=True)
    for folder in candidates:
        if folder and all(os.access(os.path.join(folder, tool), os.X_OK)
                          for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


@dataclass
class Cluster:
    socket_dir: str
    user: str
    port: int = 5432

    def url(self, database: str = "postgres", schema: str | None = None,
            tcp: bool = False) -> str:
        """A URL for the Unix socket, or with ``tcp`` for 127.0.0.1 (if it listens there)."""
        host = "127.0.0.1" if tcp else quote(self.socket_dir)
        url = f"postgresql://{self.user}@/{database}?host={host}&port={self.port}"
        if schema:
            url += "&options=" + quote(f"-c search_path={schema}")
        return url


def _as_server_user(argv: list[str], user: str | None) -> list[str]:
    """``argv`` run as ``user``; runuser lives in sbin, which a cron-like PATH leaves out."""
    if not user:
        return argv
    runuser = shutil.which("runuser") or next(
        (path for path in ("/usr/sbin/runuser", "/sbin/runuser") if os.access(path, os.X_OK)),
        "runuser",
    )
    return [runuser, "-u", user, "--", *argv]


def require_postgres() -> str:
    bindir = server_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL server binaries not found; .ci/run installs `postgresql`")
        pytest.skip("PostgreSQL server not installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("psycopg not installed; `make setup` installs the test extra")
        pytest.skip("psycopg not installed (pip install -e '.[test]')")
    return bindir


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    """A running throwaway cluster for the whole session (see the module docstring)."""
    with running_cluster(require_postgres()) as cluster:
        yield cluster


@contextmanager
def running_cluster(bindir: str, tcp_port: int | None = None) -> Iterator[Cluster]:
    """Start a throwaway cluster, yield it, stop it whatever happens (also used by bench/).
    With ``tcp_port`` it also listens on 127.0.0.1 (the benchmark's loopback figures)."""
    server_user = "postgres" if os.geteuid() == 0 else None
    base = tempfile.mkdtemp(prefix="dk-pg-")
    os.chmod(base, 0o755)
    if server_user:
        entry = pwd.getpwnam(server_user)
        os.chown(base, entry.pw_uid, entry.pw_gid)
    data = os.path.join(base, "data")
    log = os.path.join(base, "server.log")
    db_user = server_user or pwd.getpwuid(os.geteuid()).pw_name
    pg_ctl = os.path.join(bindir, "pg_ctl")
    started = False
    try:
        subprocess.run(_as_server_user([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust",
                                        "-U", db_user, "-E", "UTF8", "--no-sync"], server_user),
                       check=True, capture_output=True)
        # A test server: durability off (the cluster is thrown away), room for 16+ racers.
        listen = f"127.0.0.1 -p {tcp_port}" if tcp_port else "''"
        options = (f"-c listen_addresses={listen} -k {base} -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        proc = subprocess.run(_as_server_user([pg_ctl, "-D", data, "-l", log, "-w", "-t", "60",
                                               "-o", options, "start"], server_user),
                              capture_output=True, text=True)
        started = True
        if proc.returncode != 0:
            detail = open(log).read()[-2000:] if os.path.exists(log) else proc.stderr
            raise RuntimeError(f"PostgreSQL did not start: {detail}")
        yield Cluster(base, db_user, tcp_port or 5432)
    finally:
        if started:
            subprocess.run(_as_server_user([pg_ctl, "-D", data, "-m", "immediate", "stop"],
                                           server_user), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


_schemas = itertools.count(1)


@pytest.fixture
def pg_url(postgres_cluster: Cluster) -> str:
    """A URL whose tables land in a schema of their own, created for this test."""
    import psycopg

    schema = f"t{os.getpid()}_{next(_schemas)}"
    with psycopg.connect(postgres_cluster.url(), autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    return postgres_cluster.url(schema=schema)
