// The signed PDF record takes seconds to make (17.8 s measured on a loaded machine): a link to
// it says "Preparing the record…" with a progress bar while the server works, then saves the
// file. Any other signed PDF the hub makes on request (the comparability report) marks its link
// with data-signed-pdf="<what is prepared>" and gets the same. Progressive enhancement: without script, or if anything goes wrong here, the link is
// an ordinary download. No inline script (the CSP forbids it): loaded from base.html.
(function () {
  "use strict";

  var LINKS = 'a[href$="/record.pdf"], a[data-signed-pdf]';

  var filenameOf = function (response, fallback) {
    var disposition = response.headers.get("Content-Disposition") || "";
    var match = /filename="([^"]+)"/.exec(disposition);
    return match ? match[1] : fallback;
  };

  var busy = function (link) {
    var label = link.textContent;
    var what = link.getAttribute("data-signed-pdf") || "the record";
    link.setAttribute("aria-busy", "true");
    link.classList.add("preparing");
    link.textContent = "Preparing " + what + "… ";
    var bar = document.createElement("progress"); // no value: an indeterminate bar
    bar.setAttribute("aria-label", "Preparing " + what);
    link.appendChild(bar);
    var status = document.getElementById("download-status");
    if (!status) {
      status = document.createElement("span");
      status.id = "download-status";
      status.className = "visually-hidden";
      status.setAttribute("aria-live", "polite");
      document.body.appendChild(status);
    }
    status.textContent = "Preparing " + what + "…";
    return function done(message) {
      link.textContent = label;
      link.removeAttribute("aria-busy");
      link.classList.remove("preparing");
      status.textContent = message || "";
    };
  };

  var save = function (blob, filename) {
    var url = URL.createObjectURL(blob);
    var anchor = document.createElement("a");
    anchor.href = url;
    anchor.download = filename;
    anchor.hidden = true;
    document.body.appendChild(anchor);
    anchor.click();
    anchor.remove();
    window.setTimeout(function () { URL.revokeObjectURL(url); }, 60000);
  };

  var download = function (event, link) {
    if (!window.fetch || !window.URL || !URL.createObjectURL) return; // the plain link
    if (event.defaultPrevented || event.button !== 0 || event.ctrlKey || event.metaKey ||
        event.shiftKey || event.altKey) return; // a new tab, a menu: as the browser does it
    event.preventDefault();
    if (link.getAttribute("aria-busy") === "true") return; // one request at a time
    var done = busy(link);
    fetch(link.href, { credentials: "same-origin" })
      .then(function (response) {
        var type = response.headers.get("Content-Type") || "";
        if (!response.ok || type.indexOf("application/pdf") !== 0) {
          // the server's page says what went wrong (a refusal, a login): show it as it is
          window.location.assign(link.href);
          return null;
        }
        var fallback = link.pathname.split("/").slice(-2).join("-");
        return response.blob().then(function (blob) {
          save(blob, filenameOf(response, fallback));
          var what = link.getAttribute("data-signed-pdf") || "the record";
          done(what.charAt(0).toUpperCase() + what.slice(1) + " is downloaded.");
        });
      })
      .catch(function () {
        done();
        window.location.assign(link.href);
      });
  };

  // One listener for the page (links added later are enhanced too).
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest(LINKS) : null;
    if (link) download(event, link);
  });
})();
