// The final label: after the print was recorded, open the browser's print dialog once.
(function () {
  "use strict";
  if (document.body.dataset.autoprint === "1") {
    window.addEventListener("load", function () { window.print(); });
  }
})();
