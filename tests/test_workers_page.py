"""The workers dashboard's table: what each row shows, escaped, and kept up to date."""
import html.parser
import time
import urllib.parse

import pytest

from flower.views.workers import WorkerRowsHtml

HOSTILE = '<script>alert("x")</script>&\'{0}@h ost'


class TableRows(html.parser.HTMLParser):
    """Each ``<tr data-worker>`` of a page: its name, cell texts, links and titles, unescaped."""

    def __init__(self, text):
        super().__init__()
        self.rows, self._row, self._cell = [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == 'tr' and 'data-worker' in attrs:
            self._row = {'name': attrs['data-worker'], 'cells': [], 'values': [], 'links': [],
                         'titles': [], 'status': None}
            self.rows.append(self._row)
        elif self._row is not None and tag == 'td':
            self._cell = []
            if 'data-value' in attrs:
                self._row['values'].append(attrs['data-value'])
        elif self._row is not None and tag == 'a':
            self._row['links'].append(attrs['href'])
            if 'title' in attrs:
                self._row['titles'].append(attrs['title'])
        elif self._row is not None and tag == 'span':
            self._row['status'] = attrs['class']

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag):
        if tag == 'td' and self._cell is not None:
            self._row['cells'].append(''.join(self._cell))
            self._cell = None
        elif tag == 'tr':
            self._row = None


def row(hostname, status=True, active=0, processed=0, failed=0, succeeded=0, retried=0,
        loadavg=None):
    return {'hostname': hostname, 'status': status, 'active': active, 'processed': processed,
            'failed': failed, 'succeeded': succeeded, 'retried': retried, 'loadavg': loadavg,
            'last_seen': None}


def shown(rows_html):
    return TableRows(rows_html.decode('utf-8')).rows


def test_a_name_is_escaped_in_its_row_and_its_links_lead_to_it():
    [shown_row] = shown(WorkerRowsHtml(lambda path: '/pre<fix>' + path).render(
        [row(HOSTILE, processed=1234567)]))
    assert shown_row['name'] == HOSTILE and shown_row['cells'][0] == HOSTILE
    worker_link, *task_links = shown_row['links']
    assert worker_link.startswith('/pre<fix>/worker/') and '<' not in worker_link[10:]
    assert urllib.parse.unquote(worker_link[len('/pre<fix>/worker/'):]) == HOSTILE
    assert [urllib.parse.parse_qs(urllib.parse.urlsplit(link).query) for link in task_links] == [
        {'state': ['STARTED'], 'worker': [HOSTILE]}, {'worker': [HOSTILE]},
        {'state': ['FAILURE'], 'worker': [HOSTILE]}, {'state': ['SUCCESS'], 'worker': [HOSTILE]},
        {'state': ['RETRY'], 'worker': [HOSTILE]}]
    assert shown_row['titles'] == [f'{label} tasks of {HOSTILE}' for label in (
        'Active', 'Processed', 'Failed', 'Succeeded', 'Retried')]
    assert shown_row['cells'][2:] == ['0', '1,234,567', '0', '0', '0', '']
    assert shown_row['values'] == ['0', '1234567', '0', '0', '0']


def test_a_count_a_worker_sent_as_text_is_shown_as_a_number():
    [shown_row] = shown(WorkerRowsHtml(lambda path: path).render([row('w@h', active='1234')]))
    assert shown_row['values'][0] == '1234' and shown_row['cells'][2] == '1,234'


def test_a_lone_surrogate_in_a_name_is_shown_as_a_backslash_escape():
    rows_html = WorkerRowsHtml(lambda path: path).render([row('bad\udcff@h')])
    [shown_row] = shown(rows_html)
    assert shown_row['name'] == 'bad\\udcff@h'
    assert shown_row['links'][0] == '/worker/bad%5Cudcff%40h'


def test_a_row_shows_the_workers_latest_values_and_only_the_workers_shown():
    rows_html = WorkerRowsHtml(lambda path: path)
    first = shown(rows_html.render([row('a@h', processed=5, loadavg=[0.5, 1, 2]),
                                    row('b@h')]))
    assert [shown_row['name'] for shown_row in first] == ['a@h', 'b@h']
    assert first[0]['status'] == 'status online'
    assert first[0]['cells'][1:] == ['Online', '0', '5', '0', '0', '0', '0.50, 1.00, 2.00']
    later = shown(rows_html.render([row('a@h', status=False, active=2, processed=7001,
                                        failed=3, loadavg=[0.5, 1, 2])]))
    assert [shown_row['name'] for shown_row in later] == ['a@h']
    assert later[0]['status'] == 'status offline'
    assert later[0]['cells'][1:] == ['Offline', '2', '7,001', '3', '0', '0', '—']
    again = shown(rows_html.render([row('b@h', retried=1)]))
    assert again[0]['name'] == 'b@h' and again[0]['cells'][-2] == '1'


@pytest.fixture
def flower(broker_url, flower_factory):
    return flower_factory(broker_url, enable_events=False)


def heartbeat(flower, hostname, **fields):
    now = time.time()
    event = dict({'type': 'worker-heartbeat', 'hostname': hostname, 'timestamp': now,
                  'local_received': now, 'freq': 2.0}, **fields)
    flower.call(flower.app.events.state.event, event)


def page_rows(flower):
    status, body = flower.get('/workers')
    assert status == 200
    return body, {shown_row['name']: shown_row for shown_row in TableRows(body).rows}


def test_the_page_shows_each_workers_last_heartbeat(flower):
    body, rows = page_rows(flower)
    assert rows == {} and 'No workers seen yet' in body
    heartbeat(flower, HOSTILE, active=1, loadavg=[0.25, 0.5, 0.75])
    heartbeat(flower, 'quiet@h', active=0)
    body, rows = page_rows(flower)
    assert '<script>alert' not in body and 'No workers seen yet' not in body
    assert rows[HOSTILE]['cells'][1:3] == ['Online', '1']
    assert rows[HOSTILE]['cells'][-1] == '0.25, 0.50, 0.75'
    assert 'data-card="online">2<' in body and 'data-card="workers">2<' in body
    heartbeat(flower, HOSTILE, active=3, loadavg=[4, 5, 6])
    _, rows = page_rows(flower)
    assert rows[HOSTILE]['cells'][2] == '3' and rows[HOSTILE]['values'][0] == '3'
    assert rows[HOSTILE]['cells'][-1] == '4.00, 5.00, 6.00'
    assert rows['quiet@h']['cells'][2] == '0'
