// Small, dependency-free behaviour for touch terminals.
(function () {
  "use strict";

  // Inactivity lock: after the site's timeout without a touch or key, post the top bar's lock
  // form (returning to this page after the unlock), so an unattended terminal does not keep
  // showing the record. The server enforces the same timeout on the next request whatever this
  // script does.
  var idle = parseInt(document.body.dataset.idleSeconds || "0", 10);
  var lockForm = document.querySelector("form[data-lock-form]");
  if (idle > 0 && lockForm) {
    var timer;
    var reset = function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        lockForm.elements.next.value = window.location.pathname + window.location.search;
        lockForm.submit();
      }, idle * 1000);
    };
    ["pointerdown", "keydown", "touchstart", "scroll"].forEach(function (name) {
      document.addEventListener(name, reset, { passive: true });
    });
    reset();
  }

  // E-signature dialog: the sign button opens it; the form submits from inside it. Wired for
  // the page at load, and by scan.js for a part it redraws (window.MES.wireSignatureButtons).
  var wireSignatureButtons = function (root) {
    root.querySelectorAll("[data-esign-open]").forEach(function (button) {
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
  };
  wireSignatureButtons(document);

  // Badge fields take a keyboard-wedge scanner: its Enter moves on to the PIN (the field named
  // by data-badge, else the next password field) instead of submitting without it.
  document.querySelectorAll("input[data-badge]").forEach(function (badge) {
    badge.addEventListener("keydown", function (event) {
      if (event.key !== "Enter") { return; }
      var scope = badge.closest("dialog") || badge.form;
      var pin = scope && scope.querySelector(badge.dataset.badge ?
        "[name='" + badge.dataset.badge + "']" : "input[type=password]");
      if (pin && !pin.value) { event.preventDefault(); pin.focus(); }
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
  // comment the deviation needs. It answers per keystroke, so it judges here, as the core does
  // (mes/core/limits.py: parse_value, then limit_status): a value the server would refuse gets
  // no hint (the refusal comes on saving), and a value is compared with the limits exactly,
  // digit by digit, as the server's decimals are (floats would miss 1e14 + 0.000001).
  // tests/e2e/test_limit_hint_matches_the_core.py holds the two to the same answers.
  var SPACE = "[\\t\\n\\v\\f\\r \\x1c-\\x1f\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029" +
    "\\u202f\\u205f\\u3000]";  // what Python's str.strip() removes (not the BOM, unlike trim())
  var STRIP = new RegExp("^" + SPACE + "+|" + SPACE + "+$", "g");
  var NUMBER = /^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)$/;  // ASCII digits, a point, no exponent
  var INTEGER = /^[+-]?\p{Nd}+$/u;  // digits of any script, which the server reads as int()
  var MAX_TEXT = 40, MAX_WHOLE_DIGITS = 15, MAX_DECIMALS = 6;
  var isDigit = function (codePoint) { return /\p{Nd}/u.test(String.fromCodePoint(codePoint)); };
  // Digits of any script as ASCII (Unicode keeps each script's 0-9 consecutive).
  var asciiDigits = function (text) {
    return text.replace(/\p{Nd}/gu, function (digit) {
      var point = digit.codePointAt(0), zero = point;
      while (isDigit(zero - 1)) { zero--; }
      return String((point - zero) % 10);
    });
  };
  // A number's sign, digits and the power of ten of its last digit, exactly ("-12.50" →
  // negative, "125", -1; a limit as the page writes it may be "1e-07").
  var decimal = function (text) {
    var m = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d+))?$/.exec(text);
    if (!m) { return null; }
    var fraction = m[3] || "", digits = (m[2] + fraction).replace(/^0+/, "");
    var zeros = /0*$/.exec(digits)[0].length;
    return {
      negative: m[1] === "-" && digits !== "",
      digits: digits.slice(0, digits.length - zeros),
      exponent: (m[4] ? parseInt(m[4], 10) : 0) - fraction.length + zeros
    };
  };
  var compare = function (a, b) {  // -1, 0 or 1, as a < b, a = b, a > b
    if (a.negative !== b.negative) { return a.negative ? -1 : 1; }
    var size;
    if (!a.digits || !b.digits) {
      size = (a.digits ? 1 : 0) - (b.digits ? 1 : 0);
    } else {
      size = Math.sign(a.digits.length + a.exponent - b.digits.length - b.exponent);
      if (!size) {
        var width = Math.max(a.digits.length, b.digits.length);
        var x = a.digits.padEnd(width, "0"), y = b.digits.padEnd(width, "0");
        size = x === y ? 0 : (x > y ? 1 : -1);
      }
    }
    return a.negative ? -size : size;
  };
  // limitStatus(text, limits): "ok", "alert" or "action", or null when the server would record
  // nothing. limits: the field's data attributes (alertLow, alertHigh, actionLow, actionHigh,
  // decimals) and type ("number" or "integer").
  var limitStatus = function (text, limits) {
    text = text.replace(STRIP, "");
    var integer = limits.type === "integer";
    if (!(integer ? INTEGER : NUMBER).test(text) || Array.from(text).length > MAX_TEXT) {
      return null;
    }
    var parts = text.replace(/^[+-]/, "").split(".");
    if (Array.from(parts[0].replace(/^0+/, "")).length > MAX_WHOLE_DIGITS) { return null; }
    var decimals = limits.decimals == null ? MAX_DECIMALS : parseInt(limits.decimals, 10);
    if (!integer && (parts[1] || "").length > decimals) { return null; }
    var value = decimal(integer ? asciiDigits(text) : text);
    var beyond = function (name, side) {
      var limit = limits[name] == null ? null : decimal(String(limits[name]));
      return limit !== null && compare(value, limit) === side;
    };
    if (beyond("actionLow", -1) || beyond("actionHigh", 1)) { return "action"; }
    if (beyond("alertLow", -1) || beyond("alertHigh", 1)) { return "alert"; }
    return "ok";
  };
  window.MES = { limitStatus: limitStatus, wireSignatureButtons: wireSignatureButtons };
  // One message per value, the worst that applies (outside the action limits, the alert limits
  // are not mentioned); outside the action limits the comment box the deviation needs opens.
  document.querySelectorAll(".value-field").forEach(function (field) {
    var input = field.querySelector("input[inputmode]");
    var hint = field.querySelector(".limit-hint");
    var comment = field.querySelector(".deviation-comment");
    if (!input || !hint) { return; }
    var check = function () {
      var type = input.getAttribute("inputmode") === "numeric" ? "integer" : "number";
      var status = limitStatus(input.value, Object.assign({ type: type }, field.dataset));
      hint.textContent = ""; hint.className = "limit-hint";
      if (comment) {
        var typed = comment.querySelector("textarea");
        // A comment already typed stays on screen: it is the operator's words, kept.
        comment.hidden = status !== "action" && !(typed && typed.value.trim());
      }
      if (status === "action") {
        hint.textContent = "Outside the action limits: a deviation will be raised.";
        hint.className = "limit-hint action";
      } else if (status === "alert") {
        hint.textContent = "Outside the alert limits: it will be flagged for review.";
        hint.className = "limit-hint alert";
      }
    };
    input.addEventListener("input", check);
    check();
  });

  // Dates and times are typed in the site's order on the 24-hour clock (the server reads them:
  // mes/core/dates.py); "Now" writes the site's present time, by the server's clock.
  document.querySelectorAll("input[data-date-time]").forEach(function (input) {
    var button = document.querySelector('[data-now-for="' + input.id + '"]');
    if (!button || !window.Intl) { return; }
    var skew = parseInt(input.dataset.siteNow || "0", 10) - Date.now();  // the server's clock
    var format;
    try {
      format = new Intl.DateTimeFormat("en-GB", {
        timeZone: input.dataset.timeZone, year: "numeric", month: "2-digit", day: "2-digit",
        hour: "2-digit", minute: "2-digit", hourCycle: "h23"
      });
    } catch (e) { return; }
    button.hidden = false;
    button.addEventListener("click", function () {
      var parts = {};
      format.formatToParts(new Date(Date.now() + skew)).forEach(function (p) { parts[p.type] = p.value; });
      input.value = input.dataset.dateTime.replace("YYYY", parts.year).replace("MM", parts.month)
        .replace("DD", parts.day).replace("HH", parts.hour).replace(/MM$/, parts.minute);
      input.dispatchEvent(new Event("input", { bubbles: true }));
      input.focus();
    });
  });

  // "Before you sign" ticks off, as they are filled, the items the server listed with the field
  // that fills them (data-missing-field): a field with a value, or a scan field marked done (an
  // accepted scan). The server judges again when the form is saved. A script that changes a
  // field without an input event calls window.MES.refreshMissing().
  var missingTicks = [];
  document.querySelectorAll(".missing li[data-missing-field]").forEach(function (item) {
    var form = item.closest("form");
    if (!form) { return; }
    var tick = function () {
      var named = form.elements.namedItem(item.dataset.missingField);
      var value = named ? String(named.value || "").trim() : "";
      var accepted = !!(named && named.closest && named.closest(".scan-field.done"));
      item.classList.toggle("done", value !== "" || accepted);
    };
    form.addEventListener("input", tick);
    form.addEventListener("change", tick);
    missingTicks.push(tick);
    tick();
  });
  window.MES.refreshMissing = function () { missingTicks.forEach(function (tick) { tick(); }); };

  // The hub's network page: follow the open deviations and the spokes' counts without
  // reloading. The page works without this (it shows what was true when it loaded); with it,
  // it asks data-alerts-url every data-refresh-seconds and re-renders the rows from the JSON
  // (as text, never as markup). Errors are retried quietly with a visible "offline" state; a
  // locked or ended session stops the polling until the page is reloaded.
  var live = document.querySelector("[data-alerts-url]");
  if (live && window.fetch) {
    var every = Math.max(1, parseFloat(live.dataset.refreshSeconds || "5")) * 1000;
    var status = live.querySelector("[data-live-status]");
    var body = live.querySelector("[data-alerts]");
    var count = live.querySelector("[data-open-count]");
    var more = live.querySelector("[data-alerts-more]");
    var spokeBody = document.querySelector("[data-spokes]");
    var spokesChanged = document.querySelector("[data-spokes-changed]");
    var failures = 0;
    var title = document.title;

    var say = function (text, state) {
      if (!status) { return; }
      status.textContent = text;
      status.className = "live-status " + (state || "");
    };
    var cell = function (row, text, className) {
      var td = document.createElement("td");
      if (className) { td.className = className; }
      td.textContent = text;
      row.appendChild(td);
      return td;
    };
    var alertRow = function (a, fresh) {
      var tr = document.createElement("tr");
      tr.dataset.alert = a.id;
      if (fresh) { tr.className = "new"; }
      cell(tr, a.site, "site");
      cell(tr, a.batch, "batch");
      cell(tr, a.phase);
      cell(tr, a.value, "value");
      var what = cell(tr, "");
      var pill = document.createElement("span");
      pill.className = "pill bad";
      pill.textContent = a.category;
      what.appendChild(pill);
      what.appendChild(document.createTextNode(" " + a.description));
      var raised = cell(tr, a.raised);
      raised.appendChild(document.createElement("br"));
      var by = document.createElement("small");
      by.className = "muted";
      by.textContent = "by " + a.raised_by;
      raised.appendChild(by);
      return tr;
    };
    // When each alert was first seen here: new ones stay highlighted for a few seconds.
    var firstSeen = {};
    body.querySelectorAll("tr[data-alert]").forEach(function (tr) { firstSeen[tr.dataset.alert] = 0; });
    var renderAlerts = function (data) {
      var now = Date.now();
      var rows = data.alerts.map(function (a) {
        if (!(a.id in firstSeen)) { firstSeen[a.id] = now; }
        return alertRow(a, firstSeen[a.id] && now - firstSeen[a.id] < 10000);
      });
      if (!rows.length) {
        var empty = document.createElement("tr");
        empty.className = "empty";
        empty.dataset.empty = "";
        var td = cell(empty, "No open deviations at any spoke. New ones appear here within seconds of being recorded.");
        td.colSpan = 6;
        rows = [empty];
      }
      body.replaceChildren.apply(body, rows);
      if (count) {
        count.textContent = String(data.open_deviations);
        count.className = "count " + (data.open_deviations ? "bad" : "ok");
      }
      if (more) {
        more.hidden = data.open_deviations <= data.alerts.length;
        more.textContent = "Showing the newest " + data.alerts.length + " of " +
          data.open_deviations + " open deviations.";
      }
      document.title = (data.open_deviations ? "(" + data.open_deviations + ") " : "") + title;
    };
    var renderSpokes = function (data) {
      if (!spokeBody) { return; }
      var shown = spokeBody.querySelectorAll("tr[data-spoke]").length;
      data.spokes.forEach(function (s) {
        var tr = spokeBody.querySelector('tr[data-spoke="' + s.code + '"]');
        if (!tr) { return; }
        var set = function (field, text) {
          var el = tr.querySelector('[data-field="' + field + '"]');
          if (el && el.textContent !== text) { el.textContent = text; }
          return el;
        };
        var pill = set("status_text", s.status_text);
        if (pill) {
          pill.className = "pill " + (s.status === "active" ? "ok" : s.status === "revoked" ? "bad" : "warn");
        }
        set("status_reason", s.status_reason || "");
        set("batches_text", s.batches + " (" + s.in_progress + " in progress)");
        var open = set("open_deviations", String(s.open_deviations));
        if (open) { open.className = "pill " + (s.open_deviations ? "bad" : "ok"); }
        set("last_seen", s.last_seen);
        var clock = set("clock", s.clock);
        if (clock) { clock.className = s.clock_warning ? "pill bad" : ""; }
        set("last_received", s.last_received);
      });
      if (spokesChanged) { spokesChanged.hidden = shown === data.spokes.length; }
    };
    var schedule = function () {
      var wait = failures ? Math.min(every * Math.pow(2, failures - 1), 30000) : every;
      setTimeout(poll, wait);
    };
    var stop = function (text) {
      say(text, "stopped");
    };
    var poll = function () {
      var controller = window.AbortController ? new AbortController() : null;
      var timeout = controller ? setTimeout(function () { controller.abort(); }, 10000) : null;
      fetch(live.dataset.alertsUrl, {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        cache: "no-store",
        signal: controller ? controller.signal : undefined
      }).then(function (response) {
        clearTimeout(timeout);
        var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
        if (response.status === 401 || response.status === 403 || response.redirected || !json) {
          stop(response.status === 401
            ? "Session locked: live updates stopped. Unlock, then reload this page."
            : response.status === 403
              ? "You may no longer watch the network: live updates stopped."
              : "Not logged in any more: live updates stopped. Log in, then reload this page.");
          return;
        }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.json().then(function (data) {
          renderAlerts(data);
          renderSpokes(data);
          failures = 0;
          say("Live · as of " + data.as_of + ".", "live");
          schedule();
        });
      }).catch(function () {
        clearTimeout(timeout);
        failures += 1;
        say("Hub page offline, retrying…", "offline");
        schedule();
      });
    };
    say(status ? status.textContent : "", "live");
    schedule();
  }
})();
