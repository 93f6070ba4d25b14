/* Buttons that fit the state: on a task's page each action is offered only in
   the states where it can work (its data-when / data-unless lists, rendered by
   the server), and on a worker's page every control waits while the worker is
   offline. A disabled button says why in its tooltip. Re-evaluated whenever the
   page changes: a live change, a refresh, after a control's answer. */
(function () {
  'use strict';

  var OFFLINE_TITLE = 'The worker is offline';

  function words(value) { return (value || '').split(' ').filter(Boolean); }

  function setAvailable(button, available, reason) {
    button.disabled = !available;
    if (available) { button.removeAttribute('title'); } else { button.title = reason; }
  }

  function taskActions() {
    var badge = document.querySelector('#field-state .state');
    if (!badge) { return; }
    var state = badge.textContent.trim();
    document.querySelectorAll('.task-controls button[data-unavailable-title]').forEach(function (button) {
      var when = words(button.dataset.when);
      var unless = words(button.dataset.unless);
      var available = (!when.length || when.indexOf(state) !== -1) && unless.indexOf(state) === -1;
      setAvailable(button, available, button.dataset.unavailableTitle + ' (' + state + ').');
    });
  }

  /* Controls the page renders disabled (read-only mode) are left alone. */
  function workerActions() {
    var title = document.getElementById('worker-name');
    var status = document.querySelector('#worker-status .status');
    if (!title || !status || title.dataset.readOnly === 'true') { return; }
    var offline = status.classList.contains('offline');
    document.querySelectorAll('form.control').forEach(function (form) {
      form.querySelectorAll('button, input:not([type=hidden])').forEach(function (control) {
        if (control.tagName === 'BUTTON') {
          setAvailable(control, !offline, OFFLINE_TITLE);
        } else {
          control.disabled = offline;
        }
      });
      form.classList.toggle('unavailable', offline);
    });
  }

  function update() {
    taskActions();
    workerActions();
  }

  ['flower:live', 'flower:refreshed', 'flower:controlled'].forEach(function (type) {
    document.addEventListener(type, update);
  });
  update();
}());
