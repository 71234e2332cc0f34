/* Back-office analytics chart, drawn from the JSON the page embeds (Chart.js 4, vendored). */
(function () {
  "use strict";
  var PALETTE = ["rgba(79, 70, 229, .8)", "rgba(244, 114, 182, .75)", "rgba(16, 185, 129, 1)"];

  function money(v) {
    return "$" + Number(v).toLocaleString(undefined, { maximumFractionDigits: Math.abs(v) < 10 ? 4 : 2 });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("bo-chart");
    var source = document.getElementById("bo-chart-data");
    if (!canvas || !source || !window.Chart) return;
    var config = JSON.parse(source.textContent);
    var horizontal = !!config.horizontal;
    var datasets = config.datasets.map(function (set, i) {
      var color = PALETTE[i % PALETTE.length];
      return Object.assign(
        { backgroundColor: color, borderColor: color, borderRadius: 4, maxBarThickness: 42, order: set.type === "line" ? 0 : 1 },
        set.type === "line" ? { fill: false, tension: 0.25, pointRadius: 2, borderWidth: 2 } : {},
        set
      );
    });
    var valueAxis = { beginAtZero: true, ticks: { callback: money }, grid: { color: "rgba(148, 163, 184, .25)" } };
    var labelAxis = { grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
    new window.Chart(canvas, {
      type: config.type || "bar",
      data: { labels: config.labels, datasets: datasets },
      options: {
        indexAxis: horizontal ? "y" : "x",
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: datasets.length > 1, position: "bottom" },
          tooltip: { callbacks: { label: function (ctx) { return ctx.dataset.label + ": " + money(horizontal ? ctx.parsed.x : ctx.parsed.y); } } }
        },
        scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis }
      }
    });
  });
})();
