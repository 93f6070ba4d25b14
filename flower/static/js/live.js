/* The pages that follow the change stream (see flower.live in flower.js): the
   workers dashboard, a worker's page and a task's page. Each change updates the
   page in place; every value from a worker or a task is inserted as text. */
(function () {
  'use strict';

  var flower = window.flower;
  var WORKER_EVENTS = ['worker-online', 'worker-heartbeat', 'worker-offline'];
  var COUNTERS = ['active', 'processed', 'failed', 'succeeded', 'retried'];
  /* Events after which a task no longer runs. */
  var FINISHED = ['task-succeeded', 'task-failed', 'task-retried', 'task-revoked', 'task-rejected'];
  var TASK_EVENTS = ['task-sent', 'task-received', 'task-started'].concat(FINISHED);

  function element(name, text, className) {
    var node = document.createElement(name);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (className) { node.className = className; }
    return node;
  }

  function link(path, text) {
    var a = element('a', text);
    a.href = flower.url(path);
    return a;
  }

  function timeElement(timestamp) {
    var time = element('time', String(timestamp));
    time.dataset.timestamp = timestamp;
    return time;
  }

  function findByData(rows, key, value) {
    return Array.prototype.find.call(rows, function (row) { return row.dataset[key] === value; });
  }

  function setStatus(span, online) {
    span.className = 'status ' + (online ? 'online' : 'offline');
    span.textContent = online ? 'Online' : 'Offline';
  }

  function handlersFor(types, handler) {
    var handlers = {};
    types.forEach(function (type) { handlers[type] = handler; });
    return handlers;
  }

  function resyncRegions() { return flower.refresh('live'); }

  /* -- the workers dashboard ----------------------------------------------- */

  /* Each counter links to the tasks table filtered by worker and this state. */
  var COUNT_STATES = {active: 'STARTED', processed: '', failed: 'FAILURE', succeeded: 'SUCCESS', retried: 'RETRY'};

  function formatCount(value) { return (Number(value) || 0).toLocaleString('en-US'); }

  function tasksUrl(worker, column) {
    var params = new URLSearchParams();
    /* In the order and the names the tasks page keeps its filters in its URL. */
    if (COUNT_STATES[column]) { params.set('state', COUNT_STATES[column]); }
    if (worker) { params.set('worker', worker); }
    var query = params.toString();
    return flower.url('/tasks' + (query ? '?' + query : ''));
  }

  /* A count cell keeps its number in data-value and shows it, separated, in its link. */
  function setCount(td, value, worker, column) {
    td.dataset.value = value;
    var a = td.querySelector('a');
    if (!a) {
      a = element('a');
      a.href = tasksUrl(worker, column);
      td.textContent = '';
      td.appendChild(a);
    }
    a.textContent = formatCount(value);
  }

  function newWorkerRow(name) {
    var tr = document.createElement('tr');
    tr.dataset.worker = name;
    var nameCell = element('td', undefined, 'worker-name');
    nameCell.appendChild(link('/worker/' + encodeURIComponent(name), name));
    tr.appendChild(nameCell);
    var statusCell = element('td');
    statusCell.dataset.column = 'status';
    statusCell.appendChild(element('span', '', 'status'));
    tr.appendChild(statusCell);
    COUNTERS.concat(['loadavg']).forEach(function (column) {
      var td = element('td', '', column === 'loadavg' ? '' : 'num');
      td.dataset.column = column;
      tr.appendChild(td);
    });
    /* Rows are sorted by name; the notes (no worker, none matching) stay last. */
    var tbody = document.querySelector('#workers-table tbody');
    var next = Array.prototype.find.call(tbody.rows, function (row) {
      return !row.dataset.worker || row.dataset.worker > name;
    });
    tbody.insertBefore(tr, next || null);
    var empty = tbody.querySelector('tr.empty:not(.filtered-out-note)');
    if (empty) { empty.remove(); }
    return tr;
  }

  /* The totals row and the summary cards, from the rows. */
  function updateSummary(table) {
    COUNTERS.forEach(function (column) {
      var sum = 0;
      table.querySelectorAll('tbody [data-column="' + column + '"]').forEach(function (td) {
        sum += parseInt(td.dataset.value, 10) || 0;
      });
      setCount(table.querySelector('tfoot [data-total="' + column + '"]'), sum, null, column);
      var card = document.querySelector('#summary-cards [data-card="' + column + '"]');
      if (card) { card.textContent = formatCount(sum); }
    });
    var online = document.querySelector('#summary-cards [data-card="online"]');
    if (online) {
      online.textContent = formatCount(table.querySelectorAll('tbody .status.online').length);
      document.querySelector('#summary-cards [data-card="workers"]').textContent =
        formatCount(table.querySelectorAll('tbody tr[data-worker]').length);
    }
  }

  function updateWorkerRow(row) {
    var table = document.getElementById('workers-table');
    var tr = findByData(table.querySelectorAll('tbody tr[data-worker]'), 'worker', row.hostname) ||
      newWorkerRow(row.hostname);
    setStatus(tr.querySelector('[data-column="status"] span'), row.status);
    COUNTERS.forEach(function (column) {
      setCount(tr.querySelector('[data-column="' + column + '"]'), row[column], row.hostname, column);
    });
    /* An offline worker's last load average is no news: blanked. */
    tr.querySelector('[data-column="loadavg"]').textContent = !row.status ? '—' : row.loadavg
      ? row.loadavg.map(function (load) { return Number(load).toFixed(2); }).join(', ') : '';
    updateSummary(table);
    document.dispatchEvent(new CustomEvent('flower:live'));
  }

  /* A worker flower forgot (--purge_offline_workers) leaves the dashboard. */
  function removeWorkerRow(row) {
    var table = document.getElementById('workers-table');
    var tr = findByData(table.querySelectorAll('tbody tr[data-worker]'), 'worker', row.hostname);
    if (!tr) { return; }
    tr.remove();
    updateSummary(table);
    document.dispatchEvent(new CustomEvent('flower:live'));
  }

  if (document.getElementById('workers-table')) {
    var dashboardHandlers = handlersFor(WORKER_EVENTS, updateWorkerRow);
    dashboardHandlers['worker-forgotten'] = removeWorkerRow;
    flower.live({
      query: {types: WORKER_EVENTS.concat(['worker-forgotten']).join(',')},
      handlers: dashboardHandlers,
      resync: resyncRegions
    });
  }

  /* -- a worker's page --------------------------------------------------------- */

  function updateWorkerHeader(row) {
    setStatus(document.querySelector('#worker-status .status'), row.status);
    var lastSeen = document.getElementById('worker-last-seen');
    if (row.last_seen) {
      lastSeen.querySelector('time').dataset.heard = row.last_seen;  /* shown by heard.js */
      lastSeen.hidden = false;
    }
    COUNTERS.forEach(function (column) {
      document.querySelector('#worker-counters [data-column="' + column + '"]').textContent =
        formatCount(row[column]);
    });    document.dispatchEvent(new CustomEvent('flower:live'));
  }

  /* A table of the Tasks tab (active, reserved) shows "None." when it has no task. */
  function noteIfEmpty(tbody) {
    var rows = tbody.querySelectorAll('tr[data-task]');
    var note = tbody.querySelector('tr.empty');
    if (!rows.length && !note) {
      var tr = element('tr', undefined, 'empty');
      var td = element('td', 'None.');
      td.colSpan = 5;
      tr.appendChild(td);
      tbody.appendChild(tr);
    } else if (rows.length && note) {
      note.remove();
    }
  }

  function removeTaskRow(section, uuid) {
    var tbody = document.querySelector('#' + section + '-table tbody');
    if (!tbody) { return; }
    var tr = findByData(tbody.querySelectorAll('tr[data-task]'), 'task', uuid);
    if (tr) {
      tr.remove();
      noteIfEmpty(tbody);
    }
  }

  function countProcessed(name) {
    var tbody = document.querySelector('#processed-table tbody');
    if (!tbody || !name) { return; }
    var tr = findByData(tbody.querySelectorAll('tr[data-task-name]'), 'taskName', name);
    if (!tr) {
      tr = document.createElement('tr');
      tr.dataset.taskName = name;
      tr.appendChild(element('td', name));
      tr.appendChild(element('td', '0', 'num'));
      tbody.appendChild(tr);
      var note = tbody.querySelector('tr.empty');
      if (note) { note.remove(); }
    }
    var count = tr.querySelector('td.num');
    count.textContent = formatCount((parseInt(count.textContent.replace(/,/g, ''), 10) || 0) + 1);
  }

  function taskStarted(task) {
    var uuid = task['task-id'];
    var tbody = document.querySelector('#active-table tbody');
    removeTaskRow('reserved', uuid);
    countProcessed(task.name);
    if (!tbody || findByData(tbody.querySelectorAll('tr[data-task]'), 'task', uuid)) { return; }
    var tr = document.createElement('tr');
    tr.dataset.task = uuid;
    tr.appendChild(element('td', task.name || ''));
    var idCell = element('td');
    idCell.appendChild(link('/task/' + encodeURIComponent(uuid), uuid));
    tr.appendChild(idCell);
    tr.appendChild(element('td', task.args, 'task-args'));
    tr.appendChild(element('td', task.kwargs, 'task-kwargs'));
    var started = element('td');
    if (task.started) { started.appendChild(timeElement(task.started)); }
    tr.appendChild(started);
    tbody.appendChild(tr);
    noteIfEmpty(tbody);
    flower.formatTimes(tr);
  }

  var workerTitle = document.getElementById('worker-name');
  if (workerTitle && workerTitle.dataset.worker) {
    var workerHandlers = handlersFor(WORKER_EVENTS, updateWorkerHeader);
    workerHandlers['task-started'] = taskStarted;
    FINISHED.forEach(function (type) {
      workerHandlers[type] = function (task) { removeTaskRow('active', task['task-id']); };
    });
    flower.live({
      query: {workername: workerTitle.dataset.worker},
      handlers: workerHandlers,
      resync: function () { return flower.refresh(); },
      /* Polling takes the regions events do not update too: one request, one inspection. */
      poll: function () { return flower.refresh('auto live'); }
    });
  }

  /* -- a task's page ------------------------------------------------------------ */

  /* The server renders the task's fields (names and states of its relatives, the
     durations between its steps): a change to the task or a child fetches them again,
     one request at a time, the last change always followed by one. */
  var refreshing = null;
  var again = false;
  function refreshTask() {
    if (refreshing) { again = true; return refreshing; }
    refreshing = resyncRegions().finally(function () {
      refreshing = null;
      if (again) { again = false; refreshTask(); }
    });
    return refreshing;
  }

  var taskTable = document.getElementById('task-table');
  if (taskTable && taskTable.dataset.taskId) {
    flower.live({
      query: {task_id: taskTable.dataset.taskId},
      handlers: handlersFor(TASK_EVENTS, refreshTask),
      resync: resyncRegions
    });
  }
}());
