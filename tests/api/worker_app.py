"""The Celery app the API tests' workers run: the example tasks, plus a task only
workers have (Flower's process never imports this module).

``API_TESTS_POOL_RESTARTS=off`` in the worker's environment turns pool restarts
off, to see a worker refuse them.
"""
import os
import sys

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples')
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

from tasks import app  # noqa: E402  (needs the sys.path entry above)

if os.environ.get('API_TESTS_POOL_RESTARTS') == 'off':
    app.conf.worker_pool_restarts = False


@app.task(name='worker_only.repeat')
def repeat(text, times):
    return text * times
