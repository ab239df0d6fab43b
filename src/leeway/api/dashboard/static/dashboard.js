// Leeway's dashboard: draws the usage page's charts with Chart.js (vendored beside this file) from
// the JSON the server put in the page. Nothing else on the dashboard needs a script.
"use strict";
(function () {
  const source = document.getElementById("usage-charts");
  if (!source || typeof Chart === "undefined") return;
  const data = JSON.parse(source.textContent);
  const stacked = { x: { stacked: true }, y: { stacked: true, beginAtZero: true } };
  for (const [name, canvasId] of [["cost", "cost-chart"], ["tokens", "tokens-chart"]]) {
    const canvas = document.getElementById(canvasId);
    if (!canvas) continue;
    new Chart(canvas, {
      type: "bar",
      data: data[name],
      options: { animation: false, responsive: true, scales: stacked },
    });
  }
})();
