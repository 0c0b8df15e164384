// Draws the charts whose data the page embedded as JSON (Chart.js, vendored).
(function () {
  "use strict";
  function data(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }
  function draw() {
    if (typeof Chart === "undefined") { return; }
    Chart.defaults.font.family = "system-ui, sans-serif";
    Chart.defaults.animation = false;
    var t = data("throughput-data");
    if (t && document.getElementById("throughput-chart")) {
      new Chart(document.getElementById("throughput-chart"), {
        type: "bar",
        data: {
          labels: t.labels,
          datasets: [
            { label: "answers", data: t.annotations, backgroundColor: "#93c5fd" },
            { label: "new labels", data: t.ground_truth, backgroundColor: "#2563eb" }
          ]
        },
        options: { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } }
      });
    }
    var c = data("curve-data");
    if (c && document.getElementById("curve-chart")) {
      function points(values) {
        return c.labels.map(function (x, i) { return { x: x, y: values[i] }; })
          .filter(function (p) { return p.y !== null && p.y !== undefined; });
      }
      function bound(side) {
        return (c.model_interval || []).map(function (v) { return v ? v[side] : null; });
      }
      var band = "rgba(37, 99, 235, 0.12)";
      // A series without any point (no majority baseline for pairs, no labeled control pick
      // yet) leaves the legend rather than naming a line that is not drawn.
      var curveSets = [
        { label: "model (holdout)", data: points(c.model), borderColor: "#2563eb", backgroundColor: "#2563eb" },
        { label: "interval low", data: points(bound(0)), borderWidth: 0, pointRadius: 0, fill: false },
        { label: "95% interval (holdout)", data: points(bound(1)), borderWidth: 0, pointRadius: 0, backgroundColor: band, fill: "-1" },
        { label: c.baseline_name + " (holdout)", data: points(c.baseline), borderColor: "#9ca3af", backgroundColor: "#9ca3af", borderDash: [5, 4] },
        { label: "always the majority class (holdout)", data: points(c.majority), borderColor: "#6b7280", backgroundColor: "#6b7280", borderDash: [2, 3], pointStyle: "rect" },
        { label: "this model on random pool picks (control slice)", data: points(c.control), borderColor: "#f59e0b", backgroundColor: "#f59e0b" }
      ].filter(function (set) { return set.data.length > 0; });
      new Chart(document.getElementById("curve-chart"), {
        type: "line",
        data: { datasets: curveSets },
        options: {
          plugins: {
            legend: { labels: { filter: function (item) { return item.text !== "interval low"; } } },
            tooltip: { filter: function (item) { return item.dataset.label !== "interval low"; } }
          },
          scales: {
            x: { type: "linear", title: { display: true, text: c.labels_axis || "labels used" } },
            y: { min: 0, max: 1, title: { display: true, text: c.metric || "balanced accuracy" } }
          }
        }
      });
    }
    var r = data("reliability-data");
    if (r && document.getElementById("reliability-chart")) {
      var sets = [
        { type: "bar", label: "accuracy, as the model gives it (ECE " + r.before.ece.toFixed(3) + ")", data: r.before.accuracy, counts: r.before.count, confidence: r.before.confidence, backgroundColor: "#93c5fd" }
      ];
      if (r.after) {
        sets.push({ type: "bar", label: "after temperature scaling, T = " + r.temperature.toFixed(2) + " (ECE " + r.after.ece.toFixed(3) + ")", data: r.after.accuracy, counts: r.after.count, confidence: r.after.confidence, backgroundColor: "#22c55e" });
      }
      sets.push({ type: "line", label: "perfect calibration", data: r.midpoints, borderColor: "#6b7280", borderDash: [4, 4], pointRadius: 0, fill: false });
      new Chart(document.getElementById("reliability-chart"), {
        data: { labels: r.bins, datasets: sets },
        options: {
          plugins: {
            tooltip: {
              callbacks: {
                afterLabel: function (ctx) {
                  var d = ctx.dataset;
                  if (!d.counts) { return ""; }
                  var conf = d.confidence[ctx.dataIndex];
                  return d.counts[ctx.dataIndex] + " items" + (conf === null ? "" : ", mean confidence " + conf.toFixed(2));
                }
              }
            }
          },
          scales: {
            x: { title: { display: true, text: "confidence (top class)" } },
            y: { min: 0, max: 1, title: { display: true, text: "accuracy in the bin" } }
          }
        }
      });
    }
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", draw);
  } else {
    draw();
  }
})();
