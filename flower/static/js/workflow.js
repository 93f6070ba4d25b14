/* The workflow page: the graph of a canvas (chains left to right, groups stacked,
   a chord's callback after its header) and a timeline of its tasks, drawn in SVG
   from /workflow-data/<id>. Every name and id is inserted as text.
   Live: a task event of the stream (/tasks/live) that concerns the workflow loads
   it again; without EventSource (or once the stream is refused) it is polled,
   unless --auto_refresh is off. */
(function () {
  'use strict';

  var flower = window.flower;
  var root = document.getElementById('workflow');
  if (!root) { return; }

  var SVG = 'http://www.w3.org/2000/svg';
  var NODE = {width: 190, height: 46, columnGap: 70, rowGap: 18, margin: 16};
  var TIMELINE = {label: 220, row: 22, top: 24, right: 16, width: 600};  /* width: at least */
  var RELOAD_DELAY = 250;
  var state = {workflow: null, ids: {}, unlinkedGroups: false, paused: false, timer: null, source: null};

  function svgElement(name, attributes, text) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes || {}).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) { element.textContent = text; }
    return element;
  }

  function stateClass(value) { return 'wf-' + String(value || 'PENDING').replace(/[^A-Z_]/g, ''); }

  function shortId(id) { return String(id).slice(0, 8); }

  function clipped(text, length) {
    text = String(text === null || text === undefined ? '' : text);
    return text.length > length ? text.slice(0, length - 1) + '…' : text;
  }

  /* -- the graph ------------------------------------------------------------ */

  function place(node) {
    return {
      x: NODE.margin + node.column * (NODE.width + NODE.columnGap),
      y: NODE.margin + node.row * (NODE.height + NODE.rowGap)
    };
  }

  function drawNode(node, asked) {
    var at = place(node);
    var link = svgElement('a', {href: flower.url('/task/' + encodeURIComponent(node.id))});
    var group = svgElement('g', {
      'class': 'wf-node ' + stateClass(node.state) + (asked ? ' asked' : ''),
      transform: 'translate(' + at.x + ',' + at.y + ')'
    });
    group.dataset.id = node.id;
    group.dataset.state = node.state;
    group.appendChild(svgElement('title', {}, (node.name || 'unknown task') + ' ' + node.id + ' (' + node.state + ')'));
    group.appendChild(svgElement('rect', {width: NODE.width, height: NODE.height, rx: 6}));
    group.appendChild(svgElement('text', {x: 8, y: 18, 'class': 'name'}, clipped(node.name || 'unknown task', 26)));
    group.appendChild(svgElement('text', {x: 8, y: 36, 'class': 'detail'},
                                 node.state + ' · ' + shortId(node.id)));
    link.appendChild(group);
    return link;
  }

  function drawEdge(edge, nodes) {
    var from = place(nodes[edge.from]), to = place(nodes[edge.to]);
    var x1 = from.x + NODE.width, y1 = from.y + NODE.height / 2;
    var x2 = to.x, y2 = to.y + NODE.height / 2;
    var bend = (x2 - x1) / 2;
    var path = svgElement('path', {
      'class': 'wf-edge ' + edge.kind, 'marker-end': 'url(#wf-arrow)',
      d: 'M' + x1 + ',' + y1 + ' C' + (x1 + bend) + ',' + y1 + ' ' + (x2 - bend) + ',' + y2 + ' ' + x2 + ',' + y2
    });
    path.dataset.from = edge.from;
    path.dataset.to = edge.to;
    path.dataset.kind = edge.kind;
    return path;
  }

  /* A dashed frame around each group's members that share a column. */
  function drawGroups(workflow, byId) {
    var frames = [];
    workflow.groups.forEach(function (group) {
      var members = group.members.map(function (id) { return byId[id]; });
      var columns = {};
      members.forEach(function (node) { (columns[node.column] = columns[node.column] || []).push(node); });
      Object.keys(columns).forEach(function (column) {
        var rows = columns[column].map(function (node) { return node.row; });
        var top = place({column: +column, row: Math.min.apply(null, rows)});
        var last = Math.max.apply(null, rows);
        var frame = svgElement('rect', {
          'class': 'wf-group', x: top.x - 6, y: top.y - 6, width: NODE.width + 12, rx: 8,
          height: (last - Math.min.apply(null, rows)) * (NODE.height + NODE.rowGap) + NODE.height + 12
        });
        frame.dataset.group = group.id;
        frame.appendChild(svgElement('title', {}, 'group ' + group.id +
                                     (group.chord ? ' (chord header)' : '')));
        frames.push(frame);
      });
    });
    return frames;
  }

  function drawGraph(workflow) {
    var svg = document.getElementById('workflow-graph');
    var byId = {};
    var columns = 0, rows = 0;
    workflow.nodes.forEach(function (node) {
      byId[node.id] = node;
      columns = Math.max(columns, node.column + 1);
      rows = Math.max(rows, node.row + 1);
    });
    var width = 2 * NODE.margin + columns * NODE.width + Math.max(0, columns - 1) * NODE.columnGap;
    var height = 2 * NODE.margin + rows * NODE.height + Math.max(0, rows - 1) * NODE.rowGap;
    svg.replaceChildren();
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    var defs = svgElement('defs');
    var marker = svgElement('marker', {id: 'wf-arrow', viewBox: '0 0 10 10', refX: 10, refY: 5,
                                       markerWidth: 7, markerHeight: 7, orient: 'auto'});
    marker.appendChild(svgElement('path', {d: 'M0,0 L10,5 L0,10 z', fill: '#8a94a6'}));
    defs.appendChild(marker);
    svg.appendChild(defs);
    drawGroups(workflow, byId).forEach(function (frame) { svg.appendChild(frame); });
    workflow.edges.forEach(function (edge) { svg.appendChild(drawEdge(edge, byId)); });
    workflow.nodes.forEach(function (node) { svg.appendChild(drawNode(node, node.id === workflow.id)); });
  }

  /* -- the timeline --------------------------------------------------------- */

  function firstTime(node) { return node.received || node.sent || node.started || node.finished; }

  function drawTimeline(workflow) {
    var svg = document.getElementById('workflow-timeline');
    var nodes = workflow.nodes.filter(firstTime).sort(function (a, b) { return firstTime(a) - firstTime(b); });
    var now = Date.now() / 1000;
    var start = Infinity, end = -Infinity;
    nodes.forEach(function (node) {
      start = Math.min(start, firstTime(node));
      end = Math.max(end, node.finished || (node.started ? now : firstTime(node)));
    });
    var span = Math.max(end - start, 0.001);
    var width = Math.max(TIMELINE.width, svg.parentNode.clientWidth - 2);
    var plot = width - TIMELINE.label - TIMELINE.right;
    var height = TIMELINE.top + nodes.length * TIMELINE.row + 8;
    function x(moment) { return TIMELINE.label + (moment - start) / span * plot; }
    svg.replaceChildren();
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    if (!nodes.length) {
      svg.appendChild(svgElement('text', {x: 8, y: 16}, 'No task has been received yet.'));
      return;
    }
    svg.appendChild(svgElement('line', {'class': 'axis', x1: TIMELINE.label, x2: TIMELINE.label + plot,
                                        y1: TIMELINE.top - 6, y2: TIMELINE.top - 6}));
    svg.appendChild(svgElement('text', {x: TIMELINE.label, y: 12}, '0 s'));
    svg.appendChild(svgElement('text', {x: TIMELINE.label + plot, y: 12, 'text-anchor': 'end'},
                               span.toFixed(span < 10 ? 2 : 0) + ' s'));
    nodes.forEach(function (node, index) {
      var y = TIMELINE.top + index * TIMELINE.row;
      var row = svgElement('g', {'class': 'wf-row'});
      row.dataset.id = node.id;
      row.appendChild(svgElement('text', {x: 4, y: y + 13}, clipped(node.name || 'unknown task', 24) + ' ' + shortId(node.id)));
      var received = firstTime(node);
      var started = node.started || node.finished || now;
      row.appendChild(svgElement('rect', {'class': 'wait', x: x(received), y: y + 3, height: 14,
                                          width: Math.max(1, x(started) - x(received))}));
      if (node.started) {
        var finished = node.finished || now;
        var bar = svgElement('rect', {'class': 'bar ' + stateClass(node.state), x: x(node.started),
                                      y: y + 3, height: 14, width: Math.max(2, x(finished) - x(node.started))});
        bar.appendChild(svgElement('title', {}, node.state + ': ' +
                                   (finished - node.started).toFixed(3) + ' s running'));
        row.appendChild(bar);
      }
      svg.appendChild(row);
    });
  }

  /* -- loading and live updates --------------------------------------------- */

  function showError(message) {
    var box = document.getElementById('workflow-error');
    box.textContent = message || '';
    box.hidden = !message;
  }

  function count(number, what) { return number + ' ' + what + (number === 1 ? '' : 's'); }

  function summary(workflow) {
    var done = workflow.nodes.filter(function (node) { return node.finished; }).length;
    var text = count(workflow.nodes.length, 'task') + ', ' + done + ' finished, ' +
      count(workflow.edges.length, 'link');
    if (workflow.groups.length) { text += ', ' + count(workflow.groups.length, 'group'); }
    if (!workflow.groups_known) { text += ' (groups unknown: no result backend, or it could not be read)'; }
    if (workflow.truncated) { text += ' (too many tasks: some are left out)'; }
    return text;
  }

  function show(workflow) {
    state.workflow = workflow;
    state.ids = {};
    state.unlinkedGroups = false;
    workflow.nodes.forEach(function (node) {
      state.ids[node.id] = true;
      if (node.group && !node.parent) { state.unlinkedGroups = true; }
    });
    document.getElementById('workflow-summary').textContent = summary(workflow);
    drawGraph(workflow);
    drawTimeline(workflow);
    root.dataset.loaded = String(Number(root.dataset.loaded || 0) + 1);
  }

  /* One request at a time: changes made meanwhile load it once more afterwards. */
  var loading = false, again = false;
  function load() {
    if (loading) { again = true; return Promise.resolve(); }
    loading = true;
    return flower.getJSON(root.dataset.source)
      .then(function (workflow) { showError(''); show(workflow); document.body.classList.remove('stale'); })
      .catch(function (error) { showError('Could not load the workflow: ' + error.message); })
      .finally(function () {
        loading = false;
        if (again) { again = false; reloadSoon(); }
      });
  }

  function reloadSoon() {
    if (state.paused || state.timer !== null) { return; }
    state.timer = window.setTimeout(function () { state.timer = null; load(); }, RELOAD_DELAY);
  }

  /* A task of the workflow, one it sent, or (when groups of unlinked members are
     shown) a task without a parent that may be one of their members. */
  function concerns(task) {
    var ids = state.ids;
    if (ids[task['task-id']] || ids[task.parent_id] || ids[task.root_id]) { return true; }
    return state.unlinkedGroups && !task.parent_id;
  }

  function onTaskEvent(event) {
    var task;
    try { task = JSON.parse(event.data); } catch (e) { return; }
    if (concerns(task)) { reloadSoon(); }
  }

  var polling = false;
  function poll() {
    if (polling || !flower.autoRefresh) { return; }
    polling = true;
    flower.every(flower.refreshInterval, function () { return state.paused ? null : load(); });
  }

  function listen() {
    var source = state.source = new window.EventSource(root.dataset.live);
    root.dataset.stream = 'connecting';
    source.addEventListener('open', function () { root.dataset.stream = 'open'; });
    source.addEventListener('error', function () {
      /* Refused (read-only mode, logged out...): the browser gives up, so poll. */
      if (source.readyState === window.EventSource.CLOSED) { root.dataset.stream = 'closed'; poll(); }
    });
    ['task-sent', 'task-received', 'task-started', 'task-succeeded', 'task-failed',
     'task-rejected', 'task-revoked', 'task-retried'].forEach(function (kind) {
      source.addEventListener(kind, onTaskEvent);
    });
    source.addEventListener('reset', reloadSoon);
    source.addEventListener('lagged', reloadSoon);
  }

  document.querySelector('#workflow-live input').addEventListener('change', function (event) {
    state.paused = !event.target.checked;
    if (!state.paused) { load(); }
  });

  load();
  if (typeof window.EventSource === 'function') { listen(); } else { poll(); }
}());
