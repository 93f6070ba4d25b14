/* Numbered pages for the tables that page: 1 … 4 5 [6] 7 8 … 20. The first and
   last pages and two on each side of the current one are offered; the current
   page is marked (aria-current) and not clickable. */
(function () {
  'use strict';

  var flower = window.flower;
  var AROUND = 2;

  /* The page numbers to offer, with null where pages are left out. */
  flower.pageNumbers = function (current, count) {
    var numbers = [];
    for (var page = 1; page <= count; page++) {
      if (page === 1 || page === count || Math.abs(page - current) <= AROUND) {
        numbers.push(page);
      } else if (numbers[numbers.length - 1] !== null) {
        numbers.push(null);
      }
    }
    return numbers;
  };

  /* Fill `container` with one button per page; go(page) when one is chosen. */
  flower.renderPager = function (container, current, count, go) {
    container.replaceChildren();
    container.hidden = count <= 1;
    if (count <= 1) { return; }
    flower.pageNumbers(current, count).forEach(function (page) {
      if (page === null) {
        var gap = document.createElement('span');
        gap.className = 'page-gap';
        gap.textContent = '…';
        container.appendChild(gap);
        return;
      }
      var button = document.createElement('button');
      button.type = 'button';
      button.className = 'button small page-number';
      button.textContent = page.toLocaleString('en-US');
      button.setAttribute('aria-label', 'Page ' + page);
      if (page === current) {
        button.setAttribute('aria-current', 'page');
        button.disabled = true;
      } else {
        button.addEventListener('click', function () { go(page); });
      }
      container.appendChild(button);
    });
  };
}());
