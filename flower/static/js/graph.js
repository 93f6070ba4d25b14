/* Graphs drawn in inline SVG, for the pages that show some (the broker page's
   queue lengths, the monitor page). Labels and values are inserted as text. */
(function () {
  'use strict';

  var flower = window.flower;

  var SVG = 'http://www.w3.org/2000/svg';
  var COLOURS = ['#5b3cc4', '#1a7f37', '#c62828', '#b26a00', '#0277bd', '#6d4c41', '#ad1457', '#00838f'];

  function svgElement(name, attributes, text) {
    var element = document.createElementNS(SVG, name);
    Object.keys(attributes).forEach(function (key) { element.setAttribute(key, attributes[key]); });
    if (text !== undefined) { element.textContent = text; }
    return element;
  }

  /* The y axis's unit, written up the left edge, centred between 0 and the maximum. */
  function yUnit(svg, unit, top, bottomEdge) {
    if (!unit) { return; }
    var middle = ((top + bottomEdge) / 2).toFixed(1);
    svg.appendChild(svgElement('text', {x: 12, y: middle, 'text-anchor': 'middle', 'class': 'y-unit',
                                        transform: 'rotate(-90 12 ' + middle + ')'}, unit));
  }

  /* One line per series over shared timestamps: series is {label: [value or null, ...]}.
     Each line's group and legend entry carry data-<key>="label"; unit names the y axis. */
  flower.drawLineGraph = function (figure, timestamps, series, key, unit) {
    var svg = figure.querySelector('svg');
    var legend = figure.querySelector('.legend');
    var width = 800, height = 240, left = 48, right = 12, top = 12, bottom = 28;
    var times = timestamps || [];
    series = series || {};
    var names = Object.keys(series).sort();
    svg.replaceChildren();
    legend.replaceChildren();
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    if (!times.length || !names.length) {
      svg.appendChild(svgElement('text', {x: width / 2, y: height / 2, 'text-anchor': 'middle'},
                                 'No sample yet'));
      return;
    }
    var highest = 1;
    names.forEach(function (name) {
      series[name].forEach(function (value) {
        if (value !== null && value > highest) { highest = value; }
      });
    });
    var first = times[0], span = (times[times.length - 1] - first) || 1;
    function x(index) { return left + (times[index] - first) / span * (width - left - right); }
    function y(value) { return height - bottom - value / highest * (height - top - bottom); }
    function clock(seconds) { return new Date(seconds * 1000).toLocaleTimeString(undefined, {hourCycle: 'h23'}); }

    svg.appendChild(svgElement('line', {x1: left, y1: top, x2: left, y2: height - bottom, 'class': 'axis'}));
    svg.appendChild(svgElement('line', {x1: left, y1: height - bottom, x2: width - right, y2: height - bottom, 'class': 'axis'}));
    svg.appendChild(svgElement('text', {x: left - 6, y: top + 4, 'text-anchor': 'end', 'class': 'y-max'}, highest.toLocaleString('en-US')));
    svg.appendChild(svgElement('text', {x: left - 6, y: height - bottom, 'text-anchor': 'end'}, '0'));
    yUnit(svg, unit, top, height - bottom);
    svg.appendChild(svgElement('text', {x: left, y: height - 8}, clock(first)));
    svg.appendChild(svgElement('text', {x: width - right, y: height - 8, 'text-anchor': 'end'},
                               clock(times[times.length - 1])));

    names.forEach(function (name, index) {
      var colour = COLOURS[index % COLOURS.length];
      var group = svgElement('g', {stroke: colour, fill: colour});
      group.setAttribute('data-' + key, name);
      var points = [];
      function endLine() {
        if (points.length > 1) {
          group.appendChild(svgElement('polyline', {points: points.join(' '), fill: 'none', 'stroke-width': 2}));
        }
        points = [];
      }
      series[name].forEach(function (value, sample) {
        if (value === null) { endLine(); return; }
        points.push(x(sample).toFixed(1) + ',' + y(value).toFixed(1));
        var dot = svgElement('circle', {cx: x(sample).toFixed(1), cy: y(value).toFixed(1), r: 2.5,
                                        'data-value': value, stroke: 'none'});
        dot.appendChild(svgElement('title', {}, name + ': ' + value + ' at ' + clock(times[sample])));
        group.appendChild(dot);
      });
      endLine();
      svg.appendChild(group);

      var item = document.createElement('li');
      item.setAttribute('data-' + key, name);
      var swatch = document.createElement('span');
      swatch.className = 'swatch';
      swatch.style.background = colour;
      item.appendChild(swatch);
      item.appendChild(document.createTextNode(name));
      legend.appendChild(item);
    });
  };

  /* Roughly how wide a label is at the graphs' 11px font, when it cannot be measured. */
  var CHARACTER_WIDTH = 6.5;

  /* One bar per label, counts[i] high, titled "label: count unit"; the y axis counts
     `unit`. Labels wider than their bar are slanted so that they never overlap. */
  flower.drawBarGraph = function (figure, labels, counts, unit) {
    var svg = figure.querySelector('svg');
    var width = 800, height = 240, left = 48, top = 12;
    var slot = (width - left) / Math.max(counts.length, 1);
    var widest = Math.max.apply(null, labels.map(function (label) { return String(label).length; }).concat([0]));
    var slanted = widest * CHARACTER_WIDTH > slot - 6;
    var bottom = slanted ? Math.min(24 + widest * CHARACTER_WIDTH * 0.71, 110) : 40;
    var highest = Math.max.apply(null, counts.concat([1]));
    svg.replaceChildren();
    svg.setAttribute('viewBox', '0 0 ' + width + ' ' + height);
    svg.appendChild(svgElement('text', {x: left - 6, y: top + 4, 'text-anchor': 'end', 'class': 'y-max'}, highest.toLocaleString('en-US')));
    svg.appendChild(svgElement('text', {x: left - 6, y: height - bottom, 'text-anchor': 'end'}, '0'));
    yUnit(svg, unit, top, height - bottom);
    counts.forEach(function (count, index) {
      var barHeight = count / highest * (height - top - bottom);
      var x = left + index * slot;
      var bar = svgElement('rect', {x: (x + 2).toFixed(1), y: (height - bottom - barHeight).toFixed(1),
                                    width: (slot - 4).toFixed(1), height: barHeight.toFixed(1),
                                    'class': 'bar', 'data-count': count});
      bar.appendChild(svgElement('title', {}, labels[index] + ': ' + count + ' ' + unit));
      svg.appendChild(bar);
      var labelX = (x + slot / 2).toFixed(1), labelY = height - bottom + 14;
      var attributes = {x: labelX, y: labelY, 'text-anchor': 'middle', 'class': 'bar-label'};
      if (slanted) {
        attributes['text-anchor'] = 'end';
        attributes.transform = 'rotate(-45 ' + labelX + ' ' + labelY + ')';
      }
      svg.appendChild(svgElement('text', attributes, labels[index]));
    });
  };

  /* -- the broker page's queue-length graph -------------------------------- */

  /* Its source answers {history: {timestamps: [...], queues: {name: [messages or null, ...]}}}. */
  function loadQueueGraph() {
    var figure = document.getElementById('queue-graph');
    if (!figure) { return; }
    flower.getJSON(figure.dataset.source)
      .then(function (answer) {
        flower.drawLineGraph(figure, answer.history.timestamps, answer.history.queues, 'queue', 'messages');
      })
      .catch(function () { document.body.classList.add('stale'); });
  }

  document.addEventListener('flower:refreshed', loadQueueGraph);
  loadQueueGraph();
}());
