"""A search's text terms as SQL for the PostgreSQL history: ``ILIKE`` (in the "C"
collation) that trigram indexes (``pg_trgm``) serve, so a search reads only
the stored tasks that may match instead of all of them. What the SQL keeps
and why is said in :mod:`flower.store_search`.
"""
from flower.store_search import ANY_FIELD_COLUMNS, SQL, like_pattern, term_columns
from flower.store_search import search_condition as _search_condition
from flower.utils.search import Query, Term

#: Columns a trigram index covers.
SEARCHED_COLUMNS = ANY_FIELD_COLUMNS
#: Created with the schema when the pg_trgm extension can be.
TRIGRAM_INDEXES = tuple(f'CREATE INDEX IF NOT EXISTS tasks_{column}_trigrams ON tasks '
                        f'USING gin ({column} gin_trgm_ops)' for column in SEARCHED_COLUMNS)


def _term(term: Term) -> SQL | None:
    if term.field == 'state':
        return 'state = %s', [term.value]
    if term.field == 'kwargs':
        return None
    pattern = like_pattern(term.value.lower())
    if pattern is None:
        return None
    columns = term_columns(term)
    return ' OR '.join(f'{column} ILIKE %s' for column in columns), [pattern] * len(columns)


def search_condition(query: Query) -> SQL | None:
    """``(SQL, values)`` true for every stored task ``query`` matches; ``None`` when no
    condition narrows it (see :func:`flower.store_search.search_condition`)."""
    return _search_condition(query, _term)
