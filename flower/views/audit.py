"""The audit trail page (``/audit``): who changed what, newest first, a page at a time."""
from urllib.parse import urlencode

from flower.base_handler import BaseHandler, non_negative_int

#: Records on one page.
PAGE_SIZE = 50


def page_numbers(current: int, count: int, around: int = 2) -> list[int | None]:
    """The pages a pager offers: the first, the last and ``around`` pages on each side
    of ``current`` (all numbered from 1), ``None`` where pages are left out."""
    numbers: list[int | None] = []
    for page in range(1, count + 1):
        if page in (1, count) or abs(page - current) <= around:
            numbers.append(page)
        elif numbers[-1] is not None:
            numbers.append(None)
    return numbers


class AuditView(BaseHandler):
    async def get(self) -> None:
        offset = self.get_optional_argument('offset', type=non_negative_int, default=0)
        filters = {name: self.get_optional_argument(name) for name in ('action', 'user')}
        total, records = await self.application.audit.page(PAGE_SIZE, offset, **filters)
        kept = {name: value for name, value in filters.items() if value}

        def page_url(start: int, **only: str) -> str:
            query = dict(only) if only else dict(kept, offset=start)
            return self.application.url_for_path('/audit?' + urlencode(query))

        self.render('audit.html', records=records, total=total, offset=offset, filters=kept,
                    newer=page_url(max(offset - PAGE_SIZE, 0)) if offset else None,
                    older=page_url(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
                    page_url=page_url, active_page='audit', page_size=PAGE_SIZE,
                    pages=page_numbers(offset // PAGE_SIZE + 1, -(-total // PAGE_SIZE)))
