/* The broker page's Purge buttons. A purge cannot be undone, so the button only opens a
   dialog, whose own button stays disabled until the queue's name is typed exactly. The
   purge is posted to the page's /control twin of the API with the page's XSRF token. */
(function () {
  'use strict';

  var dialog = document.getElementById('purge-dialog');
  if (!dialog) { return; }
  var form = document.getElementById('purge-form');
  var input = document.getElementById('purge-name');
  var submit = document.getElementById('purge-submit');
  var queue = null;

  function open(name) {
    queue = name;
    dialog.querySelector('.queue-name').textContent = name;
    input.value = '';
    submit.disabled = true;
    dialog.showModal();
    input.focus();
  }

  function purge() {
    var name = queue;
    var data = new URLSearchParams();
    data.append('_xsrf', form.elements._xsrf.value);
    submit.disabled = true;
    dialog.close();
    return flower.getJSON(flower.url('/control/queues/purge/' + encodeURIComponent(name)),
                          {method: 'POST', body: data})
      .then(function (answer) {
        /* Say so once the table shows the queue emptied. */
        return flower.refresh().then(function () {
          var count = answer.purged === 1 ? '1 message' : answer.purged + ' messages';
          flower.showReply('Purged ' + count + " from queue '" + answer.queue + "'", true);
        });
      }, function (error) {
        flower.showReply(error.status ? error.message : 'Request failed: ' + error.message, false);
      });
  }

  /* The table is refreshed in place, so its buttons are found through the document. */
  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button.purge');
    if (button && !button.disabled) { open(button.dataset.queue); }
  });
  input.addEventListener('input', function () { submit.disabled = input.value !== queue; });
  document.getElementById('purge-cancel').addEventListener('click', function () { dialog.close(); });
  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (input.value === queue) { purge(); }
  });
}());
