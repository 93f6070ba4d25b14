"""A search's terms as SQL that narrows the stored tasks a search reads, and the
SQLite history's text index that serves it.

The SQL keeps every stored task the search matches, and maybe more: the
matcher (:class:`flower.utils.search.TaskSearchEngine`) still decides on each
row. Python compares text lower-cased with full Unicode rules, ``LIKE`` and
``ILIKE`` fold ASCII letters only; so only ASCII terms become SQL, and where a
non-ASCII character lowers to an ASCII letter (the Kelvin sign to ``k``, a
dotted capital I to ``i`` and a combining dot) the pattern takes any character
there. Terms that cannot be put this way (kwargs terms, non-ASCII text) leave
their part of the search to Python alone.

In SQLite, the text of every stored finished task's args, kwargs and result
is in an FTS5 table of trigrams, ``task_text``, that triggers keep in step
with ``tasks`` (the few unfinished tasks are read by every search, through an
index of their own); a ``LIKE`` on it with at least three characters in a row reads the
index (an ``ESCAPE`` clause would make it read every row, so ``%`` and ``_``
in a term are left as the wildcards they are: more rows, never fewer).
"""
import logging
import sqlite3
from collections.abc import Callable

from flower.utils.search import MatchAll, Or, Query, Term

#: The columns a text term of no field (``foo``) looks in.
ANY_FIELD_COLUMNS = ('args', 'kwargs', 'result')

logger = logging.getLogger(__name__)

#: SQL and its values.
SQL = tuple[str, list]

#: States after which a task's args, kwargs and result no longer change.
FINISHED_STATES = ('SUCCESS', 'FAILURE', 'REVOKED')
_FINISHED = f"state IN {FINISHED_STATES}"
#: Tasks not (yet) in the text index: their rows are read by every search.
UNFINISHED = f"(state IS NULL OR state NOT IN {FINISHED_STATES})"

#: The SQLite history's text index of finished tasks, the index of the others, and
#: the triggers that keep them; created with the tables. A task is written about
#: three times and its result comes last: indexing its text once, when it finishes,
#: costs a third of indexing it at every write. The key is ``seq``, which a task
#: keeps until it comes back into memory.
TEXT_INDEX = f"""
CREATE VIRTUAL TABLE IF NOT EXISTS task_text USING fts5(
    args, kwargs, result, content='tasks', content_rowid='seq', tokenize='trigram');
CREATE INDEX IF NOT EXISTS tasks_unfinished ON tasks (seq) WHERE {UNFINISHED};
CREATE TRIGGER IF NOT EXISTS task_text_added AFTER INSERT ON tasks
WHEN new.{_FINISHED} BEGIN
    INSERT INTO task_text (rowid, args, kwargs, result)
    VALUES (new.seq, new.args, new.kwargs, new.result);
END;
CREATE TRIGGER IF NOT EXISTS task_text_removed AFTER DELETE ON tasks
WHEN old.{_FINISHED} BEGIN
    INSERT INTO task_text (task_text, rowid, args, kwargs, result)
    VALUES ('delete', old.seq, old.args, old.kwargs, old.result);
END;
CREATE TRIGGER IF NOT EXISTS task_text_left AFTER UPDATE OF seq, args, kwargs, result, state
ON tasks WHEN old.{_FINISHED} AND (NOT new.{_FINISHED} OR old.seq IS NOT new.seq
    OR old.args IS NOT new.args OR old.kwargs IS NOT new.kwargs
    OR old.result IS NOT new.result) BEGIN
    INSERT INTO task_text (task_text, rowid, args, kwargs, result)
    VALUES ('delete', old.seq, old.args, old.kwargs, old.result);
END;
CREATE TRIGGER IF NOT EXISTS task_text_entered AFTER UPDATE OF seq, args, kwargs, result, state
ON tasks WHEN new.{_FINISHED} AND (NOT old.{_FINISHED} OR old.seq IS NOT new.seq
    OR old.args IS NOT new.args OR old.kwargs IS NOT new.kwargs
    OR old.result IS NOT new.result) BEGIN
    INSERT INTO task_text (rowid, args, kwargs, result)
    VALUES (new.seq, new.args, new.kwargs, new.result);
END;
"""
#: The fewest characters in a row a pattern needs for the trigram index to serve it.
_TRIGRAM = 3


def has_text_index(connection: sqlite3.Connection) -> bool:
    return connection.execute(
        "SELECT 1 FROM sqlite_master WHERE name = 'task_text'").fetchone() is not None


def create_text_index(connection: sqlite3.Connection) -> bool:
    """Create the text index of an SQLite history, filled from the tasks stored before
    it existed; whether there is one (an SQLite without FTS5 has none: searches then
    read every stored row)."""
    if has_text_index(connection):
        return True
    try:
        connection.executescript(TEXT_INDEX)
    except sqlite3.OperationalError as exc:
        logger.warning("Searches will read every stored task: this SQLite cannot index "
                       "text (%s)", exc)
        return False
    stored = connection.execute('SELECT count(*) FROM tasks').fetchone()[0]
    if stored:
        logger.info("Indexing the text of %d stored tasks for searches (once)", stored)
        connection.execute(f"INSERT INTO task_text (rowid, args, kwargs, result) "
                           f"SELECT seq, args, kwargs, result FROM tasks WHERE {_FINISHED}")
    return True


def like_pattern(needle: str, escape: bool = True) -> str | None:
    """A ``LIKE`` pattern that every text whose lower-cased form holds ``needle``
    (lower case) matches; ``None`` when there is none short of matching all.

    With ``escape`` (``\\`` as the escape character), ``%``, ``_`` and ``\\`` are
    escaped; without, ``%`` and ``_`` stay wildcards."""
    if not needle or not needle.isascii():
        return None
    parts = []
    for position, char in enumerate(needle):
        if char == 'k' or (char == 'i' and position == len(needle) - 1):
            parts.append('_')  # also U+212A, or U+0130 (lowered to 'i' + a combining dot)
        elif char in '%_':
            parts.append('\\' + char if escape else '_')
        elif char == '\\' and escape:
            parts.append('\\\\')
        else:
            parts.append(char)
    return '%' + ''.join(parts) + '%'


def search_condition(query: Query, term_sql: Callable[[Term], SQL | None]) -> SQL | None:
    """``(SQL, values)`` true for every stored task ``query`` matches, each term put
    by ``term_sql`` (``None``: no condition for it); ``None`` when nothing narrows it."""
    if isinstance(query, MatchAll):
        return None
    if isinstance(query, Term):
        return term_sql(query)
    parts = [search_condition(child, term_sql) for child in query.children]
    if isinstance(query, Or) and None in parts:
        return None
    kept = [part for part in parts if part is not None]
    if not kept:
        return None
    joiner = ' OR ' if isinstance(query, Or) else ' AND '
    return (joiner.join(f'({sql})' for sql, _ in kept),
            [value for _, values in kept for value in values])


def term_columns(term: Term) -> tuple[str, ...]:
    """The columns a text term looks in."""
    return ANY_FIELD_COLUMNS if term.field == 'any' else (term.field,)


def _sqlite_term(term: Term) -> SQL | None:
    if term.field == 'state':
        return 'state = ?', [term.value]
    if term.field == 'kwargs':
        return None
    pattern = like_pattern(term.value.lower(), escape=False)
    if pattern is None or all(len(run) < _TRIGRAM for run in pattern.strip('%').split('_')):
        return None
    columns = term_columns(term)
    union = ' UNION '.join(f'SELECT rowid FROM task_text WHERE {column} LIKE ?'
                           for column in columns)
    return (f'seq IN ({union} UNION '
            f'SELECT seq FROM tasks INDEXED BY tasks_unfinished WHERE {UNFINISHED})',
            [pattern] * len(columns))


def sqlite_search_condition(query: Query) -> SQL | None:
    """The SQL of :func:`search_condition` for the SQLite history."""
    return search_condition(query, _sqlite_term)
