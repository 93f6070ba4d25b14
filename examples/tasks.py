"""Example tasks used by the demo, the integration tests and the benchmarks.

Run a worker with::

    celery -A tasks --workdir examples worker -E -l INFO

Every task is registered under ``tasks.<function name>``.
"""

import os
import sys
import time

from celery import Celery
from celery.contrib.abortable import AbortableTask

# celeryconfig.py lives next to this file: make it importable whatever the
# current directory of the process loading us is.
_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

app = Celery('tasks')
app.config_from_object('celeryconfig')


@app.task
def add(x, y):
    return x + y


@app.task
def mul(x, y):
    return x * y


@app.task
def echo(value):
    return value


@app.task
def sleep(seconds):
    time.sleep(seconds)
    return seconds


@app.task
def sleep_with_args(seconds, *args, **kwargs):
    """Sleep like ``sleep``; any other arguments are only carried along, to be seen while it runs."""
    time.sleep(seconds)
    return seconds


@app.task
def error(message='boom'):
    raise ValueError(message)


@app.task
def file_name(raw, fail=False):
    """``raw`` (bytes) decoded the way Python decodes file names, returned or raised.

    Bytes that are not UTF-8 become lone surrogates: text that no UTF-8
    encoder accepts as it is, as a task listing a Latin-1 file system gets.
    """
    name = os.fsdecode(raw)
    if fail:
        raise ValueError(f'cannot read {name}')
    return name


@app.task(bind=True, max_retries=2)
def retry_then_succeed(self):
    """Fail twice (each time asking for a retry), then succeed."""
    if self.request.retries < 2:
        raise self.retry(countdown=0.5)
    return 'ok'


@app.task(bind=True, max_retries=2)
def always_fails_with_retries(self):
    """Retry twice, then give up with the error."""
    exc = RuntimeError(f'attempt {self.request.retries + 1} failed')
    # Once max_retries is exceeded, retry() raises ``exc`` itself.
    raise self.retry(exc=exc, countdown=0.2)


@app.task(bind=True, base=AbortableTask)
def abortable_sleep(self, seconds):
    """Sleep for ``seconds`` unless aborted (checked every 0.1 s)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if self.is_aborted():
            return 'aborted'
        time.sleep(0.1)
    return seconds
