/* Dashboard charts, drawn with the plotly bundle served offline from /static/vendor/plotly.min.js.
   The page embeds its figures as JSON in <script id="dash-data">; every number is also in the HTML tables,
   so the page still reads without JavaScript. A point of the trend chart opens the tickets behind it. */
(function () {
  "use strict";
  var node = document.getElementById("dash-data");
  if (!node || typeof Plotly === "undefined") { return; }
  var data = JSON.parse(node.textContent || "{}");
  // Date ticks in the page's language: static/charts.js registers plotly's zh-CN locale (its default printed
  // "Jul 2026" on Chinese pages); without it the charts still draw, in English.
  var charts = window.IncuCharts;
  var zh = charts ? charts.lang() === "zh" : (document.documentElement.lang || "zh").slice(0, 2) !== "en";
  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["toImage", "sendDataToCloud"],
                 locale: zh ? "zh-CN" : "en-US" };
  var colours = { first_response: "#1f6feb", onsite: "#e8590c", resolution: "#12805c" };

  function done(el) { el.setAttribute("data-rendered", "1"); }

  function trend(spec) {
    var el = document.getElementById("trend-chart");
    if (!el || !spec) { return; }
    var traces = spec.series.map(function (s) {
      return { x: spec.labels, y: s.values, name: s.name, type: "scatter", mode: "lines+markers",
               line: { color: colours[s.clock] }, customdata: s.urls,
               hovertemplate: "%{x}: %{y:.1f}%<extra>" + s.name + "</extra>" };
    });
    traces.push({ x: spec.labels, y: spec.labels.map(function () { return spec.target; }), name: spec.target + "%",
                  type: "scatter", mode: "lines", line: { dash: "dash", color: "#c81e1e", width: 1 },
                  hoverinfo: "skip" });
    Plotly.newPlot(el, traces, {
      margin: { t: 20, r: 10, b: 40, l: 50 }, yaxis: { title: spec.ylabel, range: [0, 105] },
      legend: { orientation: "h" }
    }, config).then(function () {
      done(el);
      el.on("plotly_click", function (ev) {
        var p = ev.points && ev.points[0];
        if (p && p.customdata) { window.location.href = p.customdata; }
      });
    });
  }

  function map(spec) {
    var el = document.getElementById("map-chart");
    if (!el || !spec) { return; }
    var size = function (n) { return 10 + Math.min(40, 6 * Math.sqrt(n)); };
    var traces = [
      { x: spec.capitals.map(function (c) { return c.lon; }), y: spec.capitals.map(function (c) { return c.lat; }),
        text: spec.capitals.map(function (c) { return c.name; }), name: spec.labels.capitals, type: "scatter",
        mode: "markers+text", textposition: "top center", textfont: { size: 9, color: "#98a2b3" },
        marker: { size: 4, color: "#d0d5dd" }, hoverinfo: "text" },
      { x: spec.tickets.map(function (c) { return c.lon; }), y: spec.tickets.map(function (c) { return c.lat; }),
        text: spec.tickets.map(function (c) { return c.city + ": " + c.n; }), name: spec.labels.tickets,
        type: "scatter", mode: "markers", hoverinfo: "text",
        marker: { size: spec.tickets.map(function (c) { return size(c.n); }), color: "rgba(200,30,30,.55)",
                  line: { color: "#c81e1e", width: 1 } } },
      { x: spec.engineers.map(function (c) { return c.lon; }), y: spec.engineers.map(function (c) { return c.lat; }),
        text: spec.engineers.map(function (c) { return c.city + ": " + c.n + " (" + c.names.join(", ") + ")"; }),
        name: spec.labels.engineers, type: "scatter", mode: "markers", hoverinfo: "text",
        marker: { symbol: "triangle-up", size: spec.engineers.map(function (c) { return 8 + 3 * c.n; }),
                  color: "#1f6feb" } }
    ];
    Plotly.newPlot(el, traces, {
      margin: { t: 10, r: 10, b: 30, l: 40 }, showlegend: true, legend: { orientation: "h" },
      xaxis: { range: [73, 135], showgrid: false, zeroline: false, title: "" },
      yaxis: { range: [17, 54], showgrid: false, zeroline: false, scaleanchor: "x", scaleratio: 1.15 }
    }, config).then(function () { done(el); });
  }

  function scores(spec) {
    var el = document.getElementById("score-chart");
    if (!el || !spec) { return; }
    Plotly.newPlot(el, [{ type: "bar", x: spec.rows.map(function (r) { return r.name; }),
                          y: spec.rows.map(function (r) { return r.score; }),
                          customdata: spec.rows.map(function (r) { return r.url; }), marker: { color: "#1f6feb" } }],
      { margin: { t: 30, r: 10, b: 60, l: 40 }, title: { text: spec.title, font: { size: 13 } },
        yaxis: { range: [0, 100] } }, config).then(function () {
      done(el);
      el.on("plotly_click", function (ev) {
        var p = ev.points && ev.points[0];
        if (p && p.customdata) { window.location.href = p.customdata; }
      });
    });
  }

  (charts ? charts.ensurePlotly() : Promise.resolve(Plotly)).then(function () {
    trend(data.trend);
    map(data.map);
    scores(data.scores);
  });
})();
