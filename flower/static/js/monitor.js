/* The monitor page: outcome, runtime and queue graphs drawn from /monitor/data.
   Labels (task names, worker names, queue names) are inserted as text. */
(function () {
  'use strict';

  var flower = window.flower;
  var graphs = document.getElementById('monitor-graphs');
  if (!graphs) { return; }

  function showError(message) {
    var box = document.getElementById('monitor-error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function loadGraphs() {
    var params = new URLSearchParams(new FormData(document.getElementById('monitor-options')));
    return flower.getJSON(graphs.dataset.source + '?' + params.toString())
      .then(function (data) {
        var outcomes = data.outcomes;
        ['succeeded', 'failed', 'retried'].forEach(function (outcome) {
          flower.drawLineGraph(document.getElementById('graph-' + outcome), outcomes.timestamps,
                               outcomes[outcome], 'series');
        });
        flower.drawBarGraph(document.getElementById('graph-runtime'), data.runtime.buckets,
                            data.runtime.counts, 'tasks');
        flower.drawLineGraph(document.getElementById('graph-queues'), data.queues.timestamps,
                             data.queues.queues, 'queue');
        showError('');
      })
      .catch(function (error) { showError('Could not load the graphs: ' + error.message); });
  }

  var load = flower.autoRefresh ? flower.every(flower.refreshInterval, loadGraphs) : loadGraphs;
  document.getElementById('monitor-options').addEventListener('change', load);
  load();
}());
