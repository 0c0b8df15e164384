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
      new Chart(document.getElementById("curve-chart"), {
        type: "line",
        data: {
          datasets: [
            { label: "model (holdout)", data: points(c.model), borderColor: "#2563eb", backgroundColor: "#2563eb" },
            { label: "baseline (holdout)", data: points(c.baseline), borderColor: "#9ca3af", backgroundColor: "#9ca3af", borderDash: [5, 4] },
            { label: "model (random control slice)", data: points(c.control), borderColor: "#f59e0b", backgroundColor: "#f59e0b" }
          ]
        },
        options: {
          scales: {
            x: { type: "linear", title: { display: true, text: "labels used" } },
            y: { min: 0, max: 1, title: { display: true, text: "balanced accuracy" } }
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
