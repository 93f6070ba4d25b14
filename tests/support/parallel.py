"""Running the suite in parallel with pytest-xdist, as ``scripts/test.sh`` does.

``scripts/test.sh`` runs ``pytest -n <processes> --dist loadfile
--no-loadscope-reorder``: each test module runs whole in one worker process
(its module-scoped clusters and browsers are started once), and the modules
are handed out in collection order as workers become free. Tests run in
parallel must not share anything they change: each module or test has its own
redis-server or db, RabbitMQ vhost, ports (``free_port``) and directories
(``tests/support/artifacts.py``, ``tmp_path``); each worker has its own
``session_redis``; test ids must be the same in every worker (no random
parameters in them), or xdist refuses to start.

This plugin moves the modules that take longest to the front when running
under xdist, so that none of them starts last and keeps the run going while
the other workers sit idle. Targeted runs (``-n0`` or ``-p no:xdist``) keep
pytest's order.
"""
import os

import pytest

TESTS_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#: Test modules (paths below tests/) from the longest-running down: each takes
#: over a minute (image builds, fresh virtualenvs, a clean-install or demo run,
#: one flower process per parametrized case). A new module of that kind goes here.
LONGEST_FIRST = (
    'test_install.py',
    'test_demo.py',
    'test_container.py',
    'test_options.py',
    'test_ui_worker_browser.py',
    'test_ui_dashboard_browser.py',
    'test_ui_tasks_usability_browser.py',
    'test_ui_layout_browser.py',
    'test_ui_live_pages_browser.py',
    'test_workflow_browser.py',
    'test_broker_rabbitmq.py',
    'test_hostile_input.py',
    'test_events_capture.py',
    'test_cli.py',
    'test_history_edges.py',
    'test_ingest.py',
    'test_replicas.py',
)


def _rank(item: pytest.Item) -> int:
    path = os.path.relpath(str(item.path), TESTS_DIR)
    return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Under xdist, the longest modules first; the others, and the tests within each
    module, keep their order (the sort is stable)."""
    if os.environ.get('PYTEST_XDIST_WORKER'):
        items.sort(key=_rank)
