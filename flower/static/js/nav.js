/* The navigation menu on narrow screens: the Menu button shows and hides the
   links (the stylesheet hides them below the phone breakpoint unless the button
   says aria-expanded="true"); Escape closes the menu and gives the focus back. */
(function () {
  'use strict';

  var button = document.getElementById('nav-toggle');
  var menu = document.getElementById('nav-menu');
  if (!button || !menu) { return; }

  function setOpen(open) {
    button.setAttribute('aria-expanded', open ? 'true' : 'false');
  }

  button.addEventListener('click', function () {
    setOpen(button.getAttribute('aria-expanded') !== 'true');
  });
  menu.addEventListener('keydown', function (event) {
    if (event.key === 'Escape' && button.getAttribute('aria-expanded') === 'true') {
      setOpen(false);
      button.focus();
    }
  });
}());
