"""Which store keeps the ``--persistent`` history: a ``postgresql://`` (or
``postgres://``) URL in ``--db`` opens a PostgreSQL database, anything else
the SQLite file it names, as it always did.

psycopg is an optional dependency (``pip install 'flower[postgresql]'``): it
is imported only when a PostgreSQL URL is given.
"""
from typing import Any

from flower.flower_db_import import prepare_history
from flower.store import TaskStore
from flower.utils.masking import mask_text

POSTGRES_SCHEMES = ('postgresql://', 'postgres://')
INSTALL_HINT = "pip install 'flower[postgresql]'"


class StoreUnavailable(Exception):
    """The history's database cannot be used: no driver, or not reachable."""


def is_postgres_url(db: str) -> bool:
    return db.lower().startswith(POSTGRES_SCHEMES)


def describe_db(db: str) -> str:
    """``db`` as logs and pages may show it: a URL's password masked."""
    return mask_text(db) if is_postgres_url(db) else db


def postgres_driver() -> Any:
    """The psycopg module; :class:`StoreUnavailable` saying how to install it if missing."""
    try:
        import psycopg
        import psycopg_pool  # noqa: F401  (the store needs both)
    except ImportError:
        raise StoreUnavailable(f"PostgreSQL needs psycopg 3 and psycopg-pool: "
                               f"{INSTALL_HINT}") from None
    return psycopg


def _one_line(error: Exception) -> str:
    return mask_text(' '.join(str(error).split()) or type(error).__name__)


def check_postgres(url: str, timeout: int = 2) -> None:
    """Connect once, create or check the history's tables and hang up;
    :class:`StoreUnavailable` saying why otherwise (unreachable, a schema newer than
    this code, no right to create the tables...)."""
    psycopg = postgres_driver()
    from flower.store_postgres_schema import SchemaTooNew, create_schema
    try:
        connection = psycopg.connect(url, connect_timeout=timeout)
    except psycopg.Error as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {describe_db(url)}: "
                               f"{_one_line(exc)}") from None
    try:
        with connection:
            create_schema(connection)
    except (psycopg.Error, SchemaTooNew) as exc:
        raise StoreUnavailable(f"the database at {describe_db(url)} cannot be used: "
                               f"{_one_line(exc)}") from None


def open_store(db: str) -> Any:
    """The store of the history ``db``: a PostgresTaskStore or a TaskStore."""
    if not is_postgres_url(db):
        return TaskStore(prepare_history(db))
    postgres_driver()
    from flower.store_postgres import PostgresTaskStore
    return PostgresTaskStore(db)
