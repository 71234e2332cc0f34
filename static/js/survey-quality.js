/* A survey run's quality check: Cohen's kappa per question between the run and its retest, as horizontal bars
   coloured by their Landis-Koch reading, with 95% interval whiskers, in the results page's chart style. Data
   comes from the page's #survey-quality JSON. */
(function () {
  "use strict";
  var whiskers = {
    id: "kappaWhiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx, dataset = chart.data.datasets[0], meta = chart.getDatasetMeta(0);
      var scale = chart.scales[meta.xAxisID];
      ctx.save();
      ctx.strokeStyle = "#1e293b";
      ctx.lineWidth = 1.2;
      meta.data.forEach(function (bar, j) {
        if (dataset.low[j] == null || dataset.high[j] == null) return;
        var lo = scale.getPixelForValue(dataset.low[j]), hi = scale.getPixelForValue(dataset.high[j]), y = bar.y;
        ctx.beginPath();
        ctx.moveTo(lo, y); ctx.lineTo(hi, y);
        ctx.moveTo(lo, y - 4); ctx.lineTo(lo, y + 4);
        ctx.moveTo(hi, y - 4); ctx.lineTo(hi, y + 4);
        ctx.stroke();
      });
      ctx.restore();
    },
  };
  function round(v) { return v == null ? null : Math.round(v * 100) / 100; }
  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("survey-quality");
    var canvas = document.querySelector("canvas.js-quality-chart");
    if (!node || !canvas || typeof Chart === "undefined") return;
    var items = (JSON.parse(node.textContent) || {}).kappa || [];
    if (!items.length) return;
    var lowest = Math.min(0, Math.min.apply(null, items.map(function (x) { return x.low == null ? x.kappa : x.low; })));
    var chart = new Chart(canvas, {
      type: "bar",
      data: {
        labels: items.map(function (x) { return x.label; }),
        datasets: [{
          label: "Cohen's kappa",
          data: items.map(function (x) { return round(x.kappa); }),
          low: items.map(function (x) { return round(x.low); }),
          high: items.map(function (x) { return round(x.high); }),
          backgroundColor: items.map(function (x) { return x.colour; }),
        }],
      },
      options: {
        indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
        plugins: {
          legend: { display: false },
          tooltip: { callbacks: {
            title: function (its) { return items[its[0].dataIndex].text; },
            label: function (it) {
              var x = items[it.dataIndex], text = "kappa " + it.formattedValue + " (" + x.reading + ")";
              if (x.low != null) text += ", 95% interval " + round(x.low) + " to " + round(x.high);
              return text;
            },
          } },
        },
        scales: {
          x: { min: Math.max(-1, Math.floor(lowest * 5) / 5), max: 1, title: { display: true, text: "Agreement beyond chance (kappa)" } },
          y: { ticks: { autoSkip: false } },
        },
      },
      plugins: [whiskers],
    });
    /* Printed, an image of the chart scales with the page (as the other charts do). */
    var image = document.createElement("img");
    image.className = "chart-print";
    image.alt = canvas.getAttribute("aria-label") || "";
    canvas.parentNode.appendChild(image);
    image.src = chart.toBase64Image();
  });
})();
