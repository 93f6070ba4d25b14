/* The colour theme: loaded in <head> so the chosen theme applies before the first
   paint. "system" (the default) leaves it to prefers-color-scheme in the stylesheet;
   "light" or "dark" is set as <html data-theme>, and kept in localStorage. It also
   marks <html class="js">, which the stylesheet uses to show the script-only
   controls (the theme switch, the phone menu button). */
(function () {
  'use strict';

  var KEY = 'flower.theme';
  var CHOICES = {system: true, light: true, dark: true};
  var root = document.documentElement;

  function stored() {
    var value = null;
    try { value = window.localStorage.getItem(KEY); } catch (e) { /* storage disabled */ }
    return CHOICES[value] ? value : 'system';
  }

  function apply(choice) {
    if (choice === 'system') {
      root.removeAttribute('data-theme');
    } else {
      root.setAttribute('data-theme', choice);
    }
  }

  root.classList.add('js');
  apply(stored());

  document.addEventListener('DOMContentLoaded', function () {
    var select = document.getElementById('theme-select');
    if (!select) { return; }
    select.value = stored();
    select.addEventListener('change', function () {
      var choice = CHOICES[select.value] ? select.value : 'system';
      try { window.localStorage.setItem(KEY, choice); } catch (e) { /* kept for this page only */ }
      apply(choice);
    });
  });
}());
