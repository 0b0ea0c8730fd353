"""A throwaway PostgreSQL cluster for the tests: `postgres_url` (session scope).

initdb into a temporary directory, listen only on a unix socket inside it, create a database,
yield a psycopg URL, stop and delete on teardown. initdb refuses to run as root, so as root the
server commands run as the unprivileged `postgres` user (created if missing). Missing binaries
FAIL the tests rather than skip them: `make test` installs PostgreSQL (.ci/system-deps), and a skipped backend
would silently go untested.
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile

import pytest

from serving import free_port

USER = "postgres"


def _bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for path in sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True):
        return path
    return None


@pytest.fixture(scope="session")
def postgres_url():
    initdb, pg_ctl = _bin("initdb"), _bin("pg_ctl")
    if not initdb or not pg_ctl:
        pytest.fail("PostgreSQL binaries (initdb, pg_ctl) not found on PATH or in "
                    "/usr/lib/postgresql/*/bin: install the `postgresql` package (`make test` does, .ci/system-deps)")
    pg_bin = os.path.dirname(os.path.realpath(pg_ctl))
    base = tempfile.mkdtemp(prefix="lwas-pg-")
    data, sock = os.path.join(base, "data"), base
    prefix: list[str] = []
    user = USER if os.geteuid() == 0 else None
    if user:
        if subprocess.run(["id", "-u", user], capture_output=True).returncode != 0:
            subprocess.run(["useradd", "--system", "--no-create-home", user], check=True)
        shutil.chown(base, user)
        os.chmod(base, 0o755)
        prefix = ["runuser", "-u", user, "--"]
    db_user = user or os.environ.get("USER") or "postgres"

    def run(*cmd: str) -> None:
        r = subprocess.run([*prefix, *cmd], capture_output=True, text=True)
        if r.returncode:
            pytest.fail(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")

    port = free_port()
    run(initdb, "-D", data, "-U", db_user, "-A", "trust", "-E", "UTF8", "--no-sync")
    opts = f"-c listen_addresses='' -c unix_socket_directories={sock} -p {port} -c fsync=off"
    run(pg_ctl, "-D", data, "-o", opts, "-l", os.path.join(base, "log"), "-w", "start")
    try:
        run(os.path.join(pg_bin, "createdb"), "-h", sock, "-p", str(port), "-U", db_user, "lwas")
        yield f"postgresql://{db_user}@/lwas?host={sock}&port={port}"
    finally:
        subprocess.run([*prefix, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"],
                       capture_output=True)
        shutil.rmtree(base, ignore_errors=True)
