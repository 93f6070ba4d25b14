"""The route table and the default Tornado settings of the Flower application."""
import os

from tornado.web import url

from flower.utils import gen_cookie_secret
from flower.views.error import NotFoundErrorHandler
from flower.views.monitor import Healthcheck, Metrics
from flower.views.workers import WorkersView

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))

settings = dict(
    template_path=os.path.join(_PACKAGE_DIR, 'templates'),
    static_path=os.path.join(_PACKAGE_DIR, 'static'),
    static_url_prefix='/static/',
    cookie_secret=gen_cookie_secret(),
    login_url='/login',
    xsrf_cookies=True,
    default_handler_class=NotFoundErrorHandler,
)

handlers = [
    url(r"/", WorkersView, name='main'),
    url(r"/workers", WorkersView, name='workers'),
    url(r"/healthcheck", Healthcheck, name='healthcheck'),
    url(r"/metrics", Metrics, name='metrics'),
]
