/* Meter page: readings with VEE flags, gaps and estimates marked, anomalies shaded on the
   same time axis, the forecast's P10-P90 band and P50 when forecasts exist. */
"use strict";
(function () {
  var p = M.page;
  var status = document.getElementById("meter-status");
  var base = "/v1/meters/" + encodeURIComponent(p.meter);
  var readings = M.pages(base + "/readings", { from: p.from, to: p.to, resolution: p.resolution, limit: 10000 }, 20);
  var forecast = M.api("/v1/forecasts", { meter: p.meter, from: p.from, to: p.to, tz: "UTC" }).catch(function () { return null; });
  var anomalies = p.anomalies ? M.api("/v1/anomalies", { subject_id: p.meter, since: p.from, limit: 500 })
    .catch(function () { return null; }) : Promise.resolve(null);

  Promise.all([readings, forecast, anomalies]).then(function (got) {
    var rows = got[0], fc = (got[1] && got[1].points) || [], an = ((got[2] && got[2].items) || [])
      .filter(function (a) { return Date.parse(a.ts_start) < Date.parse(p.to); });
    var raw = p.resolution === "raw";
    var xs = new Map();
    rows.forEach(function (r) { xs.set(M.secs(r.ts), r); });
    fc.forEach(function (f) { var t = M.secs(f.target_ts); if (!xs.has(t)) xs.set(t, null); });
    var times = Array.from(xs.keys()).sort(function (a, b) { return a - b; });
    var fcAt = new Map(fc.map(function (f) { return [M.secs(f.target_ts), f]; }));
    var valid = [], est = [], bad = [], gap = [], p10 = [], p50 = [], p90 = [];
    var flagged = [];
    times.forEach(function (t) {
      var r = xs.get(t), f = fcAt.get(t);
      var v = r ? r.import_kwh : null;
      var missing = r ? (raw ? (r.quality & 1) !== 0 : r.missing > 0) : false;
      var estimated = r ? (raw ? r.status === "estimated" : r.estimated > 0) : false;
      var suspect = r ? (raw ? (r.status === "suspect" || r.status === "rejected") : (r.suspect + r.rejected) > 0) : false;
      valid.push(r && !missing ? v : (r && estimated ? v : null));
      est.push(estimated ? v : null);
      bad.push(suspect ? v : null);
      gap.push(missing && !estimated ? 0 : null);
      p10.push(f ? f.p10 : null); p50.push(f ? f.p50 : null); p90.push(f ? f.p90 : null);
      if (r && r.quality) flagged.push(r);
    });
    var series = [
      { label: "kWh", stroke: "#1f77b4", spanGaps: false },
      { label: "estimated", stroke: "#ff7f0e", paths: function () { return null; }, points: { show: true, size: 7, fill: "#ff7f0e" } },
      { label: "suspect/rejected", stroke: "#d62728", paths: function () { return null; }, points: { show: true, size: 7, fill: "#d62728" } },
      { label: "gap", stroke: "#7f7f7f", paths: function () { return null; }, points: { show: true, size: 6, fill: "#7f7f7f" } }
    ];
    var data = [times, valid, est, bad, gap];
    var opts = { plugins: [M.spansPlugin(an.map(function (a) { return [M.secs(a.ts_start), M.secs(a.ts_end)]; }))] };
    if (fc.length) {
      series.push({ label: "forecast P90", stroke: "rgba(44,160,44,0.5)" });
      series.push({ label: "forecast P50", stroke: "#2ca02c", dash: [6, 4] });
      series.push({ label: "forecast P10", stroke: "rgba(44,160,44,0.5)" });
      data.push(p90, p50, p10);
      opts.bands = [{ series: [5, 7], fill: "rgba(44,160,44,0.15)" }];
    }
    M.chart("meter-chart", series, data, opts);
    status.textContent = rows.length + " " + (raw ? "readings" : p.resolution + " buckets") + ", " +
      flagged.length + " flagged, " + an.length + " anomalies" + (fc.length ? ", forecast of " + fc.length + " intervals" : ", no forecast stored");
    status.dataset.count = String(rows.length);
    var tbody = document.querySelector("#flagged tbody");
    flagged.slice(0, 200).forEach(function (r) {
      var tr = document.createElement("tr");
      M.cell(tr, M.fmt(r.ts)); M.cell(tr, M.round(r.import_kwh, 3)); M.cell(tr, r.status, "st-" + r.status); M.cell(tr, M.flags(r.quality));
      tbody.appendChild(tr);
    });
    var atb = document.querySelector("#meter-anomalies tbody");
    an.forEach(function (a) {
      var tr = document.createElement("tr");
      var td = M.cell(tr, ""); var link = document.createElement("a");
      link.href = "/anomalies/" + a.id; link.textContent = "#" + a.id; td.appendChild(link);
      M.cell(tr, a.kind); M.cell(tr, M.fmt(a.ts_start)); M.cell(tr, M.fmt(a.ts_end)); M.cell(tr, a.severity); M.cell(tr, a.status);
      atb.appendChild(tr);
    });
  }).catch(function (e) { status.textContent = "Could not load readings: " + e.message; });
})();
