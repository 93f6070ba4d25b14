"""The lower-cased text that searches look in, for the tasks in memory, kept in
blocks so that a text term finds its candidates with ``str.find`` over a few
megabytes instead of lower-casing every task's fields on every search.

Tasks are grouped into blocks of :data:`BLOCK_SIZE` consecutive creation
numbers. The IO loop only counts the changes of each block
(:meth:`SearchText.added`, :meth:`~SearchText.touched`,
:meth:`~SearchText.removed`, called by the task index): events never pay for
the text. A block's text is built by the first search that finds it out of
date, in that search's thread; blocks of old tasks rarely change, so a
search rebuilds only the newest ones.

A block's text is each task's ``args``, ``kwargs`` and ``result``, lowered
exactly as the matcher lowers them (:func:`flower.utils.search.field_text`),
each followed by :data:`SEPARATOR`. A term found in a field's span is found by
the matcher in that field, and the other way round, so the blocks only narrow
the tasks the matcher looks at and never change an answer.
"""
import bisect
from array import array
from collections.abc import Callable, Iterator
from typing import Any

from flower.utils.search import And, Query, Term, field_text

#: Creation numbers per block, as a power of two.
BLOCK_SHIFT = 11
BLOCK_SIZE = 1 << BLOCK_SHIFT
#: The fields in a block's text, in their order there.
TEXT_FIELDS = ('args', 'kwargs', 'result')
#: Ends each field's text; a term holding it is not looked up in blocks.
SEPARATOR = '\x00'
#: What a term's ``field`` reads: the positions of :data:`TEXT_FIELDS` to look in.
_FIELD_POSITIONS = {'any': frozenset((0, 1, 2)), 'args': frozenset((0,)),
                    'result': frozenset((2,))}


def block_of(number: int) -> int:
    return number >> BLOCK_SHIFT


class BlockText:
    """The text of one block's tasks, as of change ``generation`` of the block."""

    __slots__ = ('generation', 'uuids', 'text', 'starts')

    def __init__(self, generation: int, uuids: list[str], text: str, starts: array) -> None:
        self.generation = generation
        self.uuids = uuids  # the tasks in the text, in its order
        self.text = text
        #: Where field ``f`` of task ``i`` starts: ``starts[3 * i + f]``; then the length.
        self.starts = starts

    @classmethod
    def build(cls, generation: int, uuids: list[str], lookup: Callable[[str], Any],
              belongs: Callable[[str], bool]) -> 'BlockText':
        """The text of the tasks of ``uuids`` still in memory and in this block."""
        kept, parts, starts = [], [], array('q')
        offset = 0
        for uuid in uuids:
            task = lookup(uuid)
            if task is None or not belongs(uuid):
                continue
            kept.append(uuid)
            for field in TEXT_FIELDS:
                piece = field_text(getattr(task, field, None)).lower()
                starts.append(offset)
                parts.append(piece)
                offset += len(piece) + 1
        starts.append(offset)
        return cls(generation, kept, SEPARATOR.join(parts) + SEPARATOR if parts else '', starts)

    def find(self, needle: str, positions: frozenset[int]) -> list[str]:
        """The uuids of the tasks with ``needle`` in one of the fields at ``positions``."""
        text, starts, width = self.text, self.starts, len(needle)
        found = []
        at = text.find(needle)
        while at != -1:
            slot = bisect.bisect_right(starts, at) - 1
            task, field = divmod(slot, 3)
            if field in positions and at + width < starts[slot + 1]:
                found.append(self.uuids[task])
                at = text.find(needle, starts[3 * task + 3])
            else:
                at = text.find(needle, at + 1)
        return found


def text_term(query: Query) -> Term | None:
    """The term whose text every match must contain, the longest one, or ``None`` when
    the query has none (it then goes through every task)."""
    terms = query.children if isinstance(query, And) else (query,)
    usable = [term for term in terms if isinstance(term, Term) and term.field in _FIELD_POSITIONS
              and SEPARATOR not in term.value]
    return max(usable, key=lambda term: len(term.value), default=None)


class SearchText:
    """Blocks of the tasks in memory and their text; the IO loop's side."""

    def __init__(self) -> None:
        self.members: dict[int, list[str]] = {}  # block -> uuids added to it, in order
        self.sizes: dict[int, int] = {}  # block -> tasks in it now
        self.generations: dict[int, int] = {}  # block -> changes so far
        #: Block -> its latest text; written by searches' threads.
        self.built: dict[int, BlockText] = {}

    def added(self, uuid: str, number: int) -> None:
        block = number >> BLOCK_SHIFT
        members = self.members.get(block)
        if members is None:
            self.members[block] = [uuid]
            self.sizes[block] = 1
            self.generations[block] = 1
        else:
            members.append(uuid)
            self.sizes[block] += 1
            self.generations[block] += 1

    def touched(self, number: int) -> None:
        self.generations[number >> BLOCK_SHIFT] += 1

    def removed(self, number: int) -> None:
        block = number >> BLOCK_SHIFT
        left = self.sizes[block] - 1
        if left:
            self.sizes[block] = left
            self.generations[block] += 1
        else:
            for blocks in (self.members, self.sizes, self.generations, self.built):
                blocks.pop(block, None)

    def snapshot(self, sequence: dict[str, int],
                 lookup: Callable[[str], Any]) -> 'SearchTextSnapshot':
        """What a search's thread needs, taken on the IO loop: the blocks' current text,
        or their members to build it from."""
        blocks = []
        for block, generation in self.generations.items():
            text = self.built.get(block)
            if text is None or text.generation != generation:
                text = (generation, list(self.members[block]))
            blocks.append((block, text))
        blocks.sort(key=lambda item: item[0], reverse=True)
        return SearchTextSnapshot(self, blocks, sequence, lookup)


class SearchTextSnapshot:
    """The blocks as one search sees them, newest first; built in its thread."""

    def __init__(self, text: SearchText, blocks: list[tuple[int, Any]],
                 sequence: dict[str, int], lookup: Callable[[str], Any]) -> None:
        self._text = text
        self._blocks = blocks
        self._sequence = sequence
        self._lookup = lookup

    def find(self, term: Term) -> Iterator[list[str]]:
        """For each block, newest first, the uuids whose text holds ``term``'s, newest
        first within the block."""
        needle, positions = term.value.lower(), _FIELD_POSITIONS[term.field]
        number = self._sequence.get
        for block, text in self._blocks:
            if not isinstance(text, BlockText):
                generation, uuids = text
                text = BlockText.build(generation, uuids, self._lookup,
                                       lambda uuid, block=block: (number(uuid, -1) >> BLOCK_SHIFT)
                                       == block)
                built = self._text.built
                current = built.get(block)
                if current is None or current.generation < generation:
                    built[block] = text
            found = text.find(needle, positions)
            found.sort(key=lambda uuid: number(uuid, -1), reverse=True)
            yield found
