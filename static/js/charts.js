// Live time-series charts (uPlot). Each <figure class="metric-chart"> carries its query in
// data- attributes (templates/metrics/chart.html); this file draws it, switches ranges, and
// appends new points by asking the API for what came after the last time it has.
(function () {
  "use strict";
  var RANGES = { "15m": 900, "1h": 3600, "24h": 86400, "7d": 604800 };
  var POLL_MS = 15000;

  function formatter(unit) {
    var lang = document.documentElement.lang || undefined;
    var number = function (v, digits) { return v.toLocaleString(lang, { maximumFractionDigits: digits }); };
    return function (v) {
      if (v === null || v === undefined || isNaN(v)) { return "–"; }
      switch (unit) {
        case "bytes": case "bytes/s":
          var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0, x = Math.abs(v);
          while (x >= 1024 && i < units.length - 1) { x /= 1024; i += 1; }
          return number(v < 0 ? -x : x, 1) + " " + units[i] + (unit === "bytes/s" ? "/s" : "");
        case "ratio": return number(v * 100, 1) + " %";
        case "seconds": return v < 1 ? number(v * 1000, 1) + " ms" : number(v, 2) + " s";
        // Under one core, millicores as kubectl shows them ("250m"): three decimals made
        // several ticks of a small scale read the same ("0.002", "0.002").
        case "cores":
          if (v !== 0 && Math.abs(v) < 1) { return number(v * 1000, Math.abs(v) < 0.01 ? 1 : 0) + "m"; }
          return number(v, 2);
        case "req/s": return number(v, 1) + "/s";
        case "bool": return v >= 0.5 ? "1" : "0";
        default: return number(v, 2);
      }
    };
  }

  function sparse(values, from, to) {
    var shown = 0, joined = 0;
    for (var i = from; i <= to; i += 1) {
      if (values[i] !== null && values[i] !== undefined) {
        shown += 1;
        if (i > from && values[i - 1] !== null && values[i - 1] !== undefined) { joined += 1; }
      }
    }
    return shown > 0 && (shown < 120 || joined < shown / 2);
  }

  function cssVar(el, name) { return getComputedStyle(el).getPropertyValue(name).trim(); }

  function seriesName(s) {
    var extra = Object.keys(s.labels).filter(function (k) { return ["container", "kind", "queue"].indexOf(k) >= 0; })
      .map(function (k) { return s.labels[k]; });
    return s.label + (extra.length ? " · " + extra.join(" ") : "");
  }

  function Chart(box) {
    this.box = box;
    this.plotEl = box.querySelector(".metric-chart-plot");
    this.emptyEl = box.querySelector(".metric-chart-empty");
    this.range = box.dataset.range || "1h";
    this.plot = null;
    this.timer = null;
    var self = this;
    box.querySelectorAll(".metric-chart-ranges button").forEach(function (button) {
      button.addEventListener("click", function () {
        self.range = button.dataset.range;
        box.querySelectorAll(".metric-chart-ranges button").forEach(function (b) { b.setAttribute("aria-pressed", String(b === button)); });
        self.load();
      });
    });
    this.load();
  }

  Chart.prototype.url = function (start) {
    var d = this.box.dataset, params = new URLSearchParams({ object_type: d.objectType, range: this.range });
    if (d.objectId) { params.set("object_id", d.objectId); }
    if (d.names) { params.set("names", d.names); }
    if (d.labels) { params.set("labels", d.labels); }
    if (start) { params.set("start", String(start)); params.set("step", String(this.step)); }
    return d.api + "?" + params.toString();
  };

  Chart.prototype.fetch = function (start) {
    return fetch(this.url(start), { credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) { throw new Error(String(r.status)); }
      return r.json();
    });
  };

  Chart.prototype.empty = function (text) {
    this.emptyEl.textContent = text;
    this.emptyEl.hidden = !text;
    this.box.dataset.state = text ? "empty" : "drawn";
  };

  Chart.prototype.load = function () {
    var self = this;
    clearTimeout(this.timer);
    this.fetch().then(function (answer) {
      self.step = answer.step;
      self.draw(answer);
      self.schedule();
    }).catch(function () { self.empty(self.box.dataset.error); self.schedule(); });
  };

  Chart.prototype.schedule = function () {
    var self = this;
    clearTimeout(this.timer);
    this.timer = setTimeout(function () { self.poll(); }, (Number(this.box.dataset.poll) || POLL_MS / 1000) * 1000);
  };

  Chart.prototype.poll = function () {
    var self = this;
    if (!document.body.contains(this.box)) { return; }  // swapped away by htmx: stop polling
    if (!this.plot || !this.data) { this.load(); return; }
    var times = this.data[0], last = times.length ? times[times.length - 1] : 0;
    // Ask again for the last bucket (it was still filling) and for everything after it.
    this.fetch(last ? last - this.step : 0).then(function (answer) {
      if (answer.series.length !== self.series.length) { self.draw(answer); self.schedule(); return; }
      var span = RANGES[self.range] || 3600;
      answer.times.forEach(function (t, i) {
        if (t < last) { return; }
        if (t === last) {
          answer.series.forEach(function (s, k) { self.data[k + 1][self.data[0].length - 1] = s.values[i]; });
          return;
        }
        self.data[0].push(t);
        answer.series.forEach(function (s, k) { self.data[k + 1].push(s.values[i]); });
      });
      var cutoff = (answer.to || Date.now() / 1000) - span;
      while (self.data[0].length && self.data[0][0] < cutoff) { self.data.forEach(function (column) { column.shift(); }); }
      self.plot.setData(self.data);
      if (answer.series.some(function (s) { return s.values.some(function (v) { return v !== null; }); })) { self.empty(""); }
      self.box.dataset.points = String(self.data[0].length);
      self.schedule();
    }).catch(function () { self.schedule(); });
  };

  Chart.prototype.draw = function (answer) {
    var box = this.box;
    if (this.plot) { this.plot.destroy(); this.plot = null; }
    this.series = answer.series;
    this.data = [answer.times.slice()].concat(answer.series.map(function (s) { return s.values.slice(); }));
    box.dataset.source = answer.source;
    box.dataset.points = String(answer.times.length);
    if (answer.empty_reason === "no-series") { this.empty(box.dataset.emptyNoSeries); return; }
    this.empty(answer.empty_reason === "no-points" ? box.dataset.emptyNoPoints : "");
    var ink = cssVar(box, "--chart-ink"), grid = cssVar(box, "--chart-grid");
    var units = [];
    answer.series.forEach(function (s) { if (units.indexOf(s.unit) < 0) { units.push(s.unit); } });
    // Times in the page's language (uPlot's own labels are English: "3:30pm").
    var lang = document.documentElement.lang || undefined;
    var timeTicks = function (u, ticks) {
      var span = (u.scales.x.max || 0) - (u.scales.x.min || 0);
      return ticks.map(function (t) {
        var d = new Date(t * 1000);
        return span > 2 * 86400 ? d.toLocaleDateString(lang, { day: "numeric", month: "short" })
          : d.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
      });
    };
    var scales = {}, axes = [{ stroke: ink, grid: { stroke: grid }, ticks: { stroke: grid }, values: timeTicks }];
    units.slice(0, 2).forEach(function (unit, i) {
      var format = formatter(unit);
      scales[unit || "value"] = { auto: true, range: function (u, min, max) { return [Math.min(0, min), max > min ? max * 1.1 : (max || 1)]; } };
      axes.push({ scale: unit || "value", side: i === 0 ? 3 : 1, stroke: ink, grid: { show: i === 0, stroke: grid }, ticks: { stroke: grid }, size: 70,
        values: function (u, values) { return values.map(format); } });
    });
    // The legend's time column in the page's language too (uPlot writes "Time" and "2026-12-07 3:30pm").
    var timeSeries = { label: box.dataset.timeLabel || "Time",
      value: function (u, t) { return t == null ? "—" : new Date(t * 1000).toLocaleString(lang, { day: "numeric", month: "short", hour: "2-digit", minute: "2-digit", second: "2-digit" }); } };
    var series = [timeSeries].concat(answer.series.map(function (s, i) {
      var colour = cssVar(box, "--chart-" + ((i % 6) + 1));
      var unit = units.indexOf(s.unit) < 2 ? s.unit : units[0];
      return { label: seriesName(s), stroke: colour, width: 2, scale: unit || "value", spanGaps: false,
        // A sparse series (a probe every 30 s on a 15 s grid, a load test just started) is
        // dots rather than an invisible line; a dense one is a plain line.
        points: { size: 5, fill: colour, show: function (u, seriesIdx, idx0, idx1) { return sparse(u.data[seriesIdx], idx0, idx1); } },
        value: function (u, v) { return formatter(s.unit)(v); } };
    }));
    var width = Math.max(280, this.plotEl.clientWidth || box.clientWidth - 20);
    this.plot = new uPlot({ width: width, height: 220, scales: scales, axes: axes, series: series, legend: { live: true },
      cursor: { drag: { x: false, y: false } } }, this.data, this.plotEl);
    box.dataset.state = box.dataset.state === "empty" ? "empty" : "drawn";
  };

  function start() {
    if (typeof uPlot === "undefined") { return; }
    document.querySelectorAll(".metric-chart").forEach(function (box) {
      if (!box.chart) { box.chart = new Chart(box); }
    });
  }
  document.addEventListener("DOMContentLoaded", start);
  document.addEventListener("htmx:afterSettle", start);
  window.addEventListener("resize", function () {
    document.querySelectorAll(".metric-chart").forEach(function (box) {
      if (box.chart && box.chart.plot) { box.chart.plot.setSize({ width: Math.max(280, box.chart.plotEl.clientWidth), height: 220 }); }
    });
  });
})();
