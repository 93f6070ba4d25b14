/* Flower's own page helpers. Everything shown is inserted as text, never as HTML. */
(function () {
  'use strict';
  window.flower = {
    urlPrefix: document.body.dataset.urlPrefix || '',
    autoRefresh: document.body.dataset.autoRefresh === 'true',
    url: function (path) { return this.urlPrefix + path; }
  };
}());
