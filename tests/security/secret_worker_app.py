"""The Celery app of a worker whose configuration holds secrets Celery does not hide.

The tests look for the sentinel values in every answer Flower gives about the
worker; none may be found. Flower's own process never imports this module.
"""
import os
import sys

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples')
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

from tasks import app  # noqa: E402 (needs the sys.path entry above)

#: Every secret below; each must never reach an answer of Flower.
SENTINELS = {
    'transport_password': 'SentinelTransportPw-7f3a',
    'transport_auth': 'SentinelTransportAuth-c41d',
    'url_password': 'SentinelUrlPw/with#odd-92be',
    'dsn_password': 'SentinelDsnPw-5e07',
}

# The Redis transport ignores options it does not know: these only travel along
# in the worker's ``stats`` (connection info) and ``conf`` replies.
app.conf.broker_transport_options = {
    'sentinel_kwargs': {'password': SENTINELS['transport_password']},
    'auth': {'username': 'svc', 'client_token_value': SENTINELS['transport_auth']},
    'visibility_timeout': 3600,
}
# Setting names that do not look secret, holding connection strings that are.
app.conf.reporting_store = f"postgres://svc:{SENTINELS['url_password']}@db.internal:5432/reports"
app.conf.warehouse_connection = f"host=wh.internal user=svc password={SENTINELS['dsn_password']} dbname=wh"
