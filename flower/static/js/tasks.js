/* The tasks table: pages, sorting, filters and search are done by the server
   (/tasks/datatable); this file asks for one page at a time and shows it.
   Every value is inserted as text. The column order is the user's, kept in
   localStorage, as are the columns the user hid (the column menu). The filters,
   search, sort, page and page size live in the URL's query string, so a reload
   or a shared link shows the same rows. Rows can be selected, one by one or as
   "all N matching" (the current filters and search), for the bulk actions. */
(function () {
  'use strict';

  var flower = window.flower;
  var table = document.getElementById('tasks-table');
  if (!table) { return; }

  var TITLES = {
    name: 'Name', uuid: 'UUID', state: 'State', args: 'args', kwargs: 'kwargs',
    result: 'Result', received: 'Received', started: 'Started', runtime: 'Runtime',
    worker: 'Worker', retries: 'Retries', revoked: 'Revoked', exception: 'Exception',
    expires: 'Expires', eta: 'ETA'
  };
  var TIMESTAMPS = {received: true, started: true, revoked: true};
  var DATES = {eta: true, expires: true};
  var ORDER_KEY = 'flower.tasks.columns';
  var HIDDEN_KEY = 'flower.tasks.hidden';
  var DEFAULT_LENGTH = 25;
  /* No sort asked for: the server lists the newest tasks first, shown as received ▼. */
  var NEWEST_FIRST = {column: 'received', dir: 'desc'};

  var available = table.dataset.columns.split(',');
  var filters = document.getElementById('task-filters');
  var view = {
    columns: savedColumnOrder(),
    hidden: savedHidden(),  /* {name: true} */
    start: 0,
    length: DEFAULT_LENGTH,
    sort: null,            /* {column: name, dir: 'asc'|'desc'}, null: newest first */
    draw: 0
  };

  /* The saved order, minus columns no longer shown, plus new ones at the end. */
  function savedColumnOrder() {
    var saved = [];
    try { saved = JSON.parse(window.localStorage.getItem(ORDER_KEY)) || []; } catch (e) { saved = []; }
    var order = saved.filter(function (name) { return available.indexOf(name) !== -1; });
    available.forEach(function (name) { if (order.indexOf(name) === -1) { order.push(name); } });
    return order;
  }

  function savedHidden() {
    var hidden = {};
    try {
      (JSON.parse(window.localStorage.getItem(HIDDEN_KEY)) || []).forEach(function (name) {
        if (available.indexOf(name) !== -1) { hidden[name] = true; }
      });
    } catch (e) { hidden = {}; }
    if (Object.keys(hidden).length >= available.length) { hidden = {}; }
    return hidden;
  }

  function saveColumnOrder() {
    try {
      window.localStorage.setItem(ORDER_KEY, JSON.stringify(view.columns));
      window.localStorage.setItem(HIDDEN_KEY, JSON.stringify(Object.keys(view.hidden)));
    } catch (e) { /* private mode */ }
  }

  /* The columns shown, in the user's order. */
  function shownColumns() {
    return view.columns.filter(function (name) { return !view.hidden[name]; });
  }

  function currentSort() { return view.sort || NEWEST_FIRST; }

  /* -- header: sorting and drag and drop --------------------------------- */

  var dragged = null;

  function renderHeader() {
    var row = table.tHead.rows[0];
    row.textContent = '';
    var all = document.createElement('th');
    all.className = 'select';
    all.appendChild(checkbox('select-page', 'Select the tasks of this page'));
    row.appendChild(all);
    var sort = currentSort();
    shownColumns().forEach(function (name) {
      var th = document.createElement('th');
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'sort-button';
      button.textContent = TITLES[name] || name;
      th.appendChild(button);
      th.dataset.column = name;
      th.draggable = true;
      th.className = 'sortable';
      th.setAttribute('aria-sort', 'none');
      if (sort.column === name) {
        th.classList.add(sort.dir === 'asc' ? 'sorted-asc' : 'sorted-desc');
        th.setAttribute('aria-sort', sort.dir === 'asc' ? 'ascending' : 'descending');
      }
      row.appendChild(th);
    });
    var actions = document.createElement('th');
    actions.className = 'row-actions';
    row.appendChild(actions);
  }

  table.tHead.addEventListener('click', function (event) {
    var th = event.target.closest('th');
    if (!th || !th.dataset.column) { return; }
    var name = th.dataset.column;
    var sort = currentSort();
    var dir = sort.column === name && sort.dir === 'asc' ? 'desc' : 'asc';
    view.sort = {column: name, dir: dir};
    view.start = 0;
    renderHeader();
    table.tHead.querySelector('th[data-column="' + name + '"] button').focus();
    load();
  });
  table.tHead.addEventListener('dragstart', function (event) {
    var th = event.target.closest('th');
    dragged = th && th.dataset.column;
    if (dragged) { event.dataTransfer.setData('text/plain', dragged); }
  });
  table.tHead.addEventListener('dragover', function (event) {
    if (dragged) { event.preventDefault(); }
  });
  table.tHead.addEventListener('drop', function (event) {
    var th = event.target.closest('th');
    event.preventDefault();
    if (!dragged || !th || !th.dataset.column || th.dataset.column === dragged) { dragged = null; return; }
    /* Moving right lands after the target, moving left before it. */
    var to = view.columns.indexOf(th.dataset.column);
    view.columns.splice(view.columns.indexOf(dragged), 1);
    view.columns.splice(to, 0, dragged);
    dragged = null;
    columnsChanged();
  });

  /* -- rows ----------------------------------------------------------------- */

  var lastRows = [];
  var lastTotal = 0;

  function link(path, text) {
    var a = document.createElement('a');
    a.href = flower.url(path);
    a.textContent = text;
    return a;
  }

  function cell(task, name) {
    var td = document.createElement('td');
    var value = task[name];
    td.className = 'column-' + name;
    if (value === null || value === undefined || value === '') { return td; }
    if (!TIMESTAMPS[name] && !DATES[name]) {  /* cells are cut short; a time has its own tooltip */
      td.title = typeof value === 'string' ? value : JSON.stringify(value);
    }
    if (name === 'uuid') {
      td.appendChild(link('/task/' + encodeURIComponent(value), value));
    } else if (name === 'name') {
      td.appendChild(link('/task/' + encodeURIComponent(task.uuid), value));
    } else if (name === 'worker') {
      td.appendChild(link('/worker/' + encodeURIComponent(value), value));
    } else if (name === 'state') {
      var badge = document.createElement('span');
      badge.className = 'state state-' + String(value).replace(/[^A-Z_]/g, '');
      badge.textContent = value;
      td.appendChild(badge);
    } else if (TIMESTAMPS[name] || DATES[name]) {
      var time = document.createElement('time');
      if (TIMESTAMPS[name]) { time.dataset.timestamp = value; } else { time.setAttribute('datetime', value); }
      time.textContent = value;
      td.appendChild(time);
    } else if (name === 'runtime') {
      td.textContent = Number(value).toFixed(3) + ' s';
      td.classList.add('num');
    } else {
      td.textContent = typeof value === 'string' ? value : JSON.stringify(value);
    }
    return td;
  }

  function checkbox(className, label) {
    var input = document.createElement('input');
    input.type = 'checkbox';
    input.className = className;
    input.setAttribute('aria-label', label);
    return input;
  }

  var RETRYABLE = {FAILURE: true, REVOKED: true, REJECTED: true};

  /* The row's own actions: Retry, for the states a task may be retried from. */
  function actionsCell(task) {
    var td = document.createElement('td');
    td.className = 'row-actions';
    if (RETRYABLE[task.state]) {
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'button small row-retry';
      button.textContent = 'Retry';
      button.disabled = selection.readOnly;
      td.appendChild(button);
    }
    return td;
  }

  function renderRows(rows, total) {
    lastRows = rows;
    lastTotal = total;
    var body = table.tBodies[0];
    body.textContent = '';
    rows.forEach(function (task) {
      var tr = document.createElement('tr');
      tr.dataset.uuid = task.uuid;
      var select = document.createElement('td');
      select.className = 'select';
      var box = checkbox('select-row', 'Select task ' + task.uuid);
      box.checked = selection.matching || selection.ids.hasOwnProperty(task.uuid);
      select.appendChild(box);
      tr.appendChild(select);
      shownColumns().forEach(function (name) { tr.appendChild(cell(task, name)); });
      tr.appendChild(actionsCell(task));
      body.appendChild(tr);
    });
    showSelection();
    if (!rows.length) {
      var tr = document.createElement('tr');
      var td = document.createElement('td');
      tr.className = 'empty';
      td.colSpan = shownColumns().length + 2;
      /* Nothing at all is not the same as nothing matching: say which. */
      td.textContent = total ? 'No tasks match the filters and search.'
        : 'No tasks received yet. Workers send task events only when started with -E ' +
          '(--task-events), or once told to with "celery control enable_events".';
      tr.appendChild(td);
      body.appendChild(tr);
    }
    flower.formatTimes(body);
  }

  /* atLeast: the server stopped counting a search's matches there ("1,000+"). */
  function renderInfo(filtered, total, atLeast) {
    selection.filtered = filtered;
    selection.atLeast = atLeast;
    showSelection();
    var info = document.getElementById('tasks-info');
    var first = filtered ? view.start + 1 : 0;
    var last = Math.min(view.start + view.length, filtered);
    function count(value) { return value.toLocaleString('en-US'); }
    info.textContent = 'Showing ' + count(first) + ' to ' + count(last) + ' of ' + count(filtered) +
      (atLeast ? '+' : '') + ' tasks' +
      (filtered !== total ? ' (filtered from ' + count(total) + ')' : '');
    document.getElementById('tasks-previous').disabled = view.start === 0;
    document.getElementById('tasks-next').disabled = last >= filtered;
    flower.renderPager(document.getElementById('tasks-pages'), Math.floor(view.start / view.length) + 1,
                       Math.ceil(filtered / view.length), function (page) {
                         view.start = (page - 1) * view.length;
                         load();
                       });
  }

  /* -- the request ---------------------------------------------------------- */

  /* datetime-local (browser time) → 'YYYY-MM-DD HH:MM' in UTC, as the server expects. */
  function utcMinute(value) {
    var date = new Date(value);
    if (isNaN(date.getTime())) { return ''; }
    return date.toISOString().slice(0, 16).replace('T', ' ');
  }

  function query() {
    var params = new URLSearchParams();
    params.set('draw', ++view.draw);
    params.set('start', view.start);
    params.set('length', view.length);
    var columns = shownColumns();
    if (view.sort && columns.indexOf(view.sort.column) === -1) { columns.push(view.sort.column); }
    columns.forEach(function (name, index) { params.set('columns[' + index + '][data]', name); });
    if (view.sort) {
      params.set('order[0][column]', columns.indexOf(view.sort.column));
      params.set('order[0][dir]', view.sort.dir);
    }
    new FormData(filters).forEach(function (value, key) {
      if (!value) { return; }
      if (key === 'search') { params.set('search[value]', value); }
      else if (/_(start|end)$/.test(key)) { params.set(key, utcMinute(value)); }
      else { params.set(key, value); }
    });
    return params;
  }

  function showError(message) {
    var box = document.getElementById('tasks-error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  /* Under the search box: what the server could not read (a 400), or read but
     probably not as meant (its warnings); hidden when all is well. */
  function showSearchFeedback(problems, isError) {
    var box = document.getElementById('search-feedback');
    var list = document.getElementById('search-problems');
    list.textContent = '';
    problems.forEach(function (problem) {
      var item = document.createElement('li');
      item.textContent = problem;
      list.appendChild(item);
    });
    box.classList.toggle('error', Boolean(isError));
    box.hidden = !problems.length;
  }

  function requestPage() {
    var params = query();
    var draw = view.draw;
    writeUrl();
    return flower.getJSON(flower.url('/tasks/datatable') + '?' + params.toString())
      .then(function (answer) {
        if (answer.draw !== draw) { return; }  /* a newer request is on its way */
        showError('');
        showSearchFeedback(answer.warnings || [], false);
        renderRows(answer.data, answer.recordsTotal);
        renderInfo(answer.recordsFiltered, answer.recordsTotal, answer.recordsFilteredAtLeast);
        forgetShown(answer.data);
        document.body.classList.remove('stale');
      })
      .catch(function (error) {
        if (error.status === 400) {
          showError('');
          showSearchFeedback([error.message], true);
        } else {
          showError('Could not load tasks: ' + error.message);
        }
      });
  }

  /* -- the view in the URL ------------------------------------------------------ */

  var FILTER_KEYS = ['search', 'state', 'worker', 'taskname',
                     'received_start', 'received_end', 'started_start', 'started_end'];

  /* 'YYYY-MM-DD HH:MM' in UTC (the URL's, as the API's) → a datetime-local value. */
  function localMinute(value) {
    var date = new Date(value.replace(' ', 'T') + 'Z');
    if (isNaN(date.getTime())) { return ''; }
    function two(number) { return (number < 10 ? '0' : '') + number; }
    return date.getFullYear() + '-' + two(date.getMonth() + 1) + '-' + two(date.getDate()) +
      'T' + two(date.getHours()) + ':' + two(date.getMinutes());
  }

  /* The filters, search, sort (-column: descending), page (from 1) and page size,
     defaults left out, in place of the URL's query string. */
  function writeUrl() {
    var params = new URLSearchParams();
    new FormData(filters).forEach(function (value, key) {
      if (FILTER_KEYS.indexOf(key) === -1) { return; }
      if (/_(start|end)$/.test(key)) { value = utcMinute(value); }
      if (value) { params.set(key, value); }
    });
    if (view.sort) { params.set('sort', (view.sort.dir === 'desc' ? '-' : '') + view.sort.column); }
    if (view.start) { params.set('page', Math.floor(view.start / view.length) + 1); }
    if (view.length !== DEFAULT_LENGTH) { params.set('length', view.length); }
    var text = params.toString();
    window.history.replaceState(window.history.state, '',
      window.location.pathname + (text ? '?' + text : '') + window.location.hash);
  }

  function readUrl() {
    var params = new URLSearchParams(window.location.search);
    FILTER_KEYS.forEach(function (key) {
      var value = params.get(key);
      var field = filters.elements[key];
      if (value === null || !field) { return; }
      if (/_(start|end)$/.test(key)) { value = localMinute(value); }
      if (field.tagName === 'SELECT' && !Array.prototype.some.call(field.options, function (option) {
        return option.value === value;
      })) {
        /* A worker or task name not seen yet: still the filter the link asks for. */
        var option = document.createElement('option');
        option.value = option.textContent = value;
        field.appendChild(option);
      }
      field.value = value;
    });
    var sort = params.get('sort') || '';
    var descending = sort.charAt(0) === '-';
    var column = descending ? sort.slice(1) : sort;
    if (available.indexOf(column) !== -1) { view.sort = {column: column, dir: descending ? 'desc' : 'asc'}; }
    var lengths = document.getElementById('tasks-length');
    var length = params.get('length');
    if (Array.prototype.some.call(lengths.options, function (option) { return option.value === length; })) {
      lengths.value = length;
      view.length = parseInt(length, 10);
    }
    var page = parseInt(params.get('page'), 10);
    if (page > 1) { view.start = (page - 1) * view.length; }
  }

  /* -- live updates ----------------------------------------------------------- */

  /* With EventSource, the table follows the server's change stream (/tasks/live,
     the same filters as the table): a change to a task on this page, or a new task
     while the first page is shown newest first, loads the page again (at most once
     per LIVE_DELAY ms). While paused, or while the pointer is over the table (the
     user is reading), rows do not move: a notice counts the new tasks instead.
     Without EventSource, the page is polled as before. */
  var LIVE_DELAY = 250;
  var live = {
    source: null, paused: false, reading: false, unseen: {}, timer: null,
    toggle: document.getElementById('tasks-live'),
    notice: document.getElementById('tasks-new')
  };

  function onTopOfNewest() {
    return view.start === 0 && !view.sort;
  }

  function showNotice() {
    var count = Object.keys(live.unseen).length;
    live.notice.hidden = !count;
    live.notice.textContent = count === 1 ? '1 new task: show' : count + ' new tasks: show';
  }

  /* Tasks the page now shows are no longer new. */
  function forgetShown(rows) {
    rows.forEach(function (row) { delete live.unseen[row.uuid]; });
    showNotice();
  }

  function reloadSoon() {
    if (live.timer === null) {
      live.timer = window.setTimeout(function () { live.timer = null; load(); }, LIVE_DELAY);
    }
  }

  function showUnseen() {
    live.unseen = {};
    showNotice();
    reloadSoon();
  }

  function onTaskChange(event) {
    var task;
    try { task = JSON.parse(event.data); } catch (e) { return; }
    var uuid = task['task-id'] || task.uuid;
    var shown = lastRows.some(function (row) { return row.uuid === uuid; });
    if (!shown && !onTopOfNewest()) { return; }
    if (!shown && (live.paused || live.reading)) {
      live.unseen[uuid] = true;
      showNotice();
      return;
    }
    if (!live.paused) { reloadSoon(); }
  }

  /* The stream's filters are the table's, spelled as the API spells them. */
  function liveQuery() {
    var params = new URLSearchParams();
    new FormData(filters).forEach(function (value, key) {
      if (!value) { return; }
      if (key === 'worker') { params.set('workername', value); }
      else if (/_(start|end)$/.test(key)) { params.set(key, utcMinute(value)); }
      else { params.set(key, value); }
    });
    return params;
  }

  /* The table's data-live says whether the stream is open: connecting, open, retrying,
     closed (refused: a session that ended);
     #tasks-live-state shows it. */
  var LIVE_TEXT = {connecting: 'connecting', open: 'live', retrying: 'reconnecting', closed: 'closed'};
  function showLive(state) {
    table.dataset.live = state;
    var shown = document.getElementById('tasks-live-state');
    shown.textContent = LIVE_TEXT[state];
    shown.dataset.state = state;
    shown.hidden = false;
  }

  function listen() {
    if (live.source) { live.source.close(); }
    showLive('connecting');
    live.source = new window.EventSource(flower.url('/tasks/live') + '?' + liveQuery().toString());
    live.source.addEventListener('open', function () { showLive('open'); });
    live.source.addEventListener('error', function (event) {
      showLive(event.target.readyState === window.EventSource.CLOSED ? 'closed' : 'retrying');
    });
    ['task-sent', 'task-received', 'task-started', 'task-succeeded', 'task-failed',
     'task-rejected', 'task-revoked', 'task-retried'].forEach(function (kind) {
      live.source.addEventListener(kind, onTaskChange);
    });
    live.source.addEventListener('reset', reloadSoon);
    live.source.addEventListener('lagged', reloadSoon);
  }

  var streaming = typeof window.EventSource === 'function';
  live.toggle.hidden = !streaming;
  if (streaming) {
    live.toggle.querySelector('input').addEventListener('change', function (event) {
      live.paused = !event.target.checked;
      if (!live.paused) { showUnseen(); }
    });
    live.notice.addEventListener('click', showUnseen);
    table.addEventListener('mouseenter', function () { live.reading = true; });
    table.addEventListener('mouseleave', function () {
      live.reading = false;
      if (!live.paused && Object.keys(live.unseen).length) { showUnseen(); }
    });
  }

  /* -- selection and bulk actions ------------------------------------------ */

  /* Selected ids (kept across pages and reloads), or every task matching the
     filters ("matching": the server selects them again when acting). */
  var bulkForm = document.getElementById('tasks-bulk');
  var selection = {
    ids: {}, matching: false, filtered: 0,
    readOnly: bulkForm.dataset.readOnly === 'true'
  };

  function selectedCount() {
    return selection.matching ? selection.filtered : Object.keys(selection.ids).length;
  }

  function plural(count) { return count === 1 ? '1 task' : count + ' tasks'; }
  /* The tasks "select all matching" stands for, "1000+ tasks" when counting stopped. */
  function matchingTasks(count) { return selection.atLeast ? count + '+ tasks' : plural(count); }

  function showSelection() {
    var count = selectedCount();
    document.getElementById('bulk-selection').textContent = selection.matching
      ? 'All ' + matchingTasks(count) + ' matching the filters selected'
      : (count ? plural(count) + ' selected' : 'No task selected');
    var matchAll = document.getElementById('bulk-select-matching');
    matchAll.hidden = !selection.filtered;
    matchAll.textContent = selection.matching ? 'Clear selection'
      : 'Select all ' + selection.filtered + (selection.atLeast ? '+' : '') + ' matching';
    bulkForm.querySelectorAll('button[data-action]').forEach(function (button) {
      button.disabled = selection.readOnly || !count;
    });
    var boxes = table.tBodies[0].querySelectorAll('input.select-row');
    var page = table.tHead.querySelector('input.select-page');
    if (page) {
      page.checked = boxes.length > 0 && Array.prototype.every.call(boxes, function (box) { return box.checked; });
    }
  }

  function clearSelection() {
    selection.ids = {};
    selection.matching = false;
    table.tBodies[0].querySelectorAll('input.select-row').forEach(function (box) { box.checked = false; });
    showSelection();
  }

  function selectRow(box, on) {
    var uuid = box.closest('tr').dataset.uuid;
    box.checked = on;
    if (on) { selection.ids[uuid] = true; } else { delete selection.ids[uuid]; }
  }

  table.addEventListener('change', function (event) {
    var box = event.target;
    if (!box.matches('input.select-row, input.select-page')) { return; }
    if (selection.matching) {
      /* Leaving "all matching": keep this page's rows, as they are shown. */
      selection.matching = false;
      selection.ids = {};
      table.tBodies[0].querySelectorAll('input.select-row').forEach(function (row) {
        if (row !== box) { selectRow(row, true); }
      });
    }
    if (box.matches('input.select-page')) {
      table.tBodies[0].querySelectorAll('input.select-row').forEach(function (row) {
        selectRow(row, box.checked);
      });
    } else {
      selectRow(box, box.checked);
    }
    showSelection();
  });

  document.getElementById('bulk-select-matching').addEventListener('click', function () {
    if (selection.matching) { clearSelection(); return; }
    selection.matching = true;
    selection.ids = {};
    table.tBodies[0].querySelectorAll('input.select-row').forEach(function (box) { box.checked = true; });
    showSelection();
  });

  /* The table's filters as a bulk action's JSON body spells them (as /api/tasks does). */
  function filterBody() {
    var body = {};
    liveQuery().forEach(function (value, key) { body[key] = value; });
    body.search = body.search || '';
    return body;
  }

  function xsrfToken() {
    return bulkForm.querySelector('input[name="_xsrf"]').value;
  }

  function post(path, init) {
    init.method = 'POST';
    init.headers = Object.assign({'Accept': 'application/json', 'X-XSRFToken': xsrfToken()}, init.headers);
    return flower.getJSON(flower.url(path), init);
  }

  function failed(error) {
    flower.showReply(error.status ? error.message : 'Request failed: ' + error.message, false);
  }

  var DONE = {revoke: 'Revoked', terminate: 'Terminated', retry: 'Retried'};

  function summary(action, answer) {
    var counts = {};
    answer.tasks.forEach(function (task) { counts[task.outcome] = (counts[task.outcome] || 0) + 1; });
    var done = answer.tasks.length - (counts.refused || 0);
    var text = DONE[action] + ' ' + plural(done) + '.';
    if (counts.refused) {
      var first = answer.tasks.filter(function (task) { return task.outcome === 'refused'; })[0];
      text += ' ' + plural(counts.refused) + ' refused: ' + first.error;
    }
    return text;
  }

  bulkForm.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-action]');
    if (!button || button.disabled) { return; }
    var action = button.dataset.action;
    var count = selectedCount();
    var what = selection.matching ? 'all ' + matchingTasks(count) + ' matching the filters' : plural(count);
    if (!window.confirm(button.textContent + ' ' + what + '?')) { return; }
    var body = selection.matching ? filterBody() : {ids: Object.keys(selection.ids)};
    button.disabled = true;
    post('/control/tasks/' + action, {body: JSON.stringify(body), headers: {'Content-Type': 'application/json'}})
      .then(function (answer) {
        clearSelection();
        flower.showReply(summary(action, answer), true);
        load();
      }, failed)
      .finally(showSelection);
  });

  table.tBodies[0].addEventListener('click', function (event) {
    var button = event.target.closest('button.row-retry');
    if (!button) { return; }
    var uuid = button.closest('tr').dataset.uuid;
    if (!window.confirm('Retry task ' + uuid + '? A new task is sent with its name, arguments and queue.')) { return; }
    button.disabled = true;
    var form = new URLSearchParams();
    form.set('_xsrf', xsrfToken());
    post('/control/task/retry/' + encodeURIComponent(uuid), {body: form})
      .then(function (answer) {
        var retry = answer['task-id'];
        flower.showReply('Retried as', true, {href: flower.url('/task/' + encodeURIComponent(retry)), text: retry});
        load();
      }, failed)
      .finally(function () { button.disabled = selection.readOnly; });
  });

  /* -- wiring --------------------------------------------------------------- */

  var load = flower.autoRefresh && !streaming
    ? flower.every(flower.refreshInterval, requestPage) : requestPage;

  function filtersChanged() {
    clearSelection();
    view.start = 0;
    live.unseen = {};
    showNotice();
    load();
    if (streaming) { listen(); }
  }

  var typing = null;
  document.getElementById('task-filters').addEventListener('input', function () {
    window.clearTimeout(typing);
    typing = window.setTimeout(filtersChanged, 250);
  });
  document.getElementById('task-filters').addEventListener('submit', function (event) {
    event.preventDefault();
    filtersChanged();
  });
  document.getElementById('tasks-previous').addEventListener('click', function () {
    view.start = Math.max(0, view.start - view.length);
    load();
  });
  document.getElementById('tasks-next').addEventListener('click', function () {
    view.start += view.length;
    load();
  });
  document.getElementById('tasks-length').addEventListener('change', function (event) {
    view.length = parseInt(event.target.value, 10);
    view.start = 0;
    load();
  });

  /* -- the column menu: show, hide and move columns from the keyboard --------- */

  var columnList = document.getElementById('column-list');

  function columnsChanged() {
    saveColumnOrder();
    renderHeader();
    renderRows(lastRows, lastTotal);
    renderColumnMenu();
    load();
  }

  function menuButton(text, label, move) {
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'button small';
    button.textContent = text;
    button.setAttribute('aria-label', label);
    button.dataset.move = move;
    return button;
  }

  function renderColumnMenu() {
    columnList.textContent = '';
    view.columns.forEach(function (name, index) {
      var title = TITLES[name] || name;
      var item = document.createElement('li');
      item.dataset.column = name;
      var label = document.createElement('label');
      var box = document.createElement('input');
      box.type = 'checkbox';
      box.checked = !view.hidden[name];
      /* The last column shown stays. */
      box.disabled = box.checked && shownColumns().length === 1;
      label.appendChild(box);
      label.appendChild(document.createTextNode(' ' + title));
      item.appendChild(label);
      var up = menuButton('↑', 'Move ' + title + ' up', '-1');
      var down = menuButton('↓', 'Move ' + title + ' down', '1');
      up.disabled = index === 0;
      down.disabled = index === view.columns.length - 1;
      item.appendChild(up);
      item.appendChild(down);
      columnList.appendChild(item);
    });
  }

  columnList.addEventListener('change', function (event) {
    var name = event.target.closest('li').dataset.column;
    if (event.target.checked) { delete view.hidden[name]; } else { view.hidden[name] = true; }
    columnsChanged();
    columnList.querySelector('li[data-column="' + name + '"] input').focus();
  });
  columnList.addEventListener('click', function (event) {
    var button = event.target.closest('button[data-move]');
    if (!button) { return; }
    var name = button.closest('li').dataset.column;
    var from = view.columns.indexOf(name);
    var to = from + parseInt(button.dataset.move, 10);
    if (to < 0 || to >= view.columns.length) { return; }
    view.columns.splice(from, 1);
    view.columns.splice(to, 0, name);
    columnsChanged();
    /* Focus stays on the same move, so the column can be moved again at once. */
    var again = columnList.querySelector('li[data-column="' + name + '"] button[data-move="' + button.dataset.move + '"]');
    (again.disabled ? columnList.querySelector('li[data-column="' + name + '"] input') : again).focus();
  });

  /* The help is a <details>: the feedback's link opens it. */
  document.querySelector('#search-feedback .search-help-link').addEventListener('click', function () {
    document.getElementById('search-help').open = true;
  });

  readUrl();
  renderHeader();
  renderColumnMenu();
  load();
  if (streaming) { listen(); }
}());
