"""A task whose name is hostile markup, for the test-suite's hostile-input tests.

Kept apart from ``tasks.py`` so that the demo never shows it; a worker loads
it with ``--include hostile_tasks``.
"""

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)

from tasks import app  # noqa: E402  (the path above makes it importable)

#: Task names come from workers: quotes and markup in one must stay text everywhere.
HOSTILE_NAME = 'hostile.<img src=x onerror="window.__xss = 7">\'"'


@app.task(name=HOSTILE_NAME)
def hostile(value):
    return value
