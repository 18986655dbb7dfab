/* incucare charts: a small shared wrapper around the offline plotly bundle (/static/vendor/plotly.min.js).
 *
 * Why: every chart of the app (device telemetry, ticket snapshots, dashboards) should look the same, load
 * plotly only when a page has a chart, and take its labels from the page (zh/en) instead of hard-coding.
 *
 * Declarative use: <div data-chart-src="/url.json" data-chart-labels='{"temp_c":"温度 (°C)", ...}'
 *                       data-chart-refresh="60"></div>   (refresh: optional, seconds)
 * the JSON is {"fields": {"temp_c": [["2026-12-05 08:00:00", 37.0], ...], ...},
 *              "doors": [[start, end], ...], "marks": [{"at", "label_zh", "label_en"}]}.
 * Programmatic use: IncuCharts.line(element, {series: [{name, x, y, axis: "y"|"y2"}], yTitle, y2Title,
 *                   spans: [[x0, x1]], marks: [{at, label}], empty: "..."}) returns a Promise.
 */
(function () {
  "use strict";
  var PLOTLY_SRC = "/static/vendor/plotly.min.js";
  var loading = null;
  var COLORS = { temp_c: "#d9480f", co2_pct: "#1c7ed6", o2_pct: "#2f9e44", rh_pct: "#7048e8",
                 co2_valve_open_s: "#0b7285", heater_duty: "#e67700" };
  var RIGHT_AXIS = { co2_pct: true, o2_pct: true };
  var BARS = { co2_valve_open_s: true };

  function lang() {
    return (document.documentElement.getAttribute("lang") || "zh").slice(0, 2) === "en" ? "en" : "zh";
  }

  // Date ticks in Chinese on zh pages (plotly's built-in locale is English: "Dec 4, 2026").
  var ZH_LOCALE = {
    moduleType: "locale", name: "zh-CN", dictionary: {},
    format: {
      days: ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"],
      shortDays: ["周日", "周一", "周二", "周三", "周四", "周五", "周六"],
      months: ["一月", "二月", "三月", "四月", "五月", "六月", "七月", "八月", "九月", "十月", "十一月", "十二月"],
      shortMonths: ["1月", "2月", "3月", "4月", "5月", "6月", "7月", "8月", "9月", "10月", "11月", "12月"],
      periods: ["上午", "下午"], dateTime: "%Y-%m-%d %H:%M:%S", date: "%Y-%m-%d", time: "%H:%M:%S",
      decimal: ".", thousands: ",", grouping: [3], currency: ["¥", ""],
      year: "%Y", month: "%Y年%-m月", dayMonth: "%-m月%-d日", dayMonthYear: "%Y-%m-%d"
    }
  };

  function withLocale(Plotly) {
    if (!Plotly._incuZh && Plotly.register) { Plotly.register(ZH_LOCALE); Plotly._incuZh = true; }
    return Plotly;
  }

  function ensurePlotly() {
    if (window.Plotly) { return Promise.resolve(withLocale(window.Plotly)); }
    if (!loading) {
      loading = new Promise(function (resolve, reject) {
        var s = document.createElement("script");
        s.src = PLOTLY_SRC;
        s.onload = function () { resolve(withLocale(window.Plotly)); };
        s.onerror = function () { reject(new Error("plotly could not be loaded from " + PLOTLY_SRC)); };
        document.head.appendChild(s);
      });
    }
    return loading;
  }

  function showEmpty(el, text) {
    el.classList.add("chart-empty");
    el.setAttribute("data-chart-state", "empty");
    el.textContent = text || (lang() === "en" ? "No data" : "暂无数据");
  }

  function line(el, spec) {
    var series = (spec.series || []).filter(function (s) { return s.x && s.x.length; });
    if (!series.length) { showEmpty(el, spec.empty); return Promise.resolve(null); }
    return ensurePlotly().then(function (Plotly) {
      var usesY2 = series.some(function (s) { return s.axis === "y2"; });
      var traces = series.map(function (s) {
        if (s.bar) {
          return { type: "bar", name: s.name, x: s.x, y: s.y, yaxis: s.axis || "y", marker: { color: s.color } };
        }
        return { type: "scatter", mode: "lines", name: s.name, x: s.x, y: s.y, yaxis: s.axis || "y",
                 line: { width: 1.5, color: s.color } };
      });
      var shapes = (spec.spans || []).map(function (span) {
        return { type: "rect", xref: "x", yref: "paper", x0: span[0], x1: span[1],
                 y0: 0, y1: 1, fillcolor: "rgba(250, 176, 5, 0.25)", line: { width: 1, color: "rgba(250,176,5,0.6)" } };
      });
      var annotations = [];
      (spec.marks || []).forEach(function (m) {
        shapes.push({ type: "line", xref: "x", yref: "paper", x0: m.at, x1: m.at, y0: 0, y1: 1,
                      line: { color: "#c92a2a", width: 1.5, dash: "dot" } });
        annotations.push({ x: m.at, y: 1, xref: "x", yref: "paper", text: m.label, showarrow: false,
                           yanchor: "bottom", font: { size: 11, color: "#c92a2a" } });
      });
      if ((spec.spans || []).length && spec.spanLabel) {
        traces.push({ type: "scatter", mode: "markers", name: spec.spanLabel, x: [null], y: [null],
                      marker: { symbol: "square", size: 12, color: "rgba(250, 176, 5, 0.5)" } });
      }
      var layout = {
        margin: { l: 50, r: usesY2 ? 50 : 20, t: 24, b: 40 }, height: spec.height || parseInt(el.style.minHeight, 10) || 320,
        legend: { orientation: "h", y: -0.2 }, hovermode: "x unified",
        xaxis: { type: "date" }, yaxis: { title: { text: spec.yTitle || "" } },
        shapes: shapes, annotations: annotations, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)"
      };
      if (usesY2) {
        // tickmode auto: an overlaying axis defaults to "sync" (ticks at the left axis's gridlines: 4.06, 7.82 …)
        layout.yaxis2 = { title: { text: spec.y2Title || "" }, overlaying: "y", side: "right", showgrid: false,
                          tickmode: "auto" };
      }
      var redraw = el.getAttribute("data-chart-state") === "drawn";
      if (!redraw) { el.textContent = ""; }
      var draw = redraw ? Plotly.react : Plotly.newPlot;
      var config = { displaylogo: false, responsive: true, locale: lang() === "en" ? "en-US" : "zh-CN" };
      return draw(el, traces, layout, config).then(function () {
        el.setAttribute("data-chart-state", "drawn");
        return el;
      });
    }).catch(function (err) {
      el.setAttribute("data-chart-state", "error");
      el.textContent = String(err && err.message ? err.message : err);
    });
  }

  function telemetrySpec(data, labels) {
    var fields = data.fields || {};
    var series = Object.keys(fields).map(function (name) {
      var pts = fields[name] || [];
      return { name: labels[name] || name, axis: RIGHT_AXIS[name] ? "y2" : "y", color: COLORS[name], bar: !!BARS[name],
               x: pts.map(function (p) { return p[0]; }), y: pts.map(function (p) { return p[1]; }) };
    });
    var en = lang() === "en";
    return {
      series: series, spans: data.doors || [], spanLabel: labels.door_open,
      yTitle: labels.axis_left || labels.axis_temp || "°C", y2Title: labels.axis_gas || "%",
      marks: (data.marks || []).map(function (m) {
        return { at: m.at, label: en ? (m.label_en || m.label_zh) : (m.label_zh || m.label_en) };
      }),
      empty: labels.empty
    };
  }

  function fromElement(el) {
    var src = el.getAttribute("data-chart-src");
    var labels = {};
    try { labels = JSON.parse(el.getAttribute("data-chart-labels") || "{}"); } catch (e) { labels = {}; }
    var refresh = parseFloat(el.getAttribute("data-chart-refresh") || "0");
    if (el.getAttribute("data-chart-state") !== "drawn") { el.setAttribute("data-chart-state", "loading"); }
    if (refresh > 0 && !el._incuRefresh) {  // live charts: fetch again every `refresh` seconds
      el._incuRefresh = setInterval(function () { if (!document.hidden) { fromElement(el); } }, refresh * 1000);
    }
    return fetch(src, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (r) {
        if (!r.ok) { throw new Error((labels.error || "HTTP") + " " + r.status); }
        return r.json();
      })
      .then(function (data) {
        if (!data || !data.fields) { showEmpty(el, labels.empty); return null; }
        return line(el, telemetrySpec(data, labels));
      })
      .catch(function (err) {
        el.setAttribute("data-chart-state", "error");
        el.textContent = String(err && err.message ? err.message : err);
      });
  }

  function init(root) {
    var nodes = (root || document).querySelectorAll("[data-chart-src]");
    return Promise.all(Array.prototype.map.call(nodes, fromElement));
  }

  window.IncuCharts = { line: line, init: init, fromElement: fromElement, ensurePlotly: ensurePlotly,
                        telemetrySpec: telemetrySpec, lang: lang };
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", function () { init(); });
  } else {
    init();
  }
})();
