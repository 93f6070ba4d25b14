/* Copy buttons: <button data-copy="selector"> puts the text of the element the
   selector names on the clipboard, and says for a moment whether that worked.
   Delegated from the document, so buttons in regions swapped by a live refresh work. */
(function () {
  'use strict';

  var SHOWN_MS = 1500;

  document.addEventListener('click', function (event) {
    var button = event.target.closest && event.target.closest('button[data-copy]');
    if (!button) { return; }
    var source = document.querySelector(button.dataset.copy);
    if (!source || !navigator.clipboard) { return; }
    var label = button.dataset.label || button.textContent;
    button.dataset.label = label;
    navigator.clipboard.writeText(source.textContent).then(
      function () { button.textContent = 'Copied'; },
      function () { button.textContent = 'Copy failed'; }
    ).then(function () {
      window.setTimeout(function () { button.textContent = label; }, SHOWN_MS);
    });
  });
}());
