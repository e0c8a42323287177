// The infusion timer on the bedside page: the minutes left before the infusion must start
// (or how late it is), counted down from the deadline the server recorded with the check.
(function () {
  "use strict";
  var box = document.querySelector("[data-deadline]");
  if (!box) { return; }
  var deadline = Date.parse(box.getAttribute("data-deadline"));
  var left = box.querySelector("[data-left]");
  var tick = function () {
    var minutes = Math.round((deadline - Date.now()) / 60000);
    box.classList.toggle("late", minutes < 0);
    left.textContent = minutes >= 0 ? "(" + minutes + " min left)" : "(" + (-minutes) + " min late)";
  };
  tick();
  window.setInterval(tick, 15000);
}());
