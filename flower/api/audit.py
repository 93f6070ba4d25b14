"""``/api/audit``: the audit trail, newest first, a page at a time."""
from flower.api import BaseApiHandler, positive_int, non_negative_int

#: Records one request may ask for.
MAX_PAGE = 1000


def page_size(value: str) -> int:
    """A ``limit`` from 1 to :data:`MAX_PAGE`."""
    size = positive_int(value)
    if size > MAX_PAGE:
        raise ValueError(f"must be at most {MAX_PAGE}")
    return size


class AuditListing(BaseApiHandler):
    async def get(self) -> None:
        limit = self.get_optional_argument('limit', type=page_size, default=100)
        offset = self.get_optional_argument('offset', type=non_negative_int, default=0)
        action = self.get_optional_argument('action')
        user = self.get_optional_argument('user')
        total, records = await self.application.audit.page(limit, offset, action=action,
                                                            user=user)
        self.write_json({'total': total, 'offset': offset, 'limit': limit, 'records': records})
