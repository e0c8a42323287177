// Small, dependency-free behaviour for touch terminals.
(function () {
  "use strict";

  // Inactivity lock: after the site's timeout without a touch or key, go to the lock screen,
  // so an unattended terminal does not keep showing the record. The server enforces the same
  // timeout on the next request whatever this script does.
  var idle = parseInt(document.body.dataset.idleSeconds || "0", 10);
  var lockUrl = document.body.dataset.lockUrl;
  if (idle > 0 && lockUrl) {
    var timer;
    var reset = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        var here = window.location.pathname + window.location.search;
        window.location.assign(lockUrl + "?next=" + encodeURIComponent(here));
      }, idle * 1000);
    };
    ["pointerdown", "keydown", "touchstart", "scroll"].forEach(function (name) {
      document.addEventListener(name, reset, { passive: true });
    });
    reset();
  }

  // E-signature dialog: the sign button opens it; the form submits from inside it.
  document.querySelectorAll("[data-esign-open]").forEach(function (button) {
    var dialog = button.parentElement.querySelector("dialog.esign");
    if (!dialog) { return; }
    button.addEventListener("click", function () {
      // Check the form's own fields first (not the dialog's, which are still empty).
      var form = button.closest("form");
      if (form) {
        var fields = Array.prototype.filter.call(form.elements, function (el) {
          return !dialog.contains(el) && el.willValidate;
        });
        for (var i = 0; i < fields.length; i++) {
          if (!fields[i].checkValidity()) { fields[i].reportValidity(); return; }
        }
      }
      dialog.showModal();
      var first = dialog.querySelector("input");
      if (first) { first.focus(); }
    });
    dialog.querySelector("[data-esign-cancel]").addEventListener("click", function () {
      dialog.querySelectorAll("input").forEach(function (input) { input.value = ""; });
      dialog.close();
    });
  });

  // Forms are submitted once: a second tap while the first is on its way does nothing.
  document.querySelectorAll("form").forEach(function (form) {
    form.addEventListener("submit", function (event) {
      if (form.dataset.submitted) { event.preventDefault(); return; }
      form.dataset.submitted = "1";
    });
  });
})();
