/* Survey results: per scale question the share of the panel at each point with 95% interval whiskers
   (drawn by a small plugin) beside the numbers stated directly; per choice question the share choosing
   each option, as horizontal bars. Data comes from the page's #survey-results JSON. */
(function () {
  "use strict";
  var whiskers = {
    id: "whiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      var horizontal = chart.options.indexAxis === "y";
      chart.data.datasets.forEach(function (dataset, i) {
        if (!dataset.low) return;
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden) return;
        var scale = chart.scales[horizontal ? meta.xAxisID : meta.yAxisID];
        ctx.save();
        ctx.strokeStyle = "#1e293b";
        ctx.lineWidth = 1.2;
        meta.data.forEach(function (bar, j) {
          if (dataset.low[j] == null) return;
          var lo = scale.getPixelForValue(dataset.low[j]), hi = scale.getPixelForValue(dataset.high[j]);
          ctx.beginPath();
          if (horizontal) {
            var y = bar.y;
            ctx.moveTo(lo, y); ctx.lineTo(hi, y);
            ctx.moveTo(lo, y - 4); ctx.lineTo(lo, y + 4);
            ctx.moveTo(hi, y - 4); ctx.lineTo(hi, y + 4);
          } else {
            var x = bar.x;
            ctx.moveTo(x, lo); ctx.lineTo(x, hi);
            ctx.moveTo(x - 4, lo); ctx.lineTo(x + 4, lo);
            ctx.moveTo(x - 4, hi); ctx.lineTo(x + 4, hi);
          }
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };
  function pct(v) { return v == null ? null : Math.round(v * 1000) / 10; }
  /* A label as lines of at most ``width`` characters, so long point labels wrap instead of being cut. */
  function wrap(text, width) {
    var lines = [], line = "";
    String(text).split(/\s+/).forEach(function (word) {
      if (line && (line + " " + word).length > width) { lines.push(line); line = word; }
      else line = line ? line + " " + word : word;
    });
    if (line) lines.push(line);
    return lines.length > 1 ? lines : lines[0] || "";
  }
  function percentTick(value) { return value + "%"; }
  /* Room above the tallest whisker, not only the tallest bar, so no interval is cut off. */
  function top(sets) {
    var highest = 0;
    sets.forEach(function (set) { (set.high || set.data).forEach(function (v) { if (v > highest) highest = v; }); });
    return Math.min(100, Math.ceil(highest / 5) * 5);
  }
  function tooltipLabel(item) {
    var d = item.dataset, j = item.dataIndex;
    var text = d.label + ": " + item.formattedValue + "%";
    if (d.low && d.low[j] != null) text += " (95% interval " + d.low[j] + "–" + d.high[j] + "%)";
    return text;
  }
  function scaleChart(canvas, q) {
    var d = q.scale.distribution;
    var sets = [{ label: "Rated by meaning (SSR)", data: d.mean.map(pct), low: d.low.map(pct), high: d.high.map(pct), backgroundColor: "#6366f1" }];
    if (q.scale.direct) sets.push({ label: "Asked directly", data: q.scale.direct.shares.map(pct), backgroundColor: "#cbd5e1" });
    var many = q.scale.labels.length > 7;
    var narrow = canvas.parentNode.clientWidth < 480;  // a phone: shorter lines under each bar
    return new Chart(canvas, {
      type: "bar",
      data: { labels: q.scale.labels.map(function (l, i, all) {
        // 0–10: the numbers, with the two ends' words; 5 or 7 points: every label, wrapped.
        return many && i > 0 && i < all.length - 1 ? l.split(" ")[0] : wrap(l, many || narrow ? 8 : 12);
      }), datasets: sets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: sets.length > 1, position: "bottom" }, tooltip: { callbacks: { label: tooltipLabel } } },
        scales: {
          y: { beginAtZero: true, suggestedMax: top(sets), ticks: { callback: percentTick }, title: { display: true, text: "Share of the panel" } },
          x: { ticks: { autoSkip: false, maxRotation: 0 } },
        },
      },
      plugins: [whiskers],
    });
  }
  function choiceChart(canvas, q) {
    var o = q.choice.options;
    return new Chart(canvas, {
      type: "bar",
      data: {
        labels: o.map(function (x) { return wrap(x.option, 24); }),
        datasets: [{
          label: "Chose it", data: o.map(function (x) { return x.share ? pct(x.share.mean) : 0; }),
          low: o.map(function (x) { return x.share ? pct(x.share.low) : null; }),
          high: o.map(function (x) { return x.share ? pct(x.share.high) : null; }), backgroundColor: "#0ea5e9",
        }],
      },
      options: {
        indexAxis: "y", responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: false }, tooltip: { callbacks: { label: tooltipLabel } } },
        scales: { x: { beginAtZero: true, max: 100, ticks: { callback: percentTick } }, y: { ticks: { autoSkip: false } } },
      },
      plugins: [whiskers],
    });
  }
  /* Printed, a canvas keeps the size it was drawn at on screen and spills out of its column; an image of
     it scales with the page instead. The copy follows the chart when the window is resized. */
  function printCopy(chart) {
    var image = document.createElement("img");
    image.className = "chart-print";
    image.alt = chart.canvas.getAttribute("aria-label") || "";
    chart.canvas.parentNode.appendChild(image);
    var refresh = function () { image.src = chart.toBase64Image(); };
    refresh();
    chart.options.onResize = function () { window.setTimeout(refresh, 0); };
  }
  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("survey-results");
    if (!node || typeof Chart === "undefined") return;
    var results = JSON.parse(node.textContent);
    document.querySelectorAll("canvas.js-survey-chart").forEach(function (canvas) {
      var q = results.questions.filter(function (x) { return "q-" + x.id === canvas.dataset.chart; })[0];
      if (!q) return;
      var chart = null;
      if (q.scale && q.scale.distribution) chart = scaleChart(canvas, q);
      else if (q.choice) chart = choiceChart(canvas, q);
      if (chart) printCopy(chart);
    });
  });
})();
