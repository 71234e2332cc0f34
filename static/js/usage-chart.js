/* Spend-per-day bar chart on the Usage page, from the JSON the page embeds. */
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var canvas = document.getElementById("usage-chart");
    var source = document.getElementById("usage-chart-data");
    if (!canvas || !source || !window.Chart) return;
    var data = JSON.parse(source.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [{ label: "Cost (USD)", data: data.costs, backgroundColor: "rgba(79, 70, 229, .75)", borderRadius: 4 }]
      },
      options: {
        maintainAspectRatio: false,
        animation: false,
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                return "$" + ctx.parsed.y.toFixed(4) + " · " + data.calls[ctx.dataIndex] + " call(s)";
              }
            }
          }
        },
        scales: { y: { beginAtZero: true, ticks: { callback: function (v) { return "$" + v; } } } }
      }
    });
  });
})();
