"""Migrate the metadata database and/or set up the admin user in one Airflow
process (tasks/database_setup.yml): a CLI process each would import Airflow
and load its configuration twice (~2 s of CPU on a fresh host's critical
path).

  python -c "$(cat database_setup.py)" MIGRATE [USERNAME EMAIL FIRSTNAME LASTNAME]

MIGRATE is 1 to run `airflow db migrate`, 0 not to; with the admin's names,
`airflow users create` (role Admin) runs, and `airflow users reset-password`
when the user exists already (a changed password applies). The password
comes on stdin, never on a command line. After each part has succeeded it
prints "airflow-setup: migrated" or "airflow-setup: admin set up" (the caller
then writes that part's marker). A failure prints its traceback, then
"airflow-setup: failed: ..." lines: the error and each error that caused it
(e.g. the database's unique-constraint message), and exits 1.
"""

from __future__ import annotations

import contextlib
import io
import sys
import traceback

from airflow.cli import cli_parser


def airflow(*argv: str) -> str:
    """Run one `airflow` CLI command in this process; return what it printed."""
    args = cli_parser.get_parser().parse_args(list(argv))
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            args.func(args)
    finally:
        sys.stdout.write(printed.getvalue())
        sys.stdout.flush()
    return printed.getvalue()


def main(argv: list[str]) -> None:
    if argv[0] == "1":
        airflow("db", "migrate")
        print("airflow-setup: migrated", flush=True)
    if len(argv) > 1:
        username, email, firstname, lastname = argv[1:5]
        password = sys.stdin.readline().rstrip("\n")
        # --option=value: a value that starts with "-" is not taken for an option
        said = airflow("users", "create", "--role=Admin", f"--username={username}", f"--email={email}",
                       f"--firstname={firstname}", f"--lastname={lastname}", f"--password={password}")
        if "already exist" in said:
            airflow("users", "reset-password", f"--username={username}", f"--password={password}")
            print("password set")
        else:
            print("user created")
        print("airflow-setup: admin set up", flush=True)


def report(exc: BaseException) -> None:
    """The traceback, then the error and its causes, the first lines of each."""
    traceback.print_exc(file=sys.stdout)
    for _ in range(5):  # a chain, never a cycle, but bounded anyway
        if exc is None:
            break
        said = str(exc.code if isinstance(exc, SystemExit) else exc).strip().splitlines()[:2]
        print(f"airflow-setup: failed: {type(exc).__name__}: {' '.join(said)}")
        exc = exc.__cause__ or exc.__context__


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except SystemExit as exc:
        if exc.code not in (None, 0):
            report(exc)
        raise
    except Exception as exc:  # noqa: BLE001 - everything is reported, then exit 1
        report(exc)
        sys.exit(1)
