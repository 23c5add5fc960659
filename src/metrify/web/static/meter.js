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

  /* The forecast is kWh per 30 minutes (the aggregates' step): summed into the chart's
     buckets when they are longer (P10 and P90 summed too: a band at least as wide as
     the bucket's own quantiles), shared out when they are shorter. */
  var FC_STEP = 1800;
  var BUCKET = { raw: p.interval_s || 1800, "15m": 900, "1h": 3600, "1d": 86400 }[p.resolution] || 3600;
  function rebucket(points) {
    var out = new Map();
    points.forEach(function (f) {
      var t = M.secs(f.target_ts), share = BUCKET < FC_STEP ? BUCKET / FC_STEP : 1;
      var k = BUCKET >= FC_STEP ? Math.floor(t / BUCKET) * BUCKET : t;
      var o = out.get(k) || { target_ts: new Date(k * 1000).toISOString(), p10: 0, p50: 0, p90: 0 };
      o.p10 = o.p10 === null || f.p10 === null ? null : o.p10 + f.p10 * share;
      o.p90 = o.p90 === null || f.p90 === null ? null : o.p90 + f.p90 * share;
      o.p50 += f.p50 * share;
      out.set(k, o);
    });
    return Array.from(out.values());
  }

  Promise.all([readings, forecast, anomalies]).then(function (got) {
    var rows = got[0], fcRaw = (got[1] && got[1].points) || [], fc = rebucket(fcRaw), an = ((got[2] && got[2].items) || [])
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
      if (!r) {  // a forecast's time with no reading bucket: no point, the line goes on
        valid.push(undefined); est.push(null); bad.push(null); gap.push(null);
        p10.push(f ? f.p10 : null); p50.push(f ? f.p50 : null); p90.push(f ? f.p90 : null);
        return;
      }
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
      series.push({ label: "forecast P90", stroke: "rgba(44,160,44,0.5)", points: { show: false } });
      series.push({ label: "forecast P50", stroke: "#2ca02c", dash: [6, 4], points: { show: false } });
      series.push({ label: "forecast P10", stroke: "rgba(44,160,44,0.5)", points: { show: false } });
      data.push(p90, p50, p10);
      opts.bands = [{ series: [5, 7], fill: "rgba(44,160,44,0.15)" }];
    }
    M.chart("meter-chart", series, data, opts);
    status.textContent = rows.length + " " + (raw ? "readings" : p.resolution + " buckets") + ", " +
      flagged.length + " flagged, " + an.length + " anomalies" + (fcRaw.length ? ", forecast of " + fcRaw.length + " half-hours" : ", no forecast stored");
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
