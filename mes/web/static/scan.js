// Scanner-first entry: a keyboard-wedge scanner types a code and presses Enter in the focused
// field. On every form with a scan field (starting a batch, a phase in progress, receiving a lot):
//  - Enter never submits a form whose fields are not all filled: it moves to the next empty
//    field (on the start form, with every field filled, it opens the signature dialog);
//  - on a phase, a scan is sent alone as it is made (the same POST as the form's, asking for
//    JSON: the same service call records it), shown without a page load, and the focus moves to
//    the next empty scan field; a refused scan's message appears at its field, focused; the
//    first scan on a ready phase starts it: its status is redrawn and its Start button goes;
//  - on load, a refusal the server placed at a field or a button (.refusal) is scrolled into
//    view (clear of the sticky bar: scroll-margin in mes.css) and its field or button focused.
// Without this script the plain forms work as before: Enter saves, the page answers.
(function () {
  "use strict";

  var TEXT_FIELDS = "input:not([type=hidden]):not([type=radio]):not([type=checkbox])" +
    ":not([type=submit]):not([type=button])";

  var visible = function (el) {
    return !el.disabled && !el.closest("[hidden], dialog") && el.getClientRects().length > 0;
  };

  // A field still to be filled: empty, and not a scan slot already done ("Scan to replace").
  var isEmpty = function (el) {
    return !el.value.trim() && !el.closest(".scan-field.done");
  };

  var caretAtEnd = function (el) {
    try {
      var end = el.value.length;
      el.setSelectionRange(end, end);
    } catch (ignored) { /* date and number fields have no caret to place */ }
  };

  var focusField = function (el) {
    el.focus({ preventScroll: true });
    caretAtEnd(el);
    (el.closest(".field") || el).scrollIntoView({ block: "nearest" });
  };

  // The next empty field of `selector` after the node `from` in the form, wrapping round to
  // the form's first (from the first when `from` is null or no longer on the page).
  var nextEmpty = function (form, from, selector) {
    var fields = Array.prototype.filter.call(form.querySelectorAll(selector), visible);
    var after = function (el) {
      return from && from.isConnected && el !== from && !from.contains(el) &&
        (from.compareDocumentPosition(el) & Node.DOCUMENT_POSITION_FOLLOWING);
    };
    var ordered = fields.filter(after).concat(fields.filter(function (el) { return !after(el); }));
    return ordered.find(function (el) { return el !== from && isEmpty(el); }) || null;
  };

  // A refusal shown at its field or button: in view, its field or button focused, announced
  // (role=alert). Without a field or button beside it, the message itself takes the focus.
  var showRefusal = function (message) {
    var field = message.closest(".field");
    var control = field && field.querySelector(TEXT_FIELDS + ", textarea, select");
    if (!control) {
      var actions = message.closest(".actions, form");
      control = actions && actions.querySelector("[data-esign-open]");
    }
    if (!control) {
      message.tabIndex = -1;
      control = message;
    }
    control.focus({ preventScroll: true });
    if (control !== message) { caretAtEnd(control); }
    (field || message).scrollIntoView({ block: "nearest" });
    message.scrollIntoView({ block: "nearest" });
  };

  var firstRefusal = document.querySelector(".refusal");
  if (firstRefusal) { showRefusal(firstRefusal); }

  // Every form with a scan field (data-scan-form marks the start and phase forms).
  var forms = Array.prototype.filter.call(document.querySelectorAll("form"), function (form) {
    return form.matches("[data-scan-form]") || !!form.querySelector("input[data-scan]");
  });
  forms.forEach(function (form) {
    var phase = form.matches("[data-scan-form]") &&
      /\/record$/.test(form.getAttribute("action") || "");

    // On load with nothing refused, the first slot still to scan has the focus (not a slot
    // already done, whose field only replaces its scan).
    if (phase && !firstRefusal && !document.querySelector("[autofocus]")) {
      var first = nextEmpty(form, null, "input[data-scan]");
      if (first) { first.focus(); }
    }

    form.addEventListener("keydown", function (event) {
      var field = event.target;
      if (event.key !== "Enter" || event.isComposing || !field.matches(TEXT_FIELDS) ||
          field.closest("dialog")) {
        return;
      }
      if (phase && field.matches("[data-scan]") && field.value.trim() && window.fetch) {
        event.preventDefault();
        sendScan(form, field);
        return;
      }
      var next = field.matches("[data-scan]")
        ? nextEmpty(form, field, "input[data-scan]") || nextEmpty(form, field, TEXT_FIELDS)
        : nextEmpty(form, field, TEXT_FIELDS);
      if (next) {
        event.preventDefault();
        focusField(next);
      } else if (!phase) {
        // Every field is in: Enter opens the signature dialog (never a bare submit of a signed
        // form), or submits a form that is not signed.
        var sign = form.querySelector("[data-esign-open]");
        if (sign) {
          event.preventDefault();
          sign.click();
        }
      }
    });
  });

  // --- one scan, checked and shown without a page load ------------------------------------------

  var replaceFrom = function (fresh, selector) {
    var now = document.querySelector(selector), then = fresh.querySelector(selector);
    if (!now || !then) { return null; }
    var part = document.importNode(then, true);
    now.replaceWith(part);
    // A signature button in the new part (a new deviation's Acknowledge) opens its dialog as
    // the page's own buttons do.
    window.MES.wireSignatureButtons(part);
    return part;
  };

  var sendScan = function (form, field) {
    if (field.dataset.sending) { return; }
    field.dataset.sending = "1";
    field.setAttribute("aria-busy", "true");
    var data = new FormData();
    ["csrf_token", "seen_seq"].forEach(function (name) {
      if (form.elements[name]) { data.append(name, form.elements[name].value); }
    });
    data.append(field.name, field.value);
    var key = field.name;
    var plain = function () {  // anything unexpected: the plain form, as without script
      delete field.dataset.sending;
      field.removeAttribute("aria-busy");
      form.requestSubmit();
    };
    fetch(form.action, {
      method: "POST",
      body: data,
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (response) {
      var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (!json || response.redirected) { plain(); return; }
      return response.json().then(function (answer) {
        if (typeof answer.page !== "string") { plain(); return; }
        var fresh = new DOMParser().parseFromString(answer.page, "text/html");
        document.querySelectorAll("input[name=seen_seq]").forEach(function (input) {
          input.value = answer.seen_seq;
        });
        var slot = replaceFrom(fresh, '[data-slot="' + CSS.escape(key) + '"]');
        replaceFrom(fresh, '[data-live="missing"]');
        // A first scan on a ready phase started it: its status, and no more "Start this phase".
        replaceFrom(fresh, '[data-live="status"]');
        var start = document.querySelector('[data-live="start"]');
        if (start && !fresh.querySelector('[data-live="start"]')) { start.remove(); }
        replaceFrom(fresh, '[data-live="deviations"]');
        // How many scans the page has answered (what a test waits for instead of a page load).
        form.dataset.scansAnswered = String(parseInt(form.dataset.scansAnswered || "0", 10) + 1);
        form.dispatchEvent(new CustomEvent("mes:scanned", { detail: answer }));
        var refusal = slot && slot.querySelector(".refusal");
        if (refusal) {
          showRefusal(refusal);
          return;
        }
        var next = nextEmpty(form, slot, "input[data-scan]") || nextEmpty(form, slot, TEXT_FIELDS);
        if (next) {
          focusField(next);
        } else {
          var sign = form.querySelector(".sticky-actions [data-esign-open]");
          if (sign) { sign.focus(); }
        }
      });
    }).catch(plain);
  };
})();
