"""The task search syntax shared by ``/api/tasks``, ``/api/events`` and the tasks page.

``foo`` matches tasks with ``foo`` in their args, kwargs or result;
``args:foo`` and ``result:foo`` look in one of those only; ``kwargs:foo=bar``
wants a keyword argument ``foo`` equal to ``bar`` (``kwargs:foo`` only wants
the keyword); ``state:FAILURE`` keeps tasks in that state (several ``state:``
terms, or ``state:A,B``, mean any of them). A term with spaces is quoted:
``args:"hello world"``. Every term must match; text comparisons ignore case.

:func:`parse_query` is the one parser: it turns a search into a tree of
:class:`Term`, :class:`And`, :class:`Or` and :class:`MatchAll`, or raises a
:class:`QuerySyntaxError` saying where the search cannot be read.
:class:`TaskSearchEngine` is the one matcher. The flat form of Flower 2.0
(:func:`parse_search_terms`, :func:`satisfies_search_terms`) is built on both.
"""
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from flower.utils.search_kwargs import kwarg_in_text, kwargs_mapping

#: The longest search accepted, in characters, and the most terms it may have.
MAX_SEARCH_LENGTH = 1000
MAX_SEARCH_TERMS = 20
#: A term is matched against this many characters of each field at most.
MAX_FIELD_LENGTH = 65536

#: The fields a term may name before a colon (``state:FAILURE``).
PREFIXED_FIELDS = ('args', 'kwargs', 'result', 'state')


class SearchTooLarge(ValueError):
    """The search is longer, or has more terms, than Flower accepts."""


class QuerySyntaxError(ValueError):
    """The search cannot be read; ``position`` is the offset (from 0) where it fails."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.position = position


@dataclasses.dataclass(frozen=True)
class Term:
    """One condition: ``field`` is ``'any'`` or one of ``args``, ``kwargs``,
    ``result``, ``state``; ``value`` the text wanted (a state in upper case).

    For ``kwargs`` the keyword is ``key``, and ``value`` ``None`` means any value.
    """

    field: str
    value: str | None
    key: str | None = None


@dataclasses.dataclass(frozen=True)
class And:
    """Every child must match."""

    children: tuple['Query', ...]


@dataclasses.dataclass(frozen=True)
class Or:
    """At least one child must match."""

    children: tuple['Query', ...]


@dataclasses.dataclass(frozen=True)
class MatchAll:
    """The empty search: every task matches."""


#: A parsed search: a tree of these nodes.
Query = Term | And | Or | MatchAll


def search_tokens(raw: str) -> tuple[list[str], int | None]:
    """``(tokens, unclosed)``: the blank-separated terms of ``raw`` (blanks inside
    quotes do not separate), and the offset of a quote never closed, or ``None``."""
    tokens = []
    start = quote = None
    for position, char in enumerate(raw):
        if quote is None and char.isspace():
            if start is not None:
                tokens.append(raw[start:position])
                start = None
            continue
        if start is None:
            start = position
        if char == '"':
            quote = position if quote is None else None
    if start is not None:
        tokens.append(raw[start:])
    return tokens, quote


def check_search_size(raw: str) -> None:
    """Refuse a search longer than :data:`MAX_SEARCH_LENGTH` or with more terms than
    :data:`MAX_SEARCH_TERMS`: every term costs a pass over every task."""
    if len(raw) > MAX_SEARCH_LENGTH:
        raise SearchTooLarge(f"the search is {len(raw)} characters long; at most "
                             f"{MAX_SEARCH_LENGTH} are accepted")
    count = len(search_tokens(raw)[0])
    if count > MAX_SEARCH_TERMS:
        raise SearchTooLarge(f"the search has {count} terms; at most {MAX_SEARCH_TERMS} "
                             "are accepted")


def _term(token: str) -> Term | list[Term] | None:
    """The term(s) one token stands for; ``None`` for a prefix without a value."""
    prefix, colon, rest = token.partition(':')
    if not colon or prefix not in PREFIXED_FIELDS:
        text = token.replace('"', '')
        return Term('any', text) if text else None
    value = rest.replace('"', '')
    if not value:
        return None
    if prefix == 'kwargs':
        key, equals, wanted = value.partition('=')
        return Term('kwargs', wanted if equals else None, key)
    if prefix == 'state':
        return [Term('state', state.upper()) for state in value.split(',') if state]
    return Term(prefix, value)


def parse_query(raw: str | None) -> Query:
    """The query tree of a search: the ``state:`` terms as one :class:`Or` (any of
    them), and-ed with the other terms in their order; :class:`MatchAll` when empty.

    A search too large is a :class:`SearchTooLarge`; a quote never closed a
    :class:`QuerySyntaxError` naming the character where it opens.
    """
    raw = raw or ''
    check_search_size(raw)
    tokens, unclosed = search_tokens(raw)
    if unclosed is not None:
        raise QuerySyntaxError(f"the quote at character {unclosed + 1} is never closed "
                               f"(near {raw[unclosed:unclosed + 20]!r})", unclosed)
    states: list[Term] = []
    others: list[Query] = []
    for token in tokens:
        term = _term(token)
        if isinstance(term, list):
            states.extend(term)
        elif term is not None:
            others.append(term)
    if states:
        others.insert(0, states[0] if len(states) == 1 else Or(tuple(states)))
    if not others:
        return MatchAll()
    return others[0] if len(others) == 1 else And(tuple(others))


def parse_search_terms(raw: str | None) -> dict[str, Any]:
    """Flower 2.0's flat form of :func:`parse_query`:
    ``{'any', 'args', 'kwargs', 'result', 'state'}``.

    ``any``, ``args`` and ``result`` are lists of texts, ``kwargs`` maps
    keyword names to the wanted value (``None``: any value), ``state`` is a
    list of upper-case state names.
    """
    terms = {'any': [], 'args': [], 'kwargs': {}, 'result': [], 'state': []}
    for term in _leaves(parse_query(raw)):
        if term.field == 'kwargs':
            terms['kwargs'][term.key] = term.value
        else:
            terms[term.field].append(term.value)
    return terms


def _leaves(query: Query) -> Iterator[Term]:
    if isinstance(query, Term):
        yield query
    elif isinstance(query, (And, Or)):
        for child in query.children:
            yield from _leaves(child)


def _query_of_terms(terms: dict[str, Any]) -> Query:
    """The tree that :func:`parse_search_terms`'s flat form stands for."""
    states = [Term('state', state) for state in terms['state']]
    others: list[Query] = [Term(field, text) for field in ('any', 'args', 'result')
                           for text in terms[field]]
    others += [Term('kwargs', wanted, key) for key, wanted in terms['kwargs'].items()]
    if states:
        others.insert(0, Or(tuple(states)))
    return And(tuple(others)) if others else MatchAll()


def satisfies_search_terms(task: Any, terms: dict[str, Any]) -> bool:
    """True if ``task`` matches every term of :func:`parse_search_terms`'s result."""
    return TaskSearchEngine(_query_of_terms(terms)).matches(task)


# -- matching ------------------------------------------------------------------------


def field_text(value: Any) -> str:
    """The field as text, cut to :data:`MAX_FIELD_LENGTH` characters, as terms are matched
    against it (lower-cased)."""
    return '' if value is None else str(value)[:MAX_FIELD_LENGTH]


class _TaskFields:
    """One task's searchable fields, each cut, lower-cased (or parsed) once, when a
    term first needs it, whatever the number of terms."""

    __slots__ = ('task', 'args', 'kwargs', 'result', '_mapping', '_mapping_read')

    def __init__(self, task):
        self.task = task
        self.args = self.kwargs = self.result = None
        self._mapping_read = False

    def lowered(self, field):
        text = getattr(self, field)
        if text is None:
            text = field_text(getattr(self.task, field)).lower()
            setattr(self, field, text)
        return text

    def kwargs_mapping(self):
        if not self._mapping_read:
            kwargs = self.task.kwargs
            self._mapping = kwargs_mapping(kwargs if isinstance(kwargs, dict)
                                            else field_text(kwargs))
            self._mapping_read = True
        return self._mapping


def _kwarg_matches(fields, key, wanted):
    mapping = fields.kwargs_mapping()
    if mapping is None:
        return kwarg_in_text(fields.lowered('kwargs'), key.lower(),
                              None if wanted is None else wanted.lower())
    if key not in mapping:
        return False
    return wanted is None or str(mapping[key]).lower() == wanted.lower()


Predicate = Callable[[_TaskFields], bool]


def _wanted_states(query: Query) -> frozenset[str] | None:
    """The states a ``state:`` term, or an :class:`Or` of them, accepts; ``None`` for others."""
    children = query.children if isinstance(query, Or) else (query,)
    if all(isinstance(child, Term) and child.field == 'state' for child in children):
        return frozenset(child.value for child in children)
    return None


def required_states(query: Query) -> frozenset[str] | None:
    """The states a task must be in to match ``query`` (its ``state:`` terms), or
    ``None`` when any state may match."""
    for child in query.children if isinstance(query, And) else (query,):
        if isinstance(child, (Term, Or)):
            states = _wanted_states(child)
            if states is not None:
                return states
    return None


def _single_pass(query: Query) -> Callable[[Any], bool] | None:
    """For a query that reads one field once (a ``state:`` or text term alone, the most
    common searches), a function of the task itself: caching its fields would only cost.
    ``None`` for the others."""
    states = _wanted_states(query) if isinstance(query, (Term, Or)) else None
    if states is not None:
        return lambda task: task.state in states
    if not isinstance(query, Term) or query.field == 'kwargs':
        return None
    needle, field = query.value.lower(), query.field
    if field == 'any':
        return lambda task: (needle in field_text(task.args).lower()
                             or needle in field_text(task.kwargs).lower()
                             or needle in field_text(task.result).lower())
    return lambda task: needle in field_text(getattr(task, field)).lower()


def _compile(query: Query) -> Predicate:
    """A function of a task's fields that is true when the task matches ``query``."""
    if isinstance(query, MatchAll):
        return lambda fields: True
    states = _wanted_states(query) if isinstance(query, (Term, Or)) else None
    if states is not None:
        return lambda fields: fields.task.state in states
    if isinstance(query, Term):
        if query.field == 'kwargs':
            return lambda fields: _kwarg_matches(fields, query.key, query.value)
        needle, field = query.value.lower(), query.field
        if field == 'any':
            return lambda fields: (needle in fields.lowered('args')
                                   or needle in fields.lowered('kwargs')
                                   or needle in fields.lowered('result'))
        return lambda fields: needle in fields.lowered(field)
    parts = [_compile(child) for child in query.children]
    wanted = isinstance(query, Or)  # the answer that settles it: a match for Or, a miss for And

    def combined(fields):
        for part in parts:
            if part(fields) is wanted:
                return wanted
        return not wanted
    return combined


class TaskSearchEngine:
    """Answers one query over tasks: the only place where tasks are matched, so an
    index can later narrow the tasks to look at behind the same two methods."""

    def __init__(self, query: Query | str | None) -> None:
        self.query = query if isinstance(query, (Term, And, Or, MatchAll)) else parse_query(query)
        self._predicate = _compile(self.query)
        self._single_pass = _single_pass(self.query)

    def matches(self, task: Any) -> bool:
        """True if ``task`` (anything with Celery's task attributes) matches the query."""
        if self._single_pass is not None:
            return self._single_pass(task)
        return self._predicate(_TaskFields(task))

    def search(self, state: Any) -> Iterator[tuple[str, Any]]:
        """The ``(uuid, task)`` pairs of an ``EventsState`` (or any Celery ``State``)
        whose task matches, in the order of ``state.tasks``."""
        for uuid, task in list(state.tasks.items()):
            if self.matches(task):
                yield uuid, task
