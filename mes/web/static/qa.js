// The QA review page: ticking exceptions to sign together (progressive enhancement: without
// this script the form still sends every ticked exception; this only says what is ticked).
(function () {
  "use strict";
  var form = document.querySelector("form[data-bulk-review]");
  if (!form) { return; }
  var boxes = Array.prototype.slice.call(
    document.querySelectorAll("input[type=checkbox][form='" + form.id + "']"));
  var open = form.querySelector("[data-esign-open]");
  var status = form.querySelector("[data-ticked]");
  var label = open ? open.textContent : "";

  function ticked() { return boxes.filter(function (box) { return box.checked; }); }

  function show() {
    var n = ticked().length;
    if (open) {
      open.disabled = n === 0;
      open.textContent = n ? label.replace("selected", n === 1 ? "1 ticked" : n + " ticked") : label;
    }
    if (status) { status.textContent = n ? "" : "Tick the exceptions you have judged."; }
  }

  // The dialog lists each ticked exception: the signer sees what the one signature covers.
  if (open) {
    open.addEventListener("click", function () {
      var what = form.querySelector("dialog.esign .esign-what dd");
      if (!what) { return; }
      var list = document.createElement("ul");
      list.className = "ticked";
      ticked().forEach(function (box) {
        var item = document.createElement("li");
        item.textContent = box.dataset.title || box.value;
        list.appendChild(item);
      });
      what.textContent = ticked().length + " exceptions, each as shown on this page:";
      what.appendChild(list);
    });
  }
  boxes.forEach(function (box) { box.addEventListener("change", show); });
  show();
  // Back at the next exception after a signature: what was done is said here, in view, as
  // well as at the top of the page.
  var flash = document.querySelector("main > .flash");
  if (flash && status && window.location.hash) { status.textContent = flash.textContent; }
})();
