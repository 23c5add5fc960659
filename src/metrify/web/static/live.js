/* Live: polls /ui/live every 2 s; the newest readings, freshness, and a running chart of
   how many readings arrived per poll. */
"use strict";
(function () {
  var every = M.page.poll_ms || 2000;
  var seen = [[], []];
  var plot = null;
  function text(id, v) { document.getElementById(id).textContent = v; }
  function tick() {
    fetch("/ui/live", { credentials: "same-origin" }).then(function (r) {
      if (r.status === 401) { window.location.href = "/?next=/live"; throw new Error("signed out"); }
      return r.json();
    }).then(function (b) {
      text("checked", M.fmt(b.at));
      text("live-newest", M.fmt(b.newest_ts));
      text("live-ingested", M.fmt(b.last_ingested_at));
      text("live-lag", M.duration(b.ingest_lag_s));
      var tbody = document.querySelector("#live-readings tbody");
      tbody.innerHTML = "";
      b.readings.forEach(function (r) {
        var tr = document.createElement("tr");
        M.cell(tr, r.meter_id); M.cell(tr, M.fmt(r.ts)); M.cell(tr, M.round(r.import_kwh, 3));
        M.cell(tr, r.status, "st-" + r.status); M.cell(tr, M.flags(r.quality)); M.cell(tr, r.source); M.cell(tr, M.fmt(r.ingested_at));
        tbody.appendChild(tr);
      });
      seen[0].push(Date.parse(b.at) / 1000);
      seen[1].push(b.last_ingested_at ? (Date.parse(b.at) - Date.parse(b.last_ingested_at)) / 1000 : null);
      if (seen[0].length > 300) { seen[0].shift(); seen[1].shift(); }
      if (!plot) plot = M.chart("live-chart", [{ label: "seconds since the last ingest", stroke: "#1f77b4" }], seen, { height: 180 });
      else plot.setData(seen);
    }).catch(function () {}).then(function () { setTimeout(tick, every); });
  }
  tick();
})();
