/* The monitor page: outcome, runtime and queue graphs. /monitor/data gives the
   counts once (and again when the options change); after that the page counts the
   tasks that succeed, fail or retry from the change stream itself. Queue lengths,
   which Flower samples, are asked for every 10 seconds with --auto_refresh.
   Labels (task names, worker names, queue names) are inserted as text. */
(function () {
  'use strict';

  var flower = window.flower;
  var graphs = document.getElementById('monitor-graphs');
  if (!graphs) { return; }

  var OUTCOMES = ['succeeded', 'failed', 'retried'];
  var QUEUE_SAMPLE_MS = 10000;
  var data = null;
  /* Tasks counted as retried, by id: a task that retries again moves to its latest retry. */
  var retried = new Map();

  function showError(message) {
    var box = document.getElementById('monitor-error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function options() {
    return new URLSearchParams(new FormData(document.getElementById('monitor-options')));
  }

  function draw() {
    var outcomes = data.outcomes;
    OUTCOMES.forEach(function (outcome) {
      flower.drawLineGraph(document.getElementById('graph-' + outcome), outcomes.timestamps,
                           outcomes[outcome], 'series', 'tasks per ' + stepText());
    });
    flower.drawBarGraph(document.getElementById('graph-runtime'), data.runtime.buckets,
                        data.runtime.counts, 'tasks');
    drawQueues();
  }

  function drawQueues() {
    flower.drawLineGraph(document.getElementById('graph-queues'), data.queues.timestamps,
                         data.queues.queues, 'queue', 'messages');
  }

  function loadGraphs() {
    return flower.getJSON(graphs.dataset.source + '?' + options().toString())
      .then(function (answer) {
        data = answer;
        retried.clear();
        document.body.dataset.liveSince = answer.last_event_id;
        draw();
        showError('');
      })
      .catch(function (error) { showError('Could not load the graphs: ' + error.message); });
  }

  /* -- counting from the stream ------------------------------------------------- */

  /* A time bucket's length, as the y axes' unit says it: "15 s", "1 min", "24 min". */
  function stepText() {
    var seconds = Math.round(step());
    return seconds % 60 ? seconds + ' s' : seconds / 60 + ' min';
  }

  function step() {
    return data.window / data.outcomes.timestamps.length;
  }

  /* Move the time buckets on until the last one ends at or after `moment`. */
  function slideTo(moment) {
    var times = data.outcomes.timestamps;
    var moved = false;
    while (times.length && moment > times[times.length - 1]) {
      times.push(times[times.length - 1] + step());
      times.shift();
      OUTCOMES.forEach(function (outcome) {
        Object.keys(data.outcomes[outcome]).forEach(function (label) {
          var series = data.outcomes[outcome][label];
          series.push(0);
          series.shift();
          if (!series.some(Boolean)) { delete data.outcomes[outcome][label]; }
        });
      });
      moved = true;
    }
    if (moved) {
      retried.forEach(function (seen, uuid) {
        if (seen.moment <= times[0] - step()) { retried.delete(uuid); }
      });
    }
    return moved;
  }

  /* The bucket of `moment`, or -1 when it is before the window. */
  function bucketOf(moment) {
    var index = Math.ceil((moment - data.outcomes.timestamps[0]) / step());
    return index < 0 ? -1 : index;
  }

  function addTo(outcome, label, moment, amount) {
    var index = bucketOf(moment);
    if (index < 0) { return; }
    var series = data.outcomes[outcome][label];
    if (!series) {
      series = data.outcomes[outcome][label] = data.outcomes.timestamps.map(function () { return 0; });
    }
    series[index] += amount;
  }

  function countOutcome(outcome, task) {
    var moment = task[outcome];
    if (!data || typeof moment !== 'number') { return; }
    slideTo(moment);
    var label = document.getElementById('monitor-group-by').value === 'worker'
      ? task.worker || 'unknown worker' : task.name || 'unknown task';
    if (outcome === 'retried') {
      var earlier = retried.get(task['task-id']);
      if (earlier) { addTo('retried', earlier.label, earlier.moment, -1); }
      retried.set(task['task-id'], {label: label, moment: moment});
    }
    addTo(outcome, label, moment, 1);
    if (outcome === 'succeeded' && typeof task.runtime === 'number') {
      var edges = data.runtime.edges;
      var index = edges.findIndex(function (edge) { return task.runtime <= edge; });
      data.runtime.counts[index < 0 ? edges.length : index] += 1;
    }
    draw();
  }

  var handlers = {};
  OUTCOMES.forEach(function (outcome) {
    handlers['task-' + outcome] = function (task) { countOutcome(outcome, task); };
  });

  loadGraphs().then(function () {
    var follower = flower.live({
      query: {types: OUTCOMES.map(function (outcome) { return 'task-' + outcome; }).join(',')},
      handlers: handlers,
      resync: loadGraphs
    });
    /* New options: new counts from the server, then the stream from there. */
    document.getElementById('monitor-options').addEventListener('change', follower.reload);
  });

  /* The window moves on with time even when no task finishes. */
  window.setInterval(function () {
    if (data && slideTo(Date.now() / 1000)) { draw(); }
  }, 5000);

  if (flower.autoRefresh) {
    flower.every(QUEUE_SAMPLE_MS, function () {
      if (!data) { return; }
      return flower.getJSON(graphs.dataset.source + '?parts=queues').then(function (answer) {
        data.queues = answer.queues;
        drawQueues();
      });
    });
  }
}());
