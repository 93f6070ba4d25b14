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


def check_postgres(url: str, timeout: int = 2) -> None:
    """Connect once, check the schema version the database holds and hang up;
    :class:`StoreUnavailable` saying why otherwise."""
    psycopg = postgres_driver()
    from flower.store_postgres_schema import SchemaTooNew, check_schema_version, schema_version
    try:
        with psycopg.connect(url, connect_timeout=timeout) as connection:
            check_schema_version(schema_version(connection))
    except psycopg.Error as exc:
        reason = ' '.join(str(exc).split()) or type(exc).__name__
        raise StoreUnavailable(f"cannot reach PostgreSQL at {describe_db(url)}: "
                               f"{mask_text(reason)}") from None
    except SchemaTooNew as exc:
        raise StoreUnavailable(f"the database at {describe_db(url)} cannot be used: "
                               f"{exc}") from None


def open_store(db: str) -> Any:
    """The store of the history ``db``: a PostgresTaskStore or a TaskStore."""
    if not is_postgres_url(db):
        return TaskStore(prepare_history(db))
    postgres_driver()
    from flower.store_postgres import PostgresTaskStore
    return PostgresTaskStore(db)
