/* One anomaly: the subject's data around it, its span shaded. */
"use strict";
(function () {
  var p = M.page;
  var s0 = Date.parse(p.ts_start), s1 = Date.parse(p.ts_end);
  var pad = Math.max(s1 - s0, 86400e3);
  var from = M.iso(s0 - pad), to = M.iso(s1 + pad);
  var long = (s1 - s0 + 2 * pad) > 4 * 86400e3;
  var status = document.getElementById("evidence-status");
  var path, q, fields;
  var id = encodeURIComponent(p.subject_id);
  if (p.subject_type === "meter") {
    path = "/v1/meters/" + id + "/readings";
    q = { from: from, to: to, resolution: long || !p.raw ? "1h" : "raw", limit: 10000 };
    fields = [["import_kwh", "kWh"]];
  } else if (p.subject_type === "node") {
    path = "/v1/grid/nodes/" + id + "/load";
    q = { from: from, to: to, resolution: long ? "1h" : "raw", limit: 10000 };
    fields = [["load_mw", "load MW"], ["frequency_hz", "frequency Hz"], ["voltage_kv", "voltage kV"]];
  } else {
    path = "/v1/weather/stations/" + id + "/observations";
    q = { from: from, to: to, resolution: long ? "1h" : "raw", limit: 10000 };
    fields = [["temperature_c", "temperature °C"]];
  }
  M.pages(path, q, 10).then(function (rows) {
    var present = fields.filter(function (f) { return rows.some(function (r) { return r[f[0]] !== null && r[f[0]] !== undefined; }); });
    if (!present.length) present = fields.slice(0, 1);
    var f = present[0];
    var xs = rows.map(function (r) { return M.secs(r.ts); });
    M.chart("evidence-chart", [{ label: f[1], stroke: "#1f77b4" }], [xs, rows.map(function (r) { return r[f[0]]; })],
      { plugins: [M.spansPlugin([[s0 / 1000, s1 / 1000]])] });
    status.textContent = rows.length + " points from " + M.fmt(from) + " to " + M.fmt(to) + " (" + q.resolution + ")";
    status.dataset.count = String(rows.length);
  }).catch(function (e) { status.textContent = "Could not load the data: " + e.message; });
})();
