"""The Celery app the API tests' workers run: the example tasks, plus a task only
workers have (Flower's process never imports this module).

``API_TESTS_POOL_RESTARTS=off`` in the worker's environment turns pool restarts
off, to see a worker refuse them; ``API_TESTS_RESULT_EXTENDED=off`` keeps task
names and arguments out of the result backend (``result_extended``).
"""
import os
import sys

EXAMPLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), 'examples')
if EXAMPLES_DIR not in sys.path:
    sys.path.insert(0, EXAMPLES_DIR)

from celery.exceptions import Reject  # noqa: E402
from tasks import app  # noqa: E402  (needs the sys.path entry above)

if os.environ.get('API_TESTS_POOL_RESTARTS') == 'off':
    app.conf.worker_pool_restarts = False
if os.environ.get('API_TESTS_RESULT_EXTENDED') == 'off':
    app.conf.result_extended = False


@app.task(name='worker_only.repeat')
def repeat(text, times):
    return text * times


@app.task(name='worker_only.reject', acks_late=True)
def reject():
    """Reject its own message without requeueing it (a task-rejected event)."""
    raise Reject('rejected on purpose', requeue=False)


@app.task(name='worker_only.spawn', bind=True)
def spawn(self):
    """Start a child task (``tasks.add``), so the child has a parent and a root."""
    return self.app.send_task('tasks.add', (1, 1)).id
