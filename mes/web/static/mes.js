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

  // Scan fields take a keyboard-wedge scanner: the first empty one has the focus, so a scan
  // lands in it and the scanner's Enter saves the form.
  if (!document.querySelector("[autofocus]")) {
    var scan = Array.prototype.find.call(document.querySelectorAll("input[data-scan]"), function (el) {
      return !el.value;
    });
    if (scan) { scan.focus(); }
  }

  // Countdowns: "in 1 h 05 min", updated every second, for timers and the board.
  var countdowns = document.querySelectorAll("time[data-countdown]");
  var pad = function (n) { return (n < 10 ? "0" : "") + n; };
  var spell = function (seconds) {
    if (seconds <= 0) { return "now"; }
    var d = Math.floor(seconds / 86400), h = Math.floor(seconds % 86400 / 3600);
    var m = Math.floor(seconds % 3600 / 60), s = Math.floor(seconds % 60);
    if (d) { return d + " d " + h + " h"; }
    if (h) { return h + " h " + pad(m) + " min"; }
    return m + " min " + pad(s) + " s";
  };
  if (countdowns.length) {
    var tick = function () {
      countdowns.forEach(function (el) {
        var due = Date.parse(el.dataset.countdown);
        if (!isNaN(due)) { el.textContent = spell((due - Date.now()) / 1000); }
      });
    };
    tick();
    setInterval(tick, 1000);
  }

  // Limits, as the operator types: say at once when a value is outside the alert or action
  // limits (the server judges again when it records); outside action limits, ask for the
  // comment the deviation needs.
  document.querySelectorAll(".value-field").forEach(function (field) {
    var input = field.querySelector("input[inputmode]");
    var hint = field.querySelector(".limit-hint");
    var comment = field.querySelector(".deviation-comment");
    if (!input || !hint) { return; }
    var limit = function (name) {
      var v = field.dataset[name];
      return v === undefined ? null : parseFloat(v);
    };
    var check = function () {
      var value = parseFloat(input.value);
      hint.textContent = ""; hint.className = "limit-hint";
      if (input.value.trim() === "" || isNaN(value)) { return; }
      var aLow = limit("actionLow"), aHigh = limit("actionHigh");
      var lLow = limit("alertLow"), lHigh = limit("alertHigh");
      if ((aLow !== null && value < aLow) || (aHigh !== null && value > aHigh)) {
        hint.textContent = "Outside the action limits: a deviation will be raised.";
        hint.className = "limit-hint action";
        if (comment) { comment.hidden = false; }
      } else if ((lLow !== null && value < lLow) || (lHigh !== null && value > lHigh)) {
        hint.textContent = "Outside the alert limits: it will be flagged for review.";
        hint.className = "limit-hint alert";
      }
    };
    input.addEventListener("input", check);
    check();
  });
})();
