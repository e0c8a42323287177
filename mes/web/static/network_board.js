// The hub's live board of batches in progress: follows the spokes without reloading.
// The page works without this (it shows what was true when it loaded); with it, it asks
// data-board-url every data-refresh-seconds and re-renders the rows from the JSON (as text,
// never as markup), the same rows the page was rendered from. Errors are retried quietly with
// a visible "offline" state; a locked or ended session, or a refused filter, stops the polling.
(function () {
  "use strict";
  var live = document.querySelector("[data-board-url]");
  if (!live || !window.fetch) { return; }
  var every = Math.max(1, parseFloat(live.dataset.refreshSeconds || "5")) * 1000;
  var status = live.querySelector("[data-live-status]");
  var body = live.querySelector("[data-board-rows]");
  var count = live.querySelector("[data-board-count]");
  var overdueNote = live.querySelector("[data-overdue-note]");
  var overdueList = live.querySelector("[data-overdue-list]");
  var spokeBody = document.querySelector("[data-board-spokes]");
  var filtered = /[?&](site|product)=[^&]/.test(live.dataset.boardUrl);
  var failures = 0;
  var firstSeen = {};
  body.querySelectorAll("tr[data-batch]").forEach(function (tr) { firstSeen[tr.dataset.batch] = 0; });

  var say = function (text, state) {
    if (!status) { return; }
    status.textContent = text;
    status.className = "live-status " + (state || "");
  };
  var el = function (tag, text, className) {
    var node = document.createElement(tag);
    if (className) { node.className = className; }
    if (text !== undefined && text !== null) { node.textContent = text; }
    return node;
  };
  var cell = function (row, className) {
    var td = el("td", null, className);
    row.appendChild(td);
    return td;
  };
  var below = function (td, node) {
    td.appendChild(document.createElement("br"));
    td.appendChild(node);
  };

  var batchRow = function (b, overdue, fresh) {
    var tr = document.createElement("tr");
    tr.dataset.batch = b.id;
    tr.className = [overdue ? "overdue" : "", fresh ? "new" : ""].join(" ").trim();
    var site = cell(tr, "site");
    site.textContent = b.site;
    if (overdue) { below(site, el("span", "no contact", "pill warn")); }
    var batch = cell(tr, "batch");
    if (b.record_url) {
      var link = el("a", b.number);
      link.href = b.record_url;
      batch.appendChild(link);
    } else {
      batch.textContent = b.number;
    }
    if (b.demo) { below(batch, el("small", "demo", "pill")); }
    var product = cell(tr, "product");
    product.textContent = b.product;
    below(product, el("small", b.status_text, "muted"));
    cell(tr).textContent = b.phase;
    var timer = cell(tr);
    timer.appendChild(el("span", b.timer, b.timer_due ? "pill warn" : ""));
    if (b.timer_at) { below(timer, el("small", b.timer_at, "muted")); }
    cell(tr).appendChild(el("span", String(b.open_deviations), "pill " + (b.open_deviations ? "bad" : "ok")));
    var copy = cell(tr);
    copy.textContent = "newest entry " + b.newest_entry;
    below(copy, el("small", b.lag, b.lag_warning ? "pill warn" : "muted"));
    return tr;
  };

  var spokeRow = function (s) {
    var tr = document.createElement("tr");
    tr.dataset.spoke = s.code;
    if (s.overdue) { tr.className = "overdue"; }
    var name = cell(tr);
    name.appendChild(el("strong", s.code));
    name.appendChild(document.createTextNode(" " + s.name));
    below(name, el("small", s.status_text, "muted"));
    cell(tr, "num").textContent = String(s.in_progress);
    var contact = cell(tr);
    if (s.overdue) {
      var flag = el("span", s.contact, "pill warn");
      flag.setAttribute("role", "alert");
      contact.appendChild(flag);
    } else {
      contact.textContent = s.contact;
    }
    if (s.last_seen_at) { below(contact, el("small", s.last_seen, "muted")); }
    cell(tr).appendChild(el("span", s.clock, s.clock_warning ? "pill bad" : ""));
    return tr;
  };

  var render = function (data) {
    var now = Date.now();
    var overdue = {};
    data.overdue.forEach(function (code) { overdue[code] = true; });
    var rows = data.batches.map(function (b) {
      if (!(b.id in firstSeen)) { firstSeen[b.id] = now; }
      return batchRow(b, overdue[b.site], firstSeen[b.id] && now - firstSeen[b.id] < 10000);
    });
    if (!rows.length) {
      var empty = el("tr", null, "empty");
      empty.dataset.empty = "";
      var td = cell(empty);
      td.colSpan = 7;
      td.textContent = filtered
        ? "No batch in progress matches these filters."
        : "No batch in progress at any spoke. A batch appears here within seconds of being started at its spoke.";
      rows = [empty];
    }
    body.replaceChildren.apply(body, rows);
    if (count) {
      count.textContent = String(data.batches.length);
    }
    if (overdueNote) {
      overdueNote.hidden = !data.overdue.length;
      if (overdueList) { overdueList.textContent = data.overdue.join(", "); }
      var demoNote = overdueNote.querySelector("[data-demo-note]");
      if (demoNote) {
        demoNote.hidden = !(data.demo_only && data.demo_only.length);
        demoNote.querySelector("[data-demo-list]").textContent = (data.demo_only || []).join(", ");
      }
    }
    if (spokeBody && data.spokes.length) {
      spokeBody.replaceChildren.apply(spokeBody, data.spokes.map(spokeRow));
    }
  };

  var schedule = function () {
    var wait = failures ? Math.min(every * Math.pow(2, failures - 1), 30000) : every;
    setTimeout(poll, wait);
  };
  var poll = function () {
    var controller = window.AbortController ? new AbortController() : null;
    var timeout = controller ? setTimeout(function () { controller.abort(); }, 10000) : null;
    fetch(live.dataset.boardUrl, {
      headers: { Accept: "application/json" },
      credentials: "same-origin",
      cache: "no-store",
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      clearTimeout(timeout);
      var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (response.status === 401 || response.status === 403 || response.redirected || !json) {
        say(response.status === 401
          ? "Session locked: live updates stopped. Unlock, then reload this page."
          : response.status === 403
            ? "You may no longer watch the network: live updates stopped."
            : "Not logged in any more: live updates stopped. Log in, then reload this page.",
        "stopped");
        return;
      }
      if (response.status === 400 || response.status === 404) {
        return response.json().then(function (data) {
          say((data.message || "The filter was refused") + " Live updates stopped.", "stopped");
        });
      }
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.json().then(function (data) {
        render(data);
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
}());
