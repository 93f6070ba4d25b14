/* Flower's own page helpers. Everything shown is inserted as text, never as HTML:
   refreshed regions come from our own server-rendered (escaped) pages. */
(function () {
  'use strict';

  var body = document.body;
  var flower = window.flower = {
    urlPrefix: body.dataset.urlPrefix || '',
    autoRefresh: body.dataset.autoRefresh === 'true',
    naturalTime: body.dataset.naturalTime === 'true',
    refreshInterval: 5000,
    url: function (path) { return this.urlPrefix + path; }
  };

  /* -- times, in the browser's time zone -------------------------------- */

  var UNITS = [['year', 31536000], ['month', 2592000], ['day', 86400],
               ['hour', 3600], ['minute', 60], ['second', 1]];

  function relativeTime(date) {
    var seconds = (date.getTime() - Date.now()) / 1000;
    var format = new Intl.RelativeTimeFormat(undefined, {numeric: 'auto'});
    for (var i = 0; i < UNITS.length; i++) {
      if (Math.abs(seconds) >= UNITS[i][1] || UNITS[i][0] === 'second') {
        return format.format(Math.round(seconds / UNITS[i][1]), UNITS[i][0]);
      }
    }
    return '';
  }

  /* "2026-11-28 01:02:03 GMT+1": ISO-like date and time in the browser's time zone,
     with the zone named, so that a time is never mistaken for another zone's. */
  var PARTS = new Intl.DateTimeFormat(undefined, {
    year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23',
    timeZoneName: 'short'
  });

  function absoluteTime(date) {
    var part = {};
    PARTS.formatToParts(date).forEach(function (piece) { part[piece.type] = piece.value; });
    return part.year + '-' + part.month + '-' + part.day + ' ' +
      part.hour + ':' + part.minute + ':' + part.second + ' ' + part.timeZoneName;
  }
  flower.absoluteTime = absoluteTime;

  /* <time data-timestamp="POSIX seconds"> or <time datetime="ISO 8601">: the absolute
     time shown and the relative one in the tooltip, or the other way round with
     --natural_time. */
  flower.formatTimes = function (root) {
    root.querySelectorAll('time[data-timestamp], time[datetime]').forEach(function (element) {
      var date = element.dataset.timestamp
        ? new Date(parseFloat(element.dataset.timestamp) * 1000)
        : new Date(element.getAttribute('datetime'));
      if (isNaN(date.getTime())) { return; }
      var absolute = absoluteTime(date);
      var relative = relativeTime(date);
      element.title = flower.naturalTime ? absolute : relative;
      element.textContent = flower.naturalTime ? relative : absolute;
    });
  };

  /* -- JSON from the server ------------------------------------------------ */

  var NOT_JSON = {};

  /* Fetch url (a GET unless `init` says otherwise) and resolve with its JSON answer.
     An HTTP error, or an answer that is not JSON, rejects with an Error carrying the
     `status`; its message is the answer's "error" (every error flower answers in JSON
     has one: 401, 403, 503...) or else "HTTP <status>". A network failure rejects as
     fetch does, with no status. */
  flower.getJSON = function (url, init) {
    var request = Object.assign({credentials: 'same-origin', headers: {'Accept': 'application/json'}}, init);
    return fetch(url, request).then(function (response) {
      return response.json().catch(function () { return NOT_JSON; }).then(function (answer) {
        if (response.ok && answer !== NOT_JSON) { return answer; }
        var error = new Error((answer && answer.error) || 'HTTP ' + response.status);
        error.status = response.status;
        throw error;
      });
    });
  };

  /* -- refresh loops -------------------------------------------------------- */

  /* Call load(...tickArguments) every ms while the tab is visible, skipping a turn
     while an earlier call is still pending, so that calls never pile up. Returns load
     wrapped so that calls made elsewhere (a click, a form) count as pending too. */
  flower.every = function (ms, load) {
    var tickArguments = Array.prototype.slice.call(arguments, 2);
    var pending = 0;
    function run() {
      var args = arguments;
      pending++;
      return new Promise(function (resolve) { resolve(load.apply(null, args)); })
        .finally(function () { pending--; });
    }
    window.setInterval(function () {
      if (!document.hidden && !pending) { run.apply(null, tickArguments); }
    }, ms);
    return run;
  };

  /* -- refreshing parts of a page without reloading it ------------------- */

  /* Fetch this page again and swap in its regions marked data-refresh (all of
     them, or those whose data-refresh is `kind` or one of the space-separated
     kinds it lists). Only the answer to the latest request for the same regions
     is used, so an older one never undoes it. Swapping the live regions also
     moves the body's data-live-since on to the change the fresh page is from. */
  var latestRefresh = {};
  function refreshRegions(kind) {
    var regions = kind || '*';
    var ticket = latestRefresh[regions] = (latestRefresh[regions] || 0) + 1;
    return fetch(window.location.pathname + window.location.search,
                 {credentials: 'same-origin', headers: {'Accept': 'text/html'}})
      .then(function (response) {
        if (!response.ok) { throw new Error('HTTP ' + response.status); }
        return response.text();
      })
      .then(function (text) {
        if (ticket !== latestRefresh[regions]) { return; }
        var fresh = new DOMParser().parseFromString(text, 'text/html');
        var kinds = regions.split(' ');
        var selector = kind ? kinds.map(function (name) { return '[data-refresh="' + name + '"]'; }).join(', ')
                            : '[data-refresh]';
        if ((regions === '*' || kinds.indexOf('live') !== -1) && fresh.body.dataset.liveSince) {
          body.dataset.liveSince = fresh.body.dataset.liveSince;
        }
        document.querySelectorAll(selector).forEach(function (old) {
          var replacement = old.id && fresh.getElementById(old.id);
          if (replacement) { old.replaceWith(document.importNode(replacement, true)); }
        });
        flower.formatTimes(document);
        document.dispatchEvent(new CustomEvent('flower:refreshed'));
        body.classList.remove('stale');
      })
      .catch(function () { body.classList.add('stale'); });
  }
  flower.refresh = refreshRegions;

  /* -- live pages: following the change stream ---------------------------- */

  var LIVE_LABELS = {
    connecting: 'connecting', open: 'live', retrying: 'reconnecting', closed: 'closed',
    paused: 'paused', polling: 'polling', off: 'not refreshed'
  };

  /* Follow the server's change stream (/tasks/live, the pages' twin of /api/events)
     from the change the page was rendered at (the body's data-live-since), so no
     change is missed between the page and the stream. `options`:
       query     the stream's filters (an object or URLSearchParams);
       handlers  {event type: function (data)}, called with each change's JSON;
       resync    reloads what the page shows and returns a promise: used after a
                 pause, and when the stream says changes were missed (reset, lagged);
       poll      what polling calls instead of resync (optional).
     The page's #live-control says where things stand (data-state: connecting, open,
     retrying, closed, paused, or without EventSource polling or off) and its box
     pauses: the stream is closed until it is ticked again. Without EventSource,
     poll is called every refreshInterval ms while --auto_refresh is on. Returns
     {reload()}: resync now, and follow the stream from there. */
  flower.live = function (options) {
    var control = document.getElementById('live-control');
    var box = document.getElementById('live-toggle');
    var source = null;
    var paused = false;
    var streaming = typeof window.EventSource === 'function';

    function show(state) {
      control.dataset.state = state;
      document.getElementById('live-state').textContent = LIVE_LABELS[state];
    }

    /* "Updated hh:mm:ss": when the page last took in a change (or was drawn). */
    function stamp() {
      var updated = document.getElementById('live-updated');
      if (!updated) { return; }
      var now = new Date();
      updated.textContent = now.toLocaleTimeString(undefined, {
        hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'});
      updated.setAttribute('datetime', now.toISOString());
    }

    function dispatch(handler) {
      return function (event) {
        var data;
        try { data = JSON.parse(event.data); } catch (e) { return; }
        handler(data);
        stamp();
      };
    }

    function close() {
      if (source) { source.close(); source = null; }
    }

    function open() {
      var params = new URLSearchParams(options.query);
      params.set('last_event_id', body.dataset.liveSince || '0');
      close();
      show('connecting');
      var opened = source = new window.EventSource(flower.url('/tasks/live') + '?' + params.toString());
      opened.addEventListener('open', function () { show('open'); });
      opened.addEventListener('error', function () {
        show(opened.readyState === window.EventSource.CLOSED ? 'closed' : 'retrying');
      });
      Object.keys(options.handlers).forEach(function (type) {
        opened.addEventListener(type, dispatch(options.handlers[type]));
      });
      opened.addEventListener('reset', restart);
      opened.addEventListener('lagged', restart);
    }

    /* Reload what the page shows, then follow the stream from there. */
    function restart() {
      close();
      show('connecting');
      return Promise.resolve(options.resync()).then(stamp, function () { body.classList.add('stale'); })
        .then(function () { if (!paused) { open(); } });
    }

    box.addEventListener('change', function () {
      paused = !box.checked;
      if (!streaming) {
        show(paused ? 'paused' : flower.autoRefresh ? 'polling' : 'off');
      } else if (paused) {
        close();
        show('paused');
      } else {
        restart();
      }
    });

    /* Reload what the page shows (its options changed), then follow on from there. */
    function reload() {
      return streaming && !paused ? restart() : Promise.resolve(options.resync());
    }

    stamp();
    if (streaming) {
      open();
    } else if (flower.autoRefresh) {
      show('polling');
      var poll = options.poll || options.resync;
      flower.every(flower.refreshInterval, function () {
        if (!paused) { return Promise.resolve(poll()).then(stamp); }
      });
    } else {
      show('off');
    }
    return {reload: reload};
  };

  /* -- the dashboard's filter box ---------------------------------------- */

  function applyWorkerFilter() {
    var input = document.getElementById('worker-filter');
    if (!input) { return; }
    var needle = input.value.trim().toLowerCase();
    var rows = document.querySelectorAll('#workers-table tbody tr[data-worker]');
    var shown = 0;
    rows.forEach(function (row) {
      var match = row.dataset.worker.toLowerCase().indexOf(needle) !== -1;
      row.hidden = !match;
      if (match) { shown++; }
    });
    var note = document.querySelector('#workers-table .filtered-out-note');
    if (note) { note.hidden = !(rows.length && !shown); }
  }

  /* -- tabs ---------------------------------------------------------------- */

  function showTab(name) {
    var tabs = document.querySelectorAll('.tabs [data-tab]');
    if (!tabs.length) { return; }
    var known = Array.prototype.some.call(tabs, function (tab) { return tab.dataset.tab === name; });
    if (!known) { name = tabs[0].dataset.tab; }
    tabs.forEach(function (tab) {
      var selected = tab.dataset.tab === name;
      tab.classList.toggle('active', selected);
      tab.setAttribute('aria-selected', selected ? 'true' : 'false');
      tab.tabIndex = selected ? 0 : -1;  /* one stop in the tab order; arrows move along */
      document.getElementById(tab.getAttribute('aria-controls')).hidden = !selected;
    });
  }

  /* Arrow keys (and Home, End) move along a tablist, as in a desktop tab bar. */
  var TAB_KEYS = {ArrowRight: 1, ArrowDown: 1, ArrowLeft: -1, ArrowUp: -1, Home: 'first', End: 'last'};
  function onTabKey(event) {
    var tab = event.target.closest && event.target.closest('[role="tab"][data-tab]');
    var step = TAB_KEYS[event.key];
    if (!tab || step === undefined) { return; }
    var tabs = Array.prototype.slice.call(tab.closest('[role="tablist"]').querySelectorAll('[role="tab"][data-tab]'));
    var index = step === 'first' ? 0 : step === 'last' ? tabs.length - 1
      : (tabs.indexOf(tab) + step + tabs.length) % tabs.length;
    event.preventDefault();
    tabs[index].focus();
    tabs[index].click();
  }

  /* -- control forms: POST with fetch, show the worker's reply ----------- */

  /* `link` ({href, text}), if any, follows the text: a retry's new task. */
  function showReply(text, ok, link) {
    var reply = document.getElementById('control-reply');
    reply.textContent = text;
    if (link) {
      var anchor = document.createElement('a');
      anchor.href = link.href;
      anchor.textContent = link.text;
      anchor.className = 'reply-link';
      reply.appendChild(document.createTextNode(' '));
      reply.appendChild(anchor);
    }
    reply.className = 'control-reply ' + (ok === 'neutral' ? 'neutral' : ok ? 'ok' : 'error');
    reply.hidden = false;
  }
  flower.showReply = showReply;

  function submitControl(form) {
    if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) { return; }
    var data = new URLSearchParams();
    new FormData(form).forEach(function (value, key) {
      if (value !== '') { data.append(key, value); }
    });
    var buttons = form.querySelectorAll('button');
    buttons.forEach(function (button) { button.disabled = true; });
    flower.getJSON(form.action, {method: 'POST', body: data})
      .then(function (answer) {
        /* Show the reply once the page shows the command's effect. */
        var retry = answer && answer['retry-of'] && answer['task-id'];
        return flower.refresh().then(function () {
          if (retry) {
            showReply('Retried as', true, {href: flower.url('/task/' + encodeURIComponent(retry)), text: retry});
          } else {
            /* An action that changed nothing (revoking a finished task) is no success. */
            showReply((answer && answer.message) || 'Done', answer && answer.effect === 'none' ? 'neutral' : true);
          }
        });
      }, function (error) {
        showReply(error.status ? error.message : 'Request failed: ' + error.message, false);
      })
      .finally(function () {
        buttons.forEach(function (button) { button.disabled = false; });
        document.dispatchEvent(new CustomEvent('flower:controlled'));
      });
  }

  /* -- wiring -------------------------------------------------------------- */

  document.addEventListener('submit', function (event) {
    var form = event.target;
    if (form.matches && form.matches('form.control')) {
      event.preventDefault();
      submitControl(form);
    }
  });
  document.addEventListener('input', function (event) {
    if (event.target.id === 'worker-filter') { applyWorkerFilter(); }
  });
  document.addEventListener('flower:refreshed', applyWorkerFilter);
  document.addEventListener('flower:live', applyWorkerFilter);
  document.addEventListener('click', function (event) {
    var tab = event.target.closest && event.target.closest('.tabs [data-tab]');
    if (tab) {
      window.history.replaceState(null, '', '#' + tab.dataset.tab);
      showTab(tab.dataset.tab);
    }
  });
  document.addEventListener('keydown', onTabKey);
  window.addEventListener('hashchange', function () { showTab(window.location.hash.slice(1)); });

  showTab(window.location.hash.slice(1));
  flower.formatTimes(document);
  applyWorkerFilter();
  /* The regions events do not update; on a live page without EventSource,
     flower.live polls them together with the live ones. */
  var livePage = document.getElementById('live-control');
  if (flower.autoRefresh && document.querySelector('[data-refresh="auto"]') &&
      (!livePage || typeof window.EventSource === 'function')) {
    flower.refresh = flower.every(flower.refreshInterval, refreshRegions, 'auto');
  }
}());
