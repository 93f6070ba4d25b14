"""``QueueHistory``: the bounded record behind the queue-length graph (pure logic)."""
from flower.queue_history import QueueHistory


def sample(**messages):
    return [{'name': name, 'messages': count} for name, count in messages.items()]


def test_empty_history():
    history = QueueHistory()

    assert history.latest is None
    assert history.error is None
    assert history.series() == {'timestamps': [], 'queues': {}}


def test_series_aligns_queues_that_come_and_go_with_the_timestamps():
    history = QueueHistory()
    history.record(10.0, sample(celery=3))
    history.record(20.0, sample(celery=1, images=7))
    history.record(30.0, sample(images=0))

    assert history.series() == {
        'timestamps': [10.0, 20.0, 30.0],
        'queues': {'celery': [3, 1, None], 'images': [None, 7, 0]},
    }
    assert history.latest == (30.0, [{'name': 'images', 'messages': 0}])


def test_a_failed_sample_is_a_gap_and_the_error_lasts_until_the_next_success():
    history = QueueHistory()
    history.record(10.0, sample(celery=3))
    history.record_error(20.0, 'Cannot query Redis: connection refused')

    assert history.error == 'Cannot query Redis: connection refused'
    assert history.latest == (10.0, [{'name': 'celery', 'messages': 3}])
    assert history.series() == {'timestamps': [10.0, 20.0], 'queues': {'celery': [3, None]}}

    history.record(30.0, sample(celery=0))

    assert history.error is None
    assert history.series()['queues'] == {'celery': [3, None, 0]}


def test_history_keeps_only_the_last_maxlen_samples():
    history = QueueHistory(maxlen=3)
    history.record(1.0, sample(old=1))
    for timestamp in (2.0, 3.0, 4.0):
        history.record(timestamp, sample(celery=int(timestamp)))

    assert len(history) == 3
    assert history.series() == {'timestamps': [2.0, 3.0, 4.0], 'queues': {'celery': [2, 3, 4]}}


def test_recorded_samples_do_not_change_with_the_callers_list():
    history = QueueHistory()
    lengths = sample(celery=5)
    history.record(1.0, lengths)
    lengths[0]['messages'] = 99

    assert history.latest == (1.0, [{'name': 'celery', 'messages': 5}])
    assert history.series()['queues'] == {'celery': [5]}
