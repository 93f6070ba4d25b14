"""The pages' handlers; the handler every page and API endpoint builds on.

:class:`BaseHandler`, :class:`RequestError` and the credential checks live in
:mod:`flower.base_handler` and :mod:`flower.utils.authentication`; they are
importable from here too, where extensions of Flower import them.
"""
import tornado.web

from flower.base_handler import MAX_INTEGER, BaseHandler, RequestError, error_message
from flower.security import read_limit, set_security_headers
from flower.utils.authentication import authenticate, basic_auth_user

__all__ = ['MAX_INTEGER', 'BaseHandler', 'JsonPageHandler', 'RefusedRequest', 'RequestError',
           'StaticFiles', 'authenticate', 'basic_auth_user', 'error_message']



@tornado.web.stream_request_body
class RefusedRequest(BaseHandler):
    """Answers a request refused before routing (wrong ``Host``, body too large).

    It takes the body as a stream and drops it, so a refused upload is never
    held in memory. The answer waits until the body has arrived: clients that
    send the whole body before reading would see the connection reset instead.
    A body longer than Tornado reads at all is answered at once.
    """

    def initialize(self, status_code: int, message: str) -> None:
        self.refusal = RequestError(status_code, message)

    def check_xsrf_cookie(self) -> None:
        """The request is refused whatever its token."""

    def prepare(self) -> None:
        length = self.request.headers.get('Content-Length', '')
        if length.isdigit() and int(length) > read_limit(self.application.options):
            raise self.refusal

    def data_received(self, chunk: bytes) -> None:
        """Dropped: the request is refused."""

    def refuse(self, *args: str) -> None:
        raise self.refusal

    get = head = post = put = patch = delete = options = refuse

    def may_see_broker(self) -> bool:
        return False

    def get_current_user(self) -> None:
        return None

    def write_error_message(self, status_code: int, message: str) -> None:
        url = self.application.url_for_path
        if self.request.path.startswith((url('/api'), url('/control/'))):
            self.finish({'error': message})
        else:
            super().write_error_message(status_code, message)


class StaticFiles(tornado.web.StaticFileHandler):
    """Static files with the same security headers as the pages."""

    def set_default_headers(self) -> None:
        set_security_headers(self)


class JsonPageHandler(BaseHandler):
    """The JSON the pages' own code loads: page access rules, errors as JSON."""

    def write_error_message(self, status_code: int, message: str) -> None:
        self.finish({'error': message})
