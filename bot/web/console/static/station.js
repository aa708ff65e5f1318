/* The station page: a question before each lifecycle action (forms with `data-confirm`), and the small map
   of the station (Leaflet, tiles of the site's provider; the position is already in the tiles' datum). */
(function () {
  "use strict";
  Array.prototype.forEach.call(document.querySelectorAll("form[data-confirm]"), function (form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) event.preventDefault();
    });
  });
  var box = document.getElementById("station-map");
  if (!box || typeof L === "undefined") return;
  var d = box.dataset;
  var point = [parseFloat(d.lat), parseFloat(d.lon)];
  var map = L.map(box, { scrollWheelZoom: false }).setView(point, 16);
  var options = { maxZoom: parseInt(d.maxZoom, 10) || 18, attribution: d.attribution || "" };
  if (d.subdomains) options.subdomains = d.subdomains;
  L.tileLayer(d.url, options).addTo(map);
  if (d.overlay) L.tileLayer(d.overlay, { maxZoom: options.maxZoom, subdomains: options.subdomains || "abc" }).addTo(map);
  L.circleMarker(point, { radius: 9, weight: 3, color: "#c0392b", fillOpacity: 0.6 }).addTo(map);
})();
