"""A real Prometheus server scraping a Flower that watches real workers.

One Prometheus (Debian package ``prometheus``) per module, on loopback, with
a configuration written by the test: it scrapes the module's Flower every
second and loads the shipped alerting rules. The shipped ``prometheus.yml``,
rules and Grafana dashboard are checked with ``promtool`` and by evaluating
their expressions on this server.
"""
import json
import os
import re
import subprocess
import uuid

import pytest
import requests

from tests.support.waiting import wait_for
from tests.support.processes import REPO_DIR, Subprocess, free_port, port_is_open

ALERTS = os.path.join(REPO_DIR, 'examples', 'prometheus-alerts.yml')
DASHBOARD = os.path.join(REPO_DIR, 'examples', 'celery-monitoring-grafana-dashboard.json')
DOCUMENTED_METRICS = {
    'flower_events_total', 'flower_task_prefetch_time_seconds', 'flower_worker_prefetched_tasks',
    'flower_task_runtime_seconds_bucket', 'flower_worker_online',
    'flower_worker_number_of_currently_executing_tasks', 'flower_queue_length',
}


class PrometheusServer(Subprocess):
    """``prometheus`` on ``127.0.0.1:<free port>`` scraping ``targets`` every second."""

    def __init__(self, targets, directory):
        self.port = free_port()
        self.config = os.path.join(directory, 'prometheus.yml')
        with open(self.config, 'w') as file:
            file.write(f"global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                       f"rule_files:\n  - {ALERTS}\n"
                       f"scrape_configs:\n  - job_name: flower\n    static_configs:\n"
                       f"      - targets: {json.dumps(targets)}\n")
        super().__init__(
            ['prometheus', f'--config.file={self.config}',
             f'--storage.tsdb.path={os.path.join(directory, "data")}',
             f'--web.listen-address=127.0.0.1:{self.port}'],
            name='prometheus', log_dir=directory)

    @property
    def url(self):
        return f'http://127.0.0.1:{self.port}'

    def wait_ready(self, timeout=30):
        def ready():
            assert self.running, f"prometheus exited:\n{self.log_tail()}"
            return port_is_open(self.port, '127.0.0.1') and \
                requests.get(self.url + '/-/ready', timeout=2).status_code == 200
        wait_for(ready, timeout=timeout, what='prometheus to be ready')
        return self

    def query(self, expression):
        """The result vector of an instant PromQL query (the API must say success)."""
        response = requests.get(self.url + '/api/v1/query', params={'query': expression},
                                timeout=10)
        body = response.json()
        assert body['status'] == 'success', (expression, body)
        return body['data']['result']


@pytest.fixture(scope='module')
def worker(cluster):
    return cluster.start_workers(dict(name=f'prom-{uuid.uuid4().hex[:6]}@localhost'))[0]


@pytest.fixture(scope='module')
def flower(cluster, worker):
    server = cluster.start_flower()
    cluster.wait_known(server, worker)
    return server


@pytest.fixture(scope='module')
def prometheus(cluster, flower):
    server = PrometheusServer([f'127.0.0.1:{flower.options.port}'], cluster.log_dir)
    server.start()
    try:
        yield server.wait_ready()
    finally:
        server.stop()


def by_label(result, label):
    return {series['metric'][label]: float(series['value'][1]) for series in result}


def test_promql_sees_task_counts_per_task_and_the_worker_online(cluster, worker, flower, prometheus):
    results = [cluster.client.send_task('tasks.add', (i, i)) for i in range(3)]
    results += [cluster.client.send_task('tasks.mul', (i, 2)) for i in range(2)]
    for result in results:
        result.get(timeout=20)
    host = worker.hostname
    query = f'sum by (task) (flower_events_total{{type="task-succeeded", worker="{host}"}})'

    counts = wait_for(lambda: (lambda found: found == {'tasks.add': 3.0, 'tasks.mul': 2.0} and found)(
        by_label(prometheus.query(query), 'task')), timeout=30, interval=0.5,
        what='Prometheus to scrape the succeeded counts')

    assert counts == {'tasks.add': 3.0, 'tasks.mul': 2.0}
    online = prometheus.query(f'flower_worker_online{{worker="{host}"}}')
    assert [(series['metric']['job'], float(series['value'][1])) for series in online] == [('flower', 1.0)]
    assert by_label(prometheus.query('flower_queue_length'), 'queue') == {'celery': 0.0}
    assert by_label(prometheus.query('up{job="flower"}'), 'job') == {'flower': 1.0}


def test_shipped_alert_rules_load_and_evaluate_on_the_live_data(prometheus, flower):
    def evaluated_rules():
        groups = requests.get(prometheus.url + '/api/v1/rules', timeout=10).json()['data']['groups']
        rules = [rule for group in groups for rule in group['rules']]
        never = '0001-01-01'  # Prometheus' "not evaluated yet"
        return rules if rules and not any(rule['lastEvaluation'].startswith(never)
                                          for rule in rules) else None
    rules = wait_for(evaluated_rules, timeout=30, interval=0.5, what='the rules to be evaluated')

    assert {rule['name'] for rule in rules} == {
        'CeleryWorkerDown', 'CeleryTaskFailureRateHigh', 'CeleryQueueBacklog',
        'CeleryNoTaskEvents', 'FlowerDown'}
    assert [(rule['name'], rule['health'], rule.get('lastError')) for rule in rules
            if rule['health'] != 'ok'] == []
    # A healthy cluster: nothing fires.
    assert [rule['name'] for rule in rules if rule['state'] != 'inactive'] == []


def test_grafana_dashboard_queries_run_on_prometheus(prometheus, flower):
    with open(DASHBOARD) as file:
        dashboard = json.load(file)
    expressions = [target['expr'] for panel in dashboard['panels'] for target in panel['targets']]
    used = set()

    for expression in expressions:
        # Grafana's variables, as Grafana fills them in for "All" and a short range.
        concrete = expression.replace('$__rate_interval', '1m')
        concrete = re.sub(r'\$(worker|task|queue)\b', '.*', concrete)
        prometheus.query(concrete)
        used.update(re.findall(r'\b(flower_[a-z_]+)\b', expression))

    assert used == DOCUMENTED_METRICS
    assert {variable['name'] for variable in dashboard['templating']['list']} == {
        'worker', 'task', 'queue'}
    assert dashboard['__inputs'][0]['pluginId'] == 'prometheus'


@pytest.mark.parametrize('argv', [
    ['promtool', 'check', 'config', 'prometheus.yml'],
    ['promtool', 'check', 'rules', 'examples/prometheus-alerts.yml'],
    ['promtool', 'test', 'rules', 'tests/test_prometheus_alerts.yml'],
], ids=['config', 'rules', 'rule-unit-tests'])
def test_promtool_accepts_the_shipped_files(argv):
    checked = subprocess.run(argv, cwd=REPO_DIR, capture_output=True, text=True, timeout=60)

    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert 'SUCCESS' in checked.stdout + checked.stderr
