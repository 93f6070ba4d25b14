"""A search's text terms as SQL for the PostgreSQL history: a prefilter that
trigram indexes (``pg_trgm``) serve, so a search reads only the stored tasks
that may match instead of all of them.

The prefilter keeps every task the search matches, and maybe more: the
matcher (:class:`flower.utils.search.TaskSearchEngine`) still decides on
each row it keeps. Python compares text lower-cased with full Unicode rules,
``ILIKE`` in the "C" collation folds ASCII letters only; so only ASCII terms
become SQL, and where a non-ASCII character lowers to an ASCII letter (the
Kelvin sign to ``k``, a dotted capital I to ``i`` and a combining dot) the
pattern takes any character there. Terms that cannot be put this way (kwargs
terms, non-ASCII text) leave their part of the search to Python alone.
"""
from flower.utils.search import MatchAll, Or, Query, Term

#: The columns a text term of no field (``foo``) looks in.
ANY_FIELD_COLUMNS = ('args', 'kwargs', 'result')
#: Columns a trigram index covers.
SEARCHED_COLUMNS = ANY_FIELD_COLUMNS
#: Created with the schema when the pg_trgm extension can be.
TRIGRAM_INDEXES = tuple(f'CREATE INDEX IF NOT EXISTS tasks_{column}_trigrams ON tasks '
                        f'USING gin ({column} gin_trgm_ops)' for column in SEARCHED_COLUMNS)

_SQL = tuple[str, list]


def like_pattern(needle: str) -> str | None:
    """An ``ILIKE`` pattern that every text whose lower-cased form holds ``needle``
    (lower case) matches; ``None`` when there is none short of matching all."""
    if not needle or not needle.isascii():
        return None
    parts = []
    for position, char in enumerate(needle):
        if char == 'k' or (char == 'i' and position == len(needle) - 1):
            parts.append('_')  # also U+212A, or U+0130 (lowered to 'i' + a combining dot)
        elif char in '\\%_':
            parts.append('\\' + char)
        else:
            parts.append(char)
    return '%' + ''.join(parts) + '%'


def _term(term: Term) -> _SQL | None:
    if term.field == 'state':
        return 'state = %s', [term.value]
    if term.field == 'kwargs':
        return None
    pattern = like_pattern(term.value.lower())
    if pattern is None:
        return None
    columns = ANY_FIELD_COLUMNS if term.field == 'any' else (term.field,)
    return ' OR '.join(f'{column} ILIKE %s' for column in columns), [pattern] * len(columns)


def search_condition(query: Query) -> _SQL | None:
    """``(SQL, values)`` true for every stored task ``query`` matches; ``None`` when no
    condition narrows it."""
    if isinstance(query, MatchAll):
        return None
    if isinstance(query, Term):
        return _term(query)
    parts = [search_condition(child) for child in query.children]
    if isinstance(query, Or) and None in parts:
        return None
    kept = [part for part in parts if part is not None]
    if not kept:
        return None
    joiner = ' OR ' if isinstance(query, Or) else ' AND '
    return (joiner.join(f'({sql})' for sql, _ in kept),
            [value for _, values in kept for value in values])
