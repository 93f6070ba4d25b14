"""Celery settings shared by the example tasks, the demo and the test-suite.

The broker and result backend come from the environment so that the same
module can point at any (usually private, throw-away) Redis instance::

    CELERY_BROKER_URL=redis://127.0.0.1:6380/0 celery -A tasks --workdir examples worker -E
"""

import os

broker_url = os.environ.get('CELERY_BROKER_URL', 'redis://localhost:6379/0')
result_backend = os.environ.get('CELERY_RESULT_BACKEND', broker_url)

# Flower is fed by events: workers must emit task events, and clients the
# "task-sent" event, otherwise a task only shows up once a worker gets it.
# (CELERY_WORKER_SEND_TASK_EVENTS=0 starts workers without task events, as
# if -E were not given: the tests use it for "silent" workers.)
worker_send_task_events = os.environ.get(
    'CELERY_WORKER_SEND_TASK_EVENTS', 'true',
).strip().lower() not in ('0', 'false', 'no', 'off')
task_send_sent_event = True

# Allows the "pool restart" remote-control command used by Flower.
worker_pool_restarts = True

# Store name, args, kwargs, worker... alongside results.
result_extended = True
