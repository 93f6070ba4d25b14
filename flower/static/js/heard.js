/* "last heard just now": when flower last heard from a worker, relative to now
   (kept current every second), the date and time in the tooltip. Elements:
   <time data-heard="POSIX seconds">. */
(function () {
  'use strict';

  function ago(seconds) {
    if (seconds < 5) { return 'just now'; }
    if (seconds < 60) { return Math.floor(seconds) + ' s ago'; }
    if (seconds < 3600) { return Math.floor(seconds / 60) + ' min ago'; }
    if (seconds < 86400) { return Math.floor(seconds / 3600) + ' h ago'; }
    return Math.floor(seconds / 86400) + ' d ago';
  }

  function show() {
    document.querySelectorAll('time[data-heard]').forEach(function (time) {
      var moment = parseFloat(time.dataset.heard);
      if (isNaN(moment)) { return; }
      var date = new Date(moment * 1000);
      time.title = flower.absoluteTime(date);
      time.textContent = ago(Math.max(0, Date.now() / 1000 - moment));
    });
  }

  ['flower:live', 'flower:refreshed'].forEach(function (type) { document.addEventListener(type, show); });
  window.setInterval(show, 1000);
  show();
}());
