/* Grid: a node's load against its capacity, voltage and frequency against their bands
   (EN 50160: voltage within nominal ±10%, frequency within 50 Hz ±1%). */
"use strict";
(function () {
  var p = M.page;
  if (!p.node) return;
  var status = document.getElementById("grid-status");
  var span = Date.parse(p.to) - Date.parse(p.from);
  var q = { from: p.from, to: p.to, resolution: span > 3 * 86400e3 ? "1h" : "raw", limit: 10000 };
  M.pages("/v1/grid/nodes/" + encodeURIComponent(p.node.node_id) + "/load", q, 10).then(function (rows) {
    var xs = rows.map(function (r) { return M.secs(r.ts); });
    function col(k) { return rows.map(function (r) { return r[k]; }); }
    function flat(v) { return xs.map(function () { return v; }); }
    var cap = p.node.capacity_mw;
    M.chart("load-chart", [{ label: "load MW", stroke: "#1f77b4", fill: "rgba(31,119,180,0.1)" },
      { label: "generation MW", stroke: "#2ca02c" },
      { label: "capacity MW", stroke: "#d62728", dash: [8, 4], points: { show: false } }],
      [xs, col("load_mw"), col("generation_mw"), flat(cap === null || cap === undefined ? null : cap)]);
    var kv = p.node.nominal_kv;
    if (kv) {
      M.chart("voltage-chart", [{ label: "voltage kV", stroke: "#9467bd" },
        { label: "+10%", stroke: "#d62728", dash: [4, 4], points: { show: false } }, { label: "-10%", stroke: "#d62728", dash: [4, 4], points: { show: false } }],
        [xs, col("voltage_kv"), flat(kv * 1.1), flat(kv * 0.9)], { height: 200 });
    } else {
      M.chart("voltage-chart", [{ label: "voltage kV (no nominal registered)", stroke: "#9467bd" }], [xs, col("voltage_kv")], { height: 200 });
    }
    M.chart("frequency-chart", [{ label: "frequency Hz", stroke: "#8c564b" },
      { label: "50.5 Hz", stroke: "#d62728", dash: [4, 4], points: { show: false } }, { label: "49.5 Hz", stroke: "#d62728", dash: [4, 4], points: { show: false } }],
      [xs, col("frequency_hz"), flat(50.5), flat(49.5)], { height: 200 });
    var over = rows.filter(function (r) { return cap && r.load_mw > cap; }).length;
    status.textContent = rows.length + " " + q.resolution + " points; " + over + " above capacity";
    status.dataset.count = String(rows.length);
  }).catch(function (e) { status.textContent = "Could not load measurements: " + e.message; });
})();
