/* The monitor page: outcome, runtime and queue graphs drawn from /monitor/data.
   Labels (task names, worker names, queue names) are inserted as text. */
(function () {
  'use strict';

  var flower = window.flower;
  var graphs = document.getElementById('monitor-graphs');
  if (!graphs) { return; }

  function drawBars(figure, runtime) {
    var svg = figure.querySelector('svg');
    var width = 800, height = 240, left = 48, bottom = 40, top = 12;
    var highest = Math.max.apply(null, runtime.counts.concat([1]));
    var slot = (width - left) / runtime.counts.length;
    svg.replaceChildren();
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.appendChild(flower.svgElement('text', {x: left - 6, y: top + 4, 'text-anchor': 'end'}, String(highest)));
    runtime.counts.forEach(function (count, index) {
      var barHeight = count / highest * (height - top - bottom);
      var x = left + index * slot;
      var bar = flower.svgElement('rect', {x: (x + 2).toFixed(1), y: (height - bottom - barHeight).toFixed(1),
                                           width: (slot - 4).toFixed(1), height: barHeight.toFixed(1),
                                           'class': 'bar', 'data-count': count});
      bar.appendChild(flower.svgElement('title', {}, runtime.buckets[index] + ': ' + count + ' tasks'));
      svg.appendChild(bar);
      svg.appendChild(flower.svgElement('text', {x: (x + slot / 2).toFixed(1), y: height - bottom + 14,
                                                 'text-anchor': 'middle'}, runtime.buckets[index]));
    });
  }

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
        drawBars(document.getElementById('graph-runtime'), data.runtime);
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
