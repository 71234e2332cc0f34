/* Page glue: the per-user job socket drives the job panel (and any element
 * listening for "cohorta:job"), and htmx polling takes over while it is down. */
(function () {
  "use strict";

  function refreshJobViews() {
    document.body.dispatchEvent(new CustomEvent("jobs-changed", { bubbles: true }));
  }

  // Hiding the panel lasts until the next job update brings news.
  document.addEventListener("click", function (event) {
    if (event.target.closest("[data-hide-job-panel]")) {
      var panel = document.getElementById("job-panel");
      if (panel) panel.hidden = true;
    }
  });
  document.addEventListener("cohorta:job", function () {
    var panel = document.getElementById("job-panel");
    if (panel) panel.hidden = false;
  });

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
