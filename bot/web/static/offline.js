// The stations around the rider, kept on the device so the list still answers without a network: after
// each search the area (a grid square of CELL degrees and its neighbours, never the position itself) is
// brought up to date through the public sync API (GET /api/v1/stations?bbox=…&since=…, incremental), and
// stored in localStorage with the time it was fetched. Offline, `nearest` ranks those stations by distance.
"use strict";

(function () {
  var KEY = "yizhan.area";
  var CELL = 0.05; // degrees: about 5.5 km; the area is 3 × 3 cells around the rider's
  var REFRESH_MS = 10 * 60 * 1000;
  var PAGE = 1000;
  var syncing = null;

  function load() {
    try {
      var area = JSON.parse(window.localStorage.getItem(KEY) || "null");
      return area && area.stations && area.bbox ? area : null;
    } catch (e) {
      return null;
    }
  }

  function save(area) {
    try {
      window.localStorage.setItem(KEY, JSON.stringify(area));
      return true;
    } catch (e) {
      return false; // storage full or disabled: offline answers are then unavailable
    }
  }

  function bboxAround(lat, lon) {
    var south = (Math.floor(lat / CELL) - 1) * CELL;
    var west = (Math.floor(lon / CELL) - 1) * CELL;
    return [+west.toFixed(4), +south.toFixed(4), +(west + 3 * CELL).toFixed(4), +(south + 3 * CELL).toFixed(4)];
  }

  function inside(bbox, lat, lon) {
    return lon >= bbox[0] && lat >= bbox[1] && lon <= bbox[2] && lat <= bbox[3];
  }

  function fetchPage(bbox, since, cursor) {
    var query = "bbox=" + bbox.join(",") + "&limit=" + PAGE;
    if (since) query += "&since=" + encodeURIComponent(since);
    if (cursor) query += "&cursor=" + encodeURIComponent(cursor);
    return fetch("/api/v1/stations?" + query, { headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) throw new Error("HTTP " + r.status);
      return r.json();
    });
  }

  // Bring the area around (lat, lon) up to date; resolves to the stored area (or null when it failed).
  function keepArea(lat, lon) {
    if (syncing) return syncing;
    var area = load();
    var bbox = bboxAround(lat, lon);
    var same = area && area.bbox.join() === bbox.join();
    if (same && Date.now() - area.fetched_at < REFRESH_MS) return Promise.resolve(area);
    if (!same) area = { bbox: bbox, since: null, fetched_at: 0, stations: {} };
    var since = area.since;
    var serverTime = null;
    function step(cursor) {
      return fetchPage(bbox, since, cursor).then(function (page) {
        if (!serverTime) serverTime = page.server_time; // the first page's: nothing after it is missed
        page.stations.forEach(function (s) {
          if (s.status === "closed") delete area.stations[s.code];
          else area.stations[s.code] = {
            code: s.code, name: s.name, address: s.address, lat: s.lat, lon: s.lon, phone: s.phone,
            opening_hours: s.opening_hours, amenities: s.amenities, status: s.status,
          };
        });
        return page.next_cursor ? step(page.next_cursor) : null;
      });
    }
    syncing = step(null)
      .then(function () {
        area.since = serverTime;
        area.fetched_at = Date.now();
        return save(area) ? area : null;
      })
      .catch(function () { return null; })
      .then(function (result) {
        syncing = null;
        return result;
      });
    return syncing;
  }

  function metres(lat1, lon1, lat2, lon2) {
    var rad = Math.PI / 180;
    var a = Math.pow(Math.sin((lat2 - lat1) * rad / 2), 2) +
      Math.cos(lat1 * rad) * Math.cos(lat2 * rad) * Math.pow(Math.sin((lon2 - lon1) * rad / 2), 2);
    return 2 * 6371008.8 * Math.asin(Math.sqrt(a));
  }

  // The k nearest active stations with every wanted amenity, from the kept area: {results, fetchedAt}, or
  // null when the position lies outside it. Whether each is open is not known offline (open_now null).
  function nearest(lat, lon, amenities, k) {
    var area = load();
    if (!area || !area.fetched_at || !inside(area.bbox, lat, lon)) return null;
    var results = Object.keys(area.stations).map(function (code) {
      var s = area.stations[code];
      var copy = {};
      for (var name in s) copy[name] = s[name];
      copy.distance_m = Math.round(metres(lat, lon, s.lat, s.lon));
      copy.open_now = s.opening_hours === "24/7" ? true : null;
      copy.next_change = null;
      copy.offline = true;
      return copy;
    }).filter(function (s) {
      return s.status === "active" && amenities.every(function (a) { return s.amenities.indexOf(a) >= 0; });
    });
    results.sort(function (a, b) { return a.distance_m - b.distance_m; });
    return { results: results.slice(0, k), fetchedAt: new Date(area.fetched_at) };
  }

  window.yizhanOffline = { keepArea: keepArea, nearest: nearest };
})();
