// porter demo site: proves that scripts load and run, and that the server
// answers a second request for a JSON file.
(function () {
  "use strict";

  function $(id) { return document.getElementById(id); }

  function pad(n) { return String(n).padStart(2, "0"); }

  function clock(d) {
    return pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function showInfo(info, ms) {
    var list = $("info");
    if (!list) return;
    list.textContent = "";
    Object.keys(info).forEach(function (key) {
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = key.replace(/_/g, " ");
      dd.textContent = String(info[key]);
      list.appendChild(dt);
      list.appendChild(dd);
    });
    var note = $("info-note");
    if (note) note.textContent = "Fetched data/info.json in " + ms + " ms.";
  }

  document.addEventListener("DOMContentLoaded", function () {
    var started = new Date();

    var loaded = $("loaded-at");
    if (loaded) loaded.textContent = clock(started);

    var badge = $("js-badge");
    if (badge) {
      badge.textContent = "JavaScript ran at " + clock(started);
      badge.classList.add("ok");
    }

    var here = $("location");
    if (here) here.textContent = window.location.host || "(file)";

    // What carried this page: "h2" over HTTP/2, "http/1.1", "h3"...
    // (the Navigation Timing entry's nextHopProtocol).
    var proto = $("protocol");
    var nav = performance.getEntriesByType &&
      performance.getEntriesByType("navigation")[0];
    if (proto) proto.textContent = (nav && nav.nextHopProtocol) || "unknown";

    var t0 = performance.now();
    fetch("data/info.json", { cache: "no-store" })
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (info) {
        showInfo(info, Math.round(performance.now() - t0));
      })
      .catch(function (err) {
        var note = $("info-note");
        if (note) {
          note.textContent = "Could not fetch data/info.json: " + err.message;
          note.classList.add("error");
        }
      });
  });
})();
