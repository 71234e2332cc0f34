/* Page glue: the per-user job socket drives the job panel (and any element
 * listening for "cohorta:job"), and htmx polling takes over while it is down. */
(function () {
  "use strict";

  function refreshJobViews() {
    document.body.dispatchEvent(new CustomEvent("jobs-changed", { bubbles: true }));
  }

  // While the panel floats over the page (wide screens), the page gets room below its end, so
  // whatever sits under the panel can be scrolled clear of it.
  function makeRoom(panel) {
    var floating = !panel.hidden && panel.offsetHeight > 0 && getComputedStyle(panel).position === "fixed";
    document.body.style.paddingBottom = floating ? panel.offsetHeight + 32 + "px" : "";
  }

  // Close hides the panel at once; the server remembers the jobs it showed, so the next refresh
  // brings back only jobs started since (htmx swaps that in, and the panel shows again).
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-hide-job-panel]")) {
      var panel = document.getElementById("job-panel");
      if (panel) { panel.hidden = true; makeRoom(panel); }
    }
  });

  // A job that ended leaves the panel after data-hide-in seconds (the server stops listing it then
  // too); when nothing is left, the panel empties and its :empty rule hides it.
  function scheduleHides(panel) {
    panel.querySelectorAll("[data-hide-in]").forEach(function (node) {
      window.setTimeout(function () {
        if (!node.isConnected) return;
        node.remove();
        if (!panel.querySelector(".job-row, .job-panel-summary")) panel.innerHTML = "";
        makeRoom(panel);
      }, (Number(node.dataset.hideIn) || 0) * 1000);
    });
  }
  document.addEventListener("htmx:afterSwap", function (event) {
    var panel = event.detail.target;
    if (!panel || panel.id !== "job-panel") return;
    panel.hidden = false;
    scheduleHides(panel);
    makeRoom(panel);
  });

  // Elapsed times ([data-elapsed]: seconds at render) tick on in the page between refreshes.
  function clock(seconds) {
    seconds = Math.max(0, Math.floor(seconds));
    var hours = Math.floor(seconds / 3600), minutes = Math.floor((seconds % 3600) / 60), secs = seconds % 60;
    var mm = hours ? String(minutes).padStart(2, "0") : String(minutes);
    return (hours ? hours + ":" : "") + mm + ":" + String(secs).padStart(2, "0");
  }
  window.setInterval(function () {
    var now = Date.now();
    document.querySelectorAll("[data-elapsed]").forEach(function (node) {
      if (!node.cohortaStart) node.cohortaStart = now - (Number(node.dataset.elapsed) || 0) * 1000;
      node.textContent = clock((now - node.cohortaStart) / 1000);
    });
  }, 1000);

  function showQuotaWarning(message) {
    if (document.getElementById("quota-banner")) return;
    var main = document.querySelector("main");
    if (!main) return;
    var banner = document.createElement("div");
    banner.id = "quota-banner";
    banner.className = "alert alert-warning shadow-sm";
    banner.setAttribute("role", "alert");
    banner.textContent = "You've used " + message.percent + "% of your monthly AI budget ($" +
      Number(message.spent_usd).toFixed(2) + " of $" + Number(message.limit_usd).toFixed(2) +
      "). AI work stops at 100%.";
    main.insertBefore(banner, main.firstChild);
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.body.dataset.live = "0";
    var path = document.body.dataset.jobsSocket;
    if (!path || !window.CohortaSocket) return;
    var pending = null;
    window.cohortaJobsSocket = new window.CohortaSocket(path, {
      onOpen: refreshJobViews,
      onMessage: function (message) {
        if (message.type === "quota.warning") {
          showQuotaWarning(message);
        }
        if (message.type === "job.update") {
          document.body.dispatchEvent(new CustomEvent("cohorta:job", { detail: message.job, bubbles: true }));
          // Coalesce bursts of progress into one partial refresh.
          if (!pending) pending = window.setTimeout(function () { pending = null; refreshJobViews(); }, 250);
        }
      }
    });
  });
})();
