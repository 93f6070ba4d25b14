"""The Prometheus text Flower serves at ``/metrics``, written quickly.

:func:`render_text` writes any registry as ``prometheus_client.generate_latest``
would, without the ``*_created`` samples (the text format would turn them
into extra, undocumented gauges). :class:`MetricsText` writes the same bytes
faster: for the counters, gauges and histograms with labels (all of
Flower's own), it reads each series' values directly and reuses the text of
its labels, written once per series, instead of having ``prometheus_client``
build a sample object, a label dict and its text for every line of every
scrape. Other collectors go through :func:`render_text`'s path. Should
``prometheus_client`` ever keep its series differently, the whole registry
is written by :func:`render_text`, as before.
"""
from collections.abc import Iterable

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import Metric
from prometheus_client.utils import floatToGoString

#: Family types the text format writes as they are; others go through prometheus_client.
_PLAIN_TYPES = frozenset(('counter', 'gauge', 'histogram', 'summary'))


def render_text(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format of ``registry``, as ``prometheus_client.generate_latest``
    writes it but without the ``*_created`` samples."""
    return ''.join(_family_text(family) for family in registry.collect()).encode('utf-8')


def _family_text(family: Metric) -> str:
    """One family's text: metric and label names were checked when the metrics were
    declared, so only label values need escaping."""
    if family.type not in _PLAIN_TYPES:
        return prometheus_client.generate_latest(_WithoutCreated(family)).decode()
    output = [_header(family.name, family.type, family.documentation)]
    for sample in family.samples:
        if sample.name.endswith('_created'):
            continue
        labels = ''
        if sample.labels:
            labels = _labels_text(sorted(sample.labels.items()))
        timestamp = ''
        if sample.timestamp is not None:
            timestamp = f' {int(float(sample.timestamp) * 1000):d}'
        output.append(f'{sample.name}{labels} {floatToGoString(sample.value)}{timestamp}\n')
    return ''.join(output)


def _header(name: str, kind: str, documentation: str) -> str:
    name = name + '_total' if kind == 'counter' else name
    return f'# HELP {name} {_escape_help(documentation)}\n# TYPE {name} {kind}\n'


def _labels_text(pairs: Iterable[tuple[str, str]]) -> str:
    return '{' + ','.join(f'{label}="{_escape_label_value(value)}"' for label, value in pairs) + '}'


def _escape_help(text: str) -> str:
    return text.replace('\\', r'\\').replace('\n', r'\n')


def _escape_label_value(value: str) -> str:
    return value.replace('\\', r'\\').replace('\n', r'\n').replace('"', r'\"')


class _WithoutCreated:
    """One family without its ``*_created`` samples, for ``generate_latest``."""

    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> list[Metric]:
        self.family.samples = [sample for sample in self.family.samples
                               if not sample.name.endswith('_created')]
        return [self.family]


class MetricsText:
    """Writes ``registry`` as :func:`render_text` does, reading Flower's labelled
    counters, gauges and histograms series by series."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        #: (metric, label values) -> the text before each of the series' values.
        self._prefixes: dict[tuple[object, tuple[str, ...]], tuple[str, ...]] = {}

    def render(self) -> bytes:
        try:
            with self.registry._lock:
                collectors = list(self.registry._collector_to_names)
            if self.registry._target_info:
                return render_text(self.registry)
            output = []
            live = 0
            for collector in collectors:
                if _is_labelled_wrapper(collector):
                    live += self._write_series(collector, output)
                else:
                    output.extend(_family_text(family) for family in collector.collect())
        except AttributeError:  # prometheus_client keeps its series otherwise
            return render_text(self.registry)
        if len(self._prefixes) > 2 * live + 64:
            self._prefixes.clear()  # series removed since: start the texts over
        return ''.join(output).encode('utf-8')

    def _write_series(self, metric, output: list[str]) -> int:
        """Append ``metric``'s family to ``output``; returns its number of series."""
        kind = metric._type
        output.append(_header(metric._name, kind, metric._documentation))
        with metric._lock:
            series = list(metric._metrics.items())
        for values, child in series:
            prefixes = self._prefixes.get((metric, values))
            if prefixes is None:
                prefixes = self._prefixes[(metric, values)] = self._series_prefixes(
                    metric, values, child)
            if kind == 'histogram':
                _write_histogram(child, prefixes, output)
            else:
                output.append(f'{prefixes[0]}{floatToGoString(child._value.get())}\n')
        return len(series)

    @staticmethod
    def _series_prefixes(metric, values: tuple[str, ...], child) -> tuple[str, ...]:
        pairs = list(zip(metric._labelnames, values))
        name = metric._name
        if metric._type == 'counter':
            return (f'{name}_total{_labels_text(sorted(pairs))} ',)
        if metric._type == 'gauge':
            return (f'{name}{_labels_text(sorted(pairs))} ',)
        labels = _labels_text(sorted(pairs))
        buckets = tuple(
            f'{name}_bucket{_labels_text(sorted(pairs + [("le", floatToGoString(bound))]))} '
            for bound in child._upper_bounds)
        return buckets + (f'{name}_count{labels} ', f'{name}_sum{labels} ')


def _write_histogram(child, prefixes: tuple[str, ...], output: list[str]) -> None:
    total = 0.0
    for prefix, bucket in zip(prefixes, child._buckets):
        total += bucket.get()
        output.append(f'{prefix}{floatToGoString(total)}\n')
    output.append(f'{prefixes[-2]}{floatToGoString(total)}\n')
    if child._upper_bounds[0] >= 0:
        output.append(f'{prefixes[-1]}{floatToGoString(child._sum.get())}\n')


def _is_labelled_wrapper(collector) -> bool:
    """A counter, gauge or histogram itself (not a subclass, whose samples may differ),
    with labels."""
    return (type(collector) in (Counter, Gauge, Histogram) and bool(collector._labelnames)
            and not collector._labelvalues)
