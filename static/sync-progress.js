// Settings → Online Shop: follows a running Shopify product sync.
//
// The page works without this file (Sync Now is a plain form; a reload shows where the run
// is). With it, each connection whose latest run is still running polls that run's JSON
// progress and moves its <progress> bar until the run ends, then shows the new product count.
// No dependencies; loaded with `defer`, so the DOM is parsed when it runs.
(function () {
  "use strict";

  var POLL_MS = 1000;
  var MAX_MISSES = 10; // consecutive failed polls before giving up (network down, signed out)

  function fmt(n) {
    return Number(n || 0).toLocaleString("en-US");
  }

  function follow(box) {
    var url = box.getAttribute("data-sync-url");
    var wrap = box.querySelector(".sync-progress");
    var bar = box.querySelector("progress");
    var label = box.querySelector("[data-sync-label]");
    var announce = box.querySelector("[data-sync-announce]");
    var error = box.querySelector("[data-sync-error]");
    var misses = 0;
    var quarter = -1;

    // A live region read out on every poll would talk over everything else: announce the
    // start, each quarter and the end only; the bar itself always carries the exact value.
    function say(text) {
      announce.textContent = text;
    }

    function running(s) {
      wrap.hidden = false;
      box.querySelector("[data-sync-count]").textContent = fmt(s.productCount);
      if (s.total) {
        bar.max = s.total;
        bar.value = Math.min(s.done, s.total);
        label.textContent = "Syncing products… " + fmt(s.done) + " of " + fmt(s.total);
        var q = Math.floor((4 * s.done) / s.total);
        if (q !== quarter) {
          quarter = q;
          say(label.textContent);
        }
      } else {
        bar.removeAttribute("value"); // an indeterminate bar: the total is not known
        label.textContent = "Syncing products… " + fmt(s.done) + " so far";
        if (quarter < 0) {
          quarter = 0;
          say(label.textContent);
        }
      }
    }

    function finished(s) {
      if (s.status === "done") {
        bar.max = Math.max(s.total || s.done, 1);
        bar.value = bar.max;
        label.textContent = "Synced " + fmt(s.done) + " products.";
        box.querySelector("[data-sync-count]").textContent = fmt(s.productCount);
        box.querySelector("[data-sync-when]").textContent = "synced just now";
        say(label.textContent);
      } else {
        wrap.hidden = true;
        error.textContent = "The last sync failed: " + (s.error || "no reason given.");
        error.hidden = false; // role=alert: read out at once
      }
    }

    function poll() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (response) {
          if (response.status === 404) {
            return null; // the connection (and its runs) went away: nothing to follow
          }
          if (!response.ok) {
            throw new Error("HTTP " + response.status);
          }
          return response.json();
        })
        .then(function (s) {
          misses = 0;
          if (!s) {
            return;
          }
          box.setAttribute("data-sync-status", s.status);
          if (s.status === "running") {
            running(s);
            window.setTimeout(poll, POLL_MS);
          } else {
            finished(s);
          }
        })
        .catch(function () {
          misses += 1;
          if (misses < MAX_MISSES) {
            window.setTimeout(poll, POLL_MS * Math.min(misses + 1, 5));
          } else {
            label.textContent = "Lost track of the sync — reload the page to see where it is.";
          }
        });
    }

    poll();
  }

  var boxes = document.querySelectorAll('.sync[data-sync-status="running"][data-sync-url]');
  Array.prototype.forEach.call(boxes, follow);
})();
