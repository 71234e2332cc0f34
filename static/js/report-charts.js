/* The Report tab's pictures (focusgroups/report_charts.py computes the numbers; the page embeds them as
 * the JSON script #report-charts-data). Markup, one per chart:
 *
 *   <figure class="report-chart" data-report-chart="sentiment|timeline|voice">
 *     <div class="report-chart-canvas"><canvas></canvas></div>
 *     <div class="report-chart-table">…the same numbers…</div>
 *     <button class="report-chart-toggle" hidden>Show the numbers</button>
 *   </figure>
 *
 * A drawn chart marks its figure .is-drawn: the page's CSS then shows the canvas and keeps the table for
 * screen readers, "Show the numbers" and print. Charts are resized to the printed width before printing
 * (and back after); printing without that event (a PDF made by a browser tool) scales the canvas down.
 */
(function () {
  "use strict";

  var PRINT_WIDTH = 680; // CSS pixels across an A4 page inside its margins
  var GRID = "rgba(148, 163, 184, .25)";
  var charts = [];

  // Axis labels cut to leave the bars room (whole in the tooltip and the table): shorter on a phone.
  function cut(text, chart, wide) {
    var length = chart.width < 480 ? Math.round(wide / 2) : wide;
    text = String(text);
    return text.length > length ? text.slice(0, length - 1) + "…" : text;
  }

  function common(extra) {
    return Object.assign({
      maintainAspectRatio: false,
      animation: false,
      // Sharp when a print or a PDF scales the canvas down.
      devicePixelRatio: Math.max(window.devicePixelRatio || 1, 2)
    }, extra);
  }

  function sentiment(canvas, data) {
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: data.datasets.map(function (set) {
          return { label: set.label, data: set.data, backgroundColor: set.color, borderRadius: 3, maxBarThickness: 26 };
        })
      },
      options: common({
        indexAxis: "y",
        // A theme's whole mix in one tooltip, wherever on its bar the pointer is.
        interaction: { mode: "index", axis: "y", intersect: false },
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            filter: function (item) { return item.parsed.x > 0; },
            callbacks: {
              title: function (items) { return items.length ? data.labels[items[0].dataIndex] : ""; },
              label: function (ctx) {
                return ctx.dataset.label + ": " + ctx.parsed.x + " supporting quote" + (ctx.parsed.x === 1 ? "" : "s");
              },
              footer: function (items) {
                return items.length && data.overall ? "Theme overall: " + data.overall[items[0].dataIndex] : "";
              }
            }
          }
        },
        scales: {
          x: { stacked: true, beginAtZero: true, ticks: { precision: 0 }, grid: { color: GRID },
               title: { display: true, text: "Supporting quotes" } },
          y: { stacked: true, grid: { display: false },
               ticks: { callback: function (value) { return cut(this.getLabelForValue(value), this.chart, 32); } } }
        }
      })
    });
  }

  function timeline(canvas, data, link) {
    var count = data.labels.length;
    return new window.Chart(canvas, {
      type: "scatter",
      data: {
        datasets: [{
          label: "Supporting message",
          data: data.points,
          pointBackgroundColor: data.points.map(function (p) { return p.color; }),
          pointBorderColor: "#fff",
          pointRadius: 6,
          pointHoverRadius: 8
        }]
      },
      options: common({
        plugins: {
          legend: { display: false },
          tooltip: {
            callbacks: {
              title: function (items) { return items.length ? data.labels[items[0].raw.y] : ""; },
              label: function (ctx) {
                return "Message #" + ctx.raw.x + (ctx.raw.speaker ? " · " + ctx.raw.speaker : "") +
                  (ctx.raw.sentiment ? " · " + ctx.raw.sentiment : "");
              }
            }
          }
        },
        onClick: function (event, elements) {
          if (elements.length && link) window.location.href = link + "#msg-" + data.points[elements[0].index].x;
        },
        onHover: function (event, elements) {
          event.native.target.style.cursor = elements.length && link ? "pointer" : "default";
        },
        scales: {
          x: { type: "linear", min: Math.max(0, data.min - 1), max: data.max + 1, grid: { color: GRID },
               ticks: { precision: 0 }, title: { display: true, text: "Message #" } },
          y: { type: "linear", reverse: true, min: -0.5, max: count - 0.5, grid: { display: false },
               afterBuildTicks: function (axis) {
                 axis.ticks = data.labels.map(function (label, index) { return { value: index }; });
               },
               ticks: { autoSkip: false, callback: function (value) {
                 return Number.isInteger(value) && data.labels[value] ? cut(data.labels[value], this.chart, 32) : "";
               } } }
        }
      })
    });
  }

  function voice(canvas, data) {
    return new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: data.labels,
        datasets: [
          { label: "Share of answers", data: data.answers_share, backgroundColor: "rgba(79, 70, 229, .8)", borderRadius: 3, maxBarThickness: 16 },
          { label: "Share of words", data: data.words_share, backgroundColor: "rgba(236, 72, 153, .7)", borderRadius: 3, maxBarThickness: 16 }
        ]
      },
      options: common({
        indexAxis: "y",
        plugins: {
          legend: { position: "bottom", labels: { boxWidth: 12 } },
          tooltip: {
            callbacks: {
              label: function (ctx) {
                var i = ctx.dataIndex;
                return ctx.datasetIndex === 0
                  ? "Answers: " + data.answers[i] + " (" + data.answers_share[i] + "%)"
                  : "Words: " + data.words[i].toLocaleString() + " (" + data.words_share[i] + "%)";
              }
            }
          }
        },
        scales: {
          x: { beginAtZero: true, suggestedMax: 50, grid: { color: GRID },
               ticks: { callback: function (value) { return value + "%"; } } },
          y: { grid: { display: false },
               ticks: { callback: function (value) { return cut(this.getLabelForValue(value), this.chart, 28); } } }
        }
      })
    });
  }

  var DRAW = { sentiment: sentiment, timeline: timeline, voice: voice };

  function mount(figure, config, link) {
    var kind = figure.getAttribute("data-report-chart");
    var canvas = figure.querySelector("canvas");
    if (!canvas || !DRAW[kind] || !config[kind]) return;
    var chart;
    try {
      chart = DRAW[kind](canvas, config[kind], link);
    } catch (error) {
      return; // the table is still there
    }
    figure.classList.add("is-drawn");
    charts.push(chart);
    var toggle = figure.querySelector(".report-chart-toggle");
    if (!toggle) return;
    toggle.hidden = false;
    toggle.addEventListener("click", function () {
      var open = figure.classList.toggle("show-table");
      toggle.textContent = open ? "Hide the numbers" : "Show the numbers";
      toggle.setAttribute("aria-expanded", open ? "true" : "false");
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var source = document.getElementById("report-charts-data");
    if (!source || !window.Chart) return;
    var config = JSON.parse(source.textContent);
    var section = document.getElementById("report-charts");
    var link = section ? section.getAttribute("data-discussion-url") : "";
    Array.prototype.forEach.call(document.querySelectorAll("[data-report-chart]"), function (figure) {
      mount(figure, config, link);
    });
    window.addEventListener("beforeprint", function () {
      charts.forEach(function (chart) { chart.resize(PRINT_WIDTH, chart.canvas.parentNode.clientHeight || chart.height); });
    });
    window.addEventListener("afterprint", function () {
      charts.forEach(function (chart) { chart.resize(); });
    });
  });
})();
