/* Metrify dashboard: what every page shares. Calls the API with the session's token
   (renewed once through /session/refresh when it expires), draws uPlot charts. */
"use strict";
var M = (function () {
  function meta(name) {
    var el = document.querySelector('meta[name="' + name + '"]');
    return el ? el.getAttribute("content") : null;
  }
  var token = meta("metrify-token");
  var csrf = meta("metrify-csrf");
  var dataEl = document.getElementById("page-data");
  var page = dataEl ? JSON.parse(dataEl.textContent || "{}") : {};

  function renew() {
    return fetch("/session/refresh", {
      method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf || "" }
    }).then(function (r) {
      if (!r.ok) { window.location.href = "/?next=" + encodeURIComponent(location.pathname + location.search); throw new Error("signed out"); }
      return r.json();
    }).then(function (b) { token = b.access_token; csrf = b.csrf; });
  }

  function qs(params) {
    var out = [];
    Object.keys(params || {}).forEach(function (k) {
      var v = params[k];
      if (v !== null && v !== undefined && v !== "") out.push(encodeURIComponent(k) + "=" + encodeURIComponent(v));
    });
    return out.length ? "?" + out.join("&") : "";
  }

  /* GET an API route as JSON; resolves null on 404 (not there or out of scope). */
  function api(path, params, retried) {
    return fetch(path + qs(params), { headers: { "Authorization": "Bearer " + token }, credentials: "same-origin" })
      .then(function (r) {
        if (r.status === 401 && !retried) return renew().then(function () { return api(path, params, true); });
        if (r.status === 404) return null;
        if (!r.ok) return r.json().then(function (b) { throw new Error(b.detail || r.statusText); });
        return r.json();
      });
  }

  /* Every page of a paged API answer (items follow next_cursor), up to maxPages. */
  function pages(path, params, maxPages) {
    var items = [];
    function step(cursor, n) {
      var p = Object.assign({}, params, cursor ? { cursor: cursor } : {});
      return api(path, p).then(function (b) {
        if (!b) return items;
        items = items.concat(b.items || []);
        if (b.next_cursor && n + 1 < (maxPages || 10)) return step(b.next_cursor, n + 1);
        return items;
      });
    }
    return step(null, 0);
  }

  function secs(iso) { return Date.parse(iso) / 1000; }
  function iso(d) { return (d instanceof Date ? d : new Date(d)).toISOString(); }
  function fmt(t) { return t ? String(t).replace("T", " ").replace(/(\.\d+)?(\+00:00|Z)$/, "") : "—"; }

  var FLAGS = ["missing", "duplicate", "out of range", "spike", "flat line", "register mismatch",
    "register rollover", "clock", "estimated", "edited", "anomaly"];
  function flags(q) {
    var out = [];
    for (var i = 0; i < FLAGS.length; i++) if (q & (1 << i)) out.push(FLAGS[i]);
    return out.join(", ");
  }

  /* Shade [from, to) spans (seconds) behind a chart's series. */
  function spansPlugin(spans, color) {
    return {
      hooks: {
        drawClear: [function (u) {
          var ctx = u.ctx;
          ctx.save();
          ctx.fillStyle = color || "rgba(214, 39, 40, 0.15)";
          spans.forEach(function (s) {
            var x0 = u.valToPos(s[0], "x", true), x1 = u.valToPos(s[1], "x", true);
            ctx.fillRect(x0, u.bbox.top, Math.max(x1 - x0, 2), u.bbox.height);
          });
          ctx.restore();
        }]
      }
    };
  }

  function chart(elId, series, data, opts) {
    var el = document.getElementById(elId);
    if (!el) return null;
    el.innerHTML = "";
    var width = Math.max(el.clientWidth || 900, 300);
    var o = Object.assign({
      width: width, height: 260, series: [{}].concat(series),
      axes: [{}, { size: 60 }], scales: { x: { time: true } }, legend: { live: true },
      tzDate: function (ts) { return uPlot.tzDate(new Date(ts * 1e3), "Etc/UTC"); }
    }, opts || {});
    return new uPlot(o, data, el);
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  /* Seconds as a person reads them (the pages' duration filter, in the browser). */
  function duration(s) {
    if (s === null || s === undefined) return "—";
    var sign = s < 0 ? "-" : "", left = Math.floor(Math.abs(s));
    if (left < 120) return sign + left + " s";
    if (left < 3600) return sign + Math.floor(left / 60) + " min";
    if (left < 86400) return sign + Math.floor(left / 3600) + " h " + Math.floor(left % 3600 / 60) + " min";
    return sign + Math.floor(left / 86400) + " d " + Math.floor(left % 86400 / 3600) + " h";
  }

  function round(v, n) { return v === null || v === undefined ? null : Number(v).toFixed(n === undefined ? 2 : n); }

  return { page: page, api: api, pages: pages, secs: secs, iso: iso, fmt: fmt, flags: flags,
    spansPlugin: spansPlugin, chart: chart, cell: cell, round: round, duration: duration, csrf: function () { return csrf; } };
})();
