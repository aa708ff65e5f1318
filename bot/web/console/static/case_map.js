/* The small map beside a case: the station on the configured tiles (the server already shifted the point
   into the tiles' datum). A circle marker: no marker images to fetch. */
(function () {
  "use strict";
  var el = document.getElementById("map");
  if (!el || typeof L === "undefined") return;
  var lat = parseFloat(el.dataset.lat), lon = parseFloat(el.dataset.lon);
  var options = { maxZoom: parseInt(el.dataset.maxZoom, 10) || 18, attribution: el.dataset.attribution || "" };
  if (el.dataset.subdomains) options.subdomains = el.dataset.subdomains;
  var map = L.map(el, { scrollWheelZoom: false }).setView([lat, lon], 16);
  L.tileLayer(el.dataset.url, options).addTo(map);
  if (el.dataset.overlay) L.tileLayer(el.dataset.overlay, options).addTo(map);
  L.circleMarker([lat, lon], { radius: 9, color: "#c0392b", weight: 3, fillOpacity: 0.6 }).addTo(map);
})();
