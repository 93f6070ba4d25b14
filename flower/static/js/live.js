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
    if (worker) { params.set('workername', worker); }
    if (COUNT_STATES[column]) { params.set('state', COUNT_STATES[column]); }
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

  if (document.getElementById('workers-table')) {
    flower.live({
      query: {types: WORKER_EVENTS.join(',')},
      handlers: handlersFor(WORKER_EVENTS, updateWorkerRow),
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
      poll: resyncRegions  /* the other regions follow --auto_refresh (see flower.js) */
    });
  }

  /* -- a task's page ------------------------------------------------------------ */

  var TIMES = ['received', 'sent', 'started', 'succeeded', 'failed', 'retried', 'revoked', 'timestamp'];
  var DETAILS = [['retries', 'Retries'], ['eta', 'ETA'], ['expires', 'Expires'], ['exchange', 'Exchange'],
                 ['routing_key', 'Routing key'], ['client', 'Client'], ['clock', 'Clock']];

  function present(value) { return value !== null && value !== undefined && value !== ''; }

  function text(value) {
    if (!present(value)) { return ''; }
    return typeof value === 'string' ? value : JSON.stringify(value);
  }

  function code(value) { return element('code', text(value)); }

  /* The rows of the task's table, in the order the server renders them. */
  function taskRows(task) {
    var rows = [];
    function add(label, field, content) {
      var cell = element('td');
      cell.id = 'field-' + field;
      cell.appendChild(content);
      rows.push([label, cell]);
    }
    var state = element('span', task.state, 'state state-' + String(task.state).replace(/[^A-Z_]/g, ''));
    add('Name', 'name', document.createTextNode(task.name || ''));
    add('UUID', 'uuid', document.createTextNode(task['task-id']));
    add('State', 'state', state);
    add('args', 'args', code(task.args));
    add('kwargs', 'kwargs', code(task.kwargs));
    add('Result', 'result', code(task.result));
    TIMES.forEach(function (field) {
      if (task[field]) { add(field.charAt(0).toUpperCase() + field.slice(1), field, timeElement(task[field])); }
    });
    if (present(task.runtime)) {
      add('Runtime', 'runtime', document.createTextNode(Number(task.runtime).toFixed(3) + ' s'));
    }
    add('Worker', 'worker', task.worker ? link('/worker/' + encodeURIComponent(task.worker), task.worker)
                                        : document.createTextNode(''));
    DETAILS.forEach(function (pair) {
      var value = task[pair[0]];
      if (!present(value)) { return; }
      var content;
      if (pair[0] === 'eta' || pair[0] === 'expires') {
        content = element('time', text(value));
        content.setAttribute('datetime', text(value));
      } else {
        content = document.createTextNode(text(value));
      }
      add(pair[1], pair[0], content);
    });
    if (task.exception) { add('Exception', 'exception', code(task.exception)); }
    if (task.traceback) {
      /* The id is the <pre>'s, as the server renders it. */
      var pre = element('pre', task.traceback, 'traceback');
      var tracebackCell = element('td');
      pre.id = 'field-traceback';
      tracebackCell.appendChild(pre);
      rows.push(['Traceback', tracebackCell]);
    }
    [['parent_id', 'Parent'], ['root_id', 'Root']].forEach(function (pair) {
      if (task[pair[0]]) { add(pair[1], pair[0], link('/task/' + encodeURIComponent(task[pair[0]]), task[pair[0]])); }
    });
    if (task.children && task.children.length) {
      add('Children', 'children', childList(task.children));
    }
    return rows;
  }

  function childList(ids) {
    var list = element('ul', undefined, 'plain');
    ids.forEach(function (id) {
      var item = element('li');
      item.appendChild(link('/task/' + encodeURIComponent(id), id));
      list.appendChild(item);
    });
    return list;
  }

  /* Rows that events do not carry (a retry's links) stay, before the children. */
  var KEPT_ROWS = ['field-retry-of', 'field-retried-as'];

  function showTask(task) {
    var tbody = document.querySelector('#task-table tbody');
    var kept = KEPT_ROWS.map(function (id) { return document.getElementById(id); })
      .filter(Boolean).map(function (cell) { return cell.closest('tr'); });
    tbody.textContent = '';
    taskRows(task).forEach(function (pair) {
      var tr = element('tr');
      tr.appendChild(element('th', pair[0]));
      tr.appendChild(pair[1]);
      tbody.appendChild(tr);
    });
    var children = document.getElementById('field-children');
    kept.forEach(function (tr) { tbody.insertBefore(tr, children ? children.closest('tr') : null); });
    var title = document.getElementById('task-title');
    title.firstChild.textContent = (task.name || 'Unknown task') + ' ';
    flower.formatTimes(tbody);
    document.dispatchEvent(new CustomEvent('flower:live'));
  }

  /* A child's change: its link joins the Children row if it is not there yet. */
  function showChild(child) {
    var id = child['task-id'];
    var cell = document.getElementById('field-children');
    if (cell) {
      var known = Array.prototype.some.call(cell.querySelectorAll('a'), function (a) { return a.textContent === id; });
      if (!known) { cell.querySelector('ul').appendChild(childList([id]).firstChild); }
      return;
    }
    var tr = element('tr');
    tr.appendChild(element('th', 'Children'));
    cell = element('td');
    cell.id = 'field-children';
    cell.appendChild(childList([id]));
    tr.appendChild(cell);
    document.querySelector('#task-table tbody').appendChild(tr);
  }

  var taskTable = document.getElementById('task-table');
  if (taskTable && taskTable.dataset.taskId) {
    var taskId = taskTable.dataset.taskId;
    flower.live({
      query: {task_id: taskId},
      handlers: handlersFor(TASK_EVENTS, function (task) {
        if (task['task-id'] === taskId) { showTask(task); } else { showChild(task); }
      }),
      resync: resyncRegions
    });
  }
}());
