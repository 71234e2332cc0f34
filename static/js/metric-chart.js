/* One Chart.js chart with a Cost / Tokens / Calls switch, drawn from the JSON a page embeds
 * (built by usage/charts.py). Markup:
 *
 *   <div data-metric-chart="<id of the json_script>" [data-remember="<localStorage key>"]
 *        [data-offer-class="<classes of the 'show tokens instead' buttons>"]>
 *     <button data-metric="cost">Cost</button> … (the switch; the active one gets .active)
 *     <div data-chart-body><canvas></canvas></div>
 *     <div data-chart-empty hidden></div>
 *   </div>
 *
 * A metric that is zero everywhere is not drawn as an empty grid: the chart says so and
 * offers the metrics that do have numbers.
 */
(function () {
  "use strict";

  var COLORS = ["rgba(79, 70, 229, .8)", "rgba(236, 72, 153, .7)", "rgba(16, 185, 129, 1)", "rgba(245, 158, 11, .85)"];
  var compact = new Intl.NumberFormat(undefined, { notation: "compact", maximumFractionDigits: 1 });

  function formatValue(format, value, axis) {
    var v = Number(value) || 0;
    if (format === "usd") {
      if (axis && Math.abs(v) >= 1000) return "$" + compact.format(v);
      var places = Math.abs(v) < 10 && v !== 0 ? 4 : 2;
      if (axis) places = Math.abs(v) < 1 && v !== 0 ? 3 : 2;
      return (v < 0 ? "-$" : "$") + Math.abs(v).toLocaleString(undefined, { maximumFractionDigits: places });
    }
    if (axis && Math.abs(v) >= 10000) return compact.format(v);
    return v.toLocaleString();
  }

  function remembered(root, metrics) {
    var key = root.getAttribute("data-remember");
    if (!key) return null;
    try {
      var value = window.localStorage.getItem(key);
      // A remembered metric that is all zero here would open on a blank chart: the page's default wins.
      return metrics.some(function (m) { return m.key === value && m.has_data; }) ? value : null;
    } catch (e) {
      return null;
    }
  }

  function remember(root, value) {
    var key = root.getAttribute("data-remember");
    if (!key) return;
    try { window.localStorage.setItem(key, value); } catch (e) { /* private mode: not remembered */ }
  }

  function mount(root) {
    var source = document.getElementById(root.getAttribute("data-metric-chart"));
    var body = root.querySelector("[data-chart-body]");
    var empty = root.querySelector("[data-chart-empty]");
    var canvas = body && body.querySelector("canvas");
    if (!source || !canvas || !empty || !window.Chart) return;
    var config = JSON.parse(source.textContent);
    var byKey = {};
    config.metrics.forEach(function (m) { byKey[m.key] = m; });
    var buttons = Array.prototype.slice.call(root.querySelectorAll("[data-metric]"));
    var chart = null;

    function draw(metric) {
      var horizontal = !!config.horizontal;
      var datasets = metric.datasets.map(function (set, i) {
        var color = COLORS[i % COLORS.length];
        var line = set.type === "line";
        return Object.assign(
          { backgroundColor: color, borderColor: color, borderRadius: line ? 0 : 3, maxBarThickness: 42, order: line ? 0 : 1 },
          line ? { fill: false, tension: 0.25, pointRadius: 2, borderWidth: 2 } : {},
          set
        );
      });
      var valueAxis = {
        beginAtZero: true,
        stacked: !!metric.stacked,
        ticks: { callback: function (v) { return formatValue(metric.format, v, true); } },
        grid: { color: "rgba(148, 163, 184, .25)" }
      };
      var labelAxis = { stacked: !!metric.stacked, grid: { display: false }, ticks: { autoSkip: true, maxRotation: 0 } };
      if (horizontal) {
        // Long names (emails, session titles) would squeeze the bars: cut them on the axis, whole in the tooltip.
        labelAxis.ticks.callback = function (value) {
          var text = String(this.getLabelForValue(value));
          return text.length > 28 ? text.slice(0, 27) + "…" : text;
        };
      }
      if (chart) chart.destroy();
      chart = new window.Chart(canvas, {
        type: "bar",
        data: { labels: metric.labels, datasets: datasets },
        options: {
          indexAxis: horizontal ? "y" : "x",
          maintainAspectRatio: false,
          animation: false,
          plugins: {
            legend: { display: datasets.length > 1, position: "bottom" },
            tooltip: {
              callbacks: {
                label: function (ctx) {
                  return ctx.dataset.label + ": " + formatValue(metric.format, horizontal ? ctx.parsed.x : ctx.parsed.y, false);
                }
              }
            }
          },
          scales: horizontal ? { x: valueAxis, y: labelAxis } : { x: labelAxis, y: valueAxis }
        }
      });
    }

    function showEmpty(metric) {
      if (chart) { chart.destroy(); chart = null; }
      empty.textContent = "";
      var text = document.createElement("p");
      text.textContent = metric.empty;
      empty.appendChild(text);
      var others = config.metrics.filter(function (m) { return m.has_data && m.key !== metric.key; });
      if (others.length) {
        var offer = document.createElement("p");
        offer.appendChild(document.createTextNode("Show "));
        others.forEach(function (m, i) {
          if (i) offer.appendChild(document.createTextNode(" or "));
          var link = document.createElement("button");
          link.type = "button";
          link.className = root.getAttribute("data-offer-class") || "";
          link.textContent = m.name.toLowerCase();
          link.addEventListener("click", function () { select(m.key, true); });
          offer.appendChild(link);
        });
        offer.appendChild(document.createTextNode(" instead."));
        empty.appendChild(offer);
      }
    }

    function select(key, byUser) {
      var metric = byKey[key] || config.metrics[0];
      buttons.forEach(function (button) {
        var on = button.getAttribute("data-metric") === metric.key;
        button.classList.toggle("active", on);
        button.setAttribute("aria-pressed", on ? "true" : "false");
      });
      root.setAttribute("data-metric-shown", metric.key);
      body.hidden = !metric.has_data;
      empty.hidden = metric.has_data;
      if (metric.has_data) draw(metric);
      else showEmpty(metric);
      if (byUser) remember(root, metric.key);
    }

    buttons.forEach(function (button) {
      button.addEventListener("click", function () { select(button.getAttribute("data-metric"), true); });
    });
    select(remembered(root, config.metrics) || config.metric, false);
  }

  document.addEventListener("DOMContentLoaded", function () {
    Array.prototype.forEach.call(document.querySelectorAll("[data-metric-chart]"), mount);
  });
})();
