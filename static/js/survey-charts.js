/* Survey results: a bar chart per question with 95% interval whiskers (drawn by a small plugin),
   and the segments side by side. Data comes from the page's #survey-results JSON. */
(function () {
  "use strict";
  var whiskers = {
    id: "whiskers",
    afterDatasetsDraw: function (chart) {
      var ctx = chart.ctx;
      chart.data.datasets.forEach(function (dataset, i) {
        if (!dataset.low) return;
        var meta = chart.getDatasetMeta(i);
        if (meta.hidden) return;
        var scale = chart.scales[meta.yAxisID];
        ctx.save();
        ctx.strokeStyle = "#1e293b";
        ctx.lineWidth = 1.2;
        meta.data.forEach(function (bar, j) {
          if (dataset.low[j] == null) return;
          var x = bar.x, lo = scale.getPixelForValue(dataset.low[j]), hi = scale.getPixelForValue(dataset.high[j]);
          ctx.beginPath();
          ctx.moveTo(x, lo); ctx.lineTo(x, hi);
          ctx.moveTo(x - 4, lo); ctx.lineTo(x + 4, lo);
          ctx.moveTo(x - 4, hi); ctx.lineTo(x + 4, hi);
          ctx.stroke();
        });
        ctx.restore();
      });
    },
  };
  function pct(v) { return v == null ? null : Math.round(v * 1000) / 10; }
  function bar(canvas, labels, datasets, yMax, yTitle) {
    return new Chart(canvas, {
      type: "bar",
      data: { labels: labels, datasets: datasets },
      options: {
        responsive: true, maintainAspectRatio: false, animation: false,
        plugins: { legend: { display: datasets.length > 1, position: "bottom" } },
        scales: { y: { beginAtZero: true, max: yMax, title: { display: !!yTitle, text: yTitle } },
                  x: { ticks: { autoSkip: false, maxRotation: 40 } } },
      },
      plugins: [whiskers],
    });
  }
  document.addEventListener("DOMContentLoaded", function () {
    var node = document.getElementById("survey-results");
    if (!node || typeof Chart === "undefined") return;
    var results = JSON.parse(node.textContent);
    var canvases = {};
    document.querySelectorAll("canvas.js-survey-chart").forEach(function (c) { canvases[c.dataset.chart] = c; });
    results.questions.forEach(function (q) {
      var canvas = canvases["q-" + q.id];
      if (q.scale && q.scale.distribution && canvas) {
        var d = q.scale.distribution;
        var sets = [{ label: "SSR rating (% of panel)", data: d.mean.map(pct), low: d.low.map(pct), high: d.high.map(pct), backgroundColor: "#6366f1" }];
        if (q.scale.direct) sets.push({ label: "Asked directly", data: q.scale.direct.shares.map(pct), backgroundColor: "#cbd5e1" });
        var labels = q.scale.labels.map(function (l) { return l.length > 22 ? l.slice(0, 21) + "…" : l; });
        bar(canvas, labels, sets, undefined, "% of panel");
        (q.segments || []).forEach(function (b) {
          var sc = canvases["q-" + q.id + "-" + b.attribute];
          if (!sc) return;
          bar(sc, b.rows.map(function (r) { return r.segment; }), [{
            label: "Mean", data: b.rows.map(function (r) { return r.mean.mean; }),
            low: b.rows.map(function (r) { return r.mean.low; }), high: b.rows.map(function (r) { return r.mean.high; }),
            backgroundColor: "#22c55e" }], q.scale.points[q.scale.points.length - 1], "Mean rating");
        });
      } else if (q.choice && canvas) {
        var o = q.choice.options;
        bar(canvas, o.map(function (x) { return x.option.length > 24 ? x.option.slice(0, 23) + "…" : x.option; }), [{
          label: "% choosing", data: o.map(function (x) { return x.share ? pct(x.share.mean) : 0; }),
          low: o.map(function (x) { return x.share ? pct(x.share.low) : null; }),
          high: o.map(function (x) { return x.share ? pct(x.share.high) : null; }), backgroundColor: "#0ea5e9" }], 100, "% of panel");
      }
    });
  });
})();
