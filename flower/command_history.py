"""The command's checks of the ``--persistent`` history options, made before Flower
starts so that a wrong ``--db`` is one line on stderr rather than a traceback."""
import os
from typing import Any

from flower.flower_db_import import check_shelve, history_file
from flower.history_file import NotAHistory, check_history_path
from flower.store_open import StoreUnavailable, check_postgres, describe_db, is_postgres_url
from flower.utils import abs_path


def check_history_options(options: Any) -> None:
    """Refuse history options that cannot work (``ValueError`` naming the option).

    A PostgreSQL URL in ``--db`` turns ``--persistent`` on and is reached once here.
    """
    for name in ('state_save_interval', 'db_max_tasks', 'db_max_age'):
        if getattr(options, name) < 0:
            raise ValueError(f"--{name}: must be 0 or more, not {getattr(options, name)}")
    if options.replica_poll_interval <= 0:
        raise ValueError(f"--replica_poll_interval: must be more than 0 milliseconds, not "
                         f"{options.replica_poll_interval}")
    if is_postgres_url(options.db):
        options.persistent = True
        try:
            check_postgres(options.db)
        except StoreUnavailable as exc:
            raise ValueError(f"--db: {exc}") from None
        return
    if not options.persistent:
        return
    if not options.db:
        raise ValueError("--db: --persistent needs the path of the history file")
    directory = os.path.dirname(abs_path(options.db))
    if not os.path.isdir(directory):
        raise ValueError(f"--db: directory {directory} does not exist")
    if not os.access(directory, os.W_OK):
        raise ValueError(f"--db: directory {directory} is not writable")
    try:
        check_shelve(abs_path(options.db))
        check_history_path(history_file(abs_path(options.db)))
    except NotAHistory as exc:
        raise ValueError(f"--db: {exc}; give --db the path of a history file") from None


def history_location(db: str) -> str:
    """Where the history is, as the start-up lines say it (a URL's password masked)."""
    return describe_db(db) if is_postgres_url(db) else history_file(abs_path(db))
