// A witness who signs in place (issue 15): in a signature dialog that offers "Sign as another
// person", the witness's own badge and PIN, or user ID and password, are asked; the logged-in user stays logged
// in. The server decides everything again (mes/services/esign.py witness_context); this only
// shows the right fields and puts the caret where the next person types.
(function () {
  "use strict";

  var typable = function (dialog) {
    return Array.prototype.filter.call(
      dialog.querySelectorAll("input:not([type=hidden]):not([type=checkbox])"),
      function (input) { return !input.disabled && !input.closest("[hidden]"); }
    );
  };

  document.querySelectorAll("dialog.esign[data-witness]").forEach(function (dialog) {
    var toggle = dialog.querySelector("[data-witness-toggle]");
    var fixed = dialog.querySelector("[data-witness-fixed]");
    var signer = dialog.querySelector("[data-esign-signer]");
    var ownSigner = signer ? signer.textContent : "";
    // Only a witness scans a badge or types a user ID (the logged-in user's later signings
    // take the secret alone): those fields show while "Sign as another person" is ticked.
    var idLabels = dialog.querySelectorAll("[data-witness-id]");
    var secretLabel = dialog.querySelector("[data-secret-label]");
    var opener = dialog.parentElement.querySelector("[data-esign-open]");

    var show = function (witnessing) {
      dialog.classList.toggle("witnessing", witnessing);
      if (signer && toggle) {
        signer.textContent = witnessing ? toggle.dataset.witnessSigner : ownSigner;
      }
      Array.prototype.forEach.call(idLabels, function (label) {
        label.hidden = !witnessing;
        label.querySelector("input").disabled = !witnessing;
      });
      if (secretLabel) {
        secretLabel.textContent = witnessing
          ? secretLabel.dataset.witnessLabel : secretLabel.dataset.own;
      }
    };
    var focusFirst = function () {
      var first = typable(dialog)[0];
      if (first) { first.focus(); }
    };

    show(false);
    if (toggle) {
      toggle.addEventListener("change", function () {
        show(toggle.checked);
        typable(dialog).forEach(function (input) { input.value = ""; });
        focusFirst();
      });
    }
    // mes.js opens the dialog and focuses its first input (the checkbox, or a hidden field):
    // the caret goes to the first field to type in instead.
    if (opener) {
      opener.addEventListener("click", function () { if (dialog.open) { focusFirst(); } });
    }
    // mes.js's Cancel empties every input of the dialog, the witness's switch too: restore it.
    var cancel = dialog.querySelector("[data-esign-cancel]");
    if (cancel) {
      cancel.addEventListener("click", function () {
        if (fixed) { fixed.value = "y"; }
        if (toggle) { toggle.value = "y"; toggle.checked = false; }
        show(false);
      });
    }
  });
})();
