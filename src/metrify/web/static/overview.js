/* Fleet overview: energy and demand over the last 7 days of data, completeness by region. */
"use strict";
(function () {
  var p = M.page;
  var end = p.newest ? new Date(Date.parse(p.newest) + 3600e3) : new Date();
  var start = new Date(end.getTime() - 7 * 86400e3);
  var range = { from: M.iso(start), to: M.iso(end), resolution: "1h", tz: "UTC" };
  var subjects = p.regions === null ? [{ fleet: true, label: "fleet" }]
    : p.regions.map(function (r) { return { region: r, label: r }; });
  var colors = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"];

  Promise.all(subjects.map(function (s) {
    var q = Object.assign({}, range);
    if (s.fleet) q.fleet = "true"; else q.region = s.region;
    return M.api("/v1/energy", q).then(function (b) { return { s: s, b: b }; });
  })).then(function (answers) {
    var tables = answers.map(function (a) {
      var bs = (a.b && a.b.buckets) || [];
      return [bs.map(function (x) { return M.secs(x.start); }),
        bs.map(function (x) { return x.import_kwh; }), bs.map(function (x) { return x.peak_kw; })];
    });
    var xs = Array.from(new Set([].concat.apply([], tables.map(function (t) { return t[0]; })))).sort(function (a, b) { return a - b; });
    function aligned(k) {
      return tables.map(function (t) {
        var m = new Map(t[0].map(function (x, i) { return [x, t[k][i]]; }));
        return xs.map(function (x) { return m.has(x) ? m.get(x) : null; });
      });
    }
    var energy = aligned(1), demand = aligned(2);
    M.chart("energy-chart", answers.map(function (a, i) {
      return { label: a.s.label + " energy kWh/h", stroke: colors[i % 5], fill: "rgba(31,119,180,0.08)" };
    }), [xs].concat(energy), { title: "Energy per hour (kWh)" });
    M.chart("demand-chart", answers.map(function (a, i) {
      return { label: a.s.label + " peak demand kW", stroke: colors[(i + 1) % 5] };
    }), [xs].concat(demand), { title: "Peak demand per hour (kW)" });
  }).catch(function (e) { document.getElementById("energy-chart").textContent = "Energy unavailable: " + e.message; });

})();
