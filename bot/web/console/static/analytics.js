/* The analytics page: draws what /console/api/analytics/ answers for the region in the form. Demand and gap
   cells as H3 hexagons on a Leaflet map (h3-js gives each cell's boundary), uPlot charts of searches by hour
   of the week and of unmet searches by day and at night, the suggested sites and the station evaluation
   table. The server decides what the staff member may see; this script only draws it. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("analytics-config").textContent);
  var S = config.strings;
  var body = document.body;

  function fill(text, values) {
    return String(text).replace(/\{(\w+)\}/g, function (match, name) {
      return Object.prototype.hasOwnProperty.call(values, name) ? values[name] : match;
    });
  }

  function query(extra) {
    var params = ["region=" + encodeURIComponent(config.region)];
    if (config.since) params.push("since=" + encodeURIComponent(config.since));
    if (config.until) params.push("until=" + encodeURIComponent(config.until));
    return params.concat(extra || []).join("&");
  }

  function get(path, extra) {
    return fetch("/console/api/analytics/" + path + "?" + query(extra), {
      credentials: "same-origin",
      headers: { Accept: "application/json" },
    }).then(function (response) {
      if (response.status === 401 && response.headers.get("HX-Redirect")) {
        window.location.href = response.headers.get("HX-Redirect");
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      return response.json();
    });
  }

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function failed(node) {
    node.textContent = "";
    node.appendChild(el("p", S.error, "error"));
  }

  function percent(share) {
    return (Math.round(share * 1000) / 10).toFixed(1) + " %";
  }

  // -------------------------------------------------------------------------------------------------
  // The map
  // -------------------------------------------------------------------------------------------------

  var mapNode = document.getElementById("analytics-map");
  var map = null;
  var hexagons = null;
  var cells = { demand: [], gaps: [] };

  function ensureMap() {
    if (map || !window.L) return map;
    map = L.map(mapNode, { zoomControl: true }).setView([23.13, 113.26], 10);
    var options = { attribution: config.tiles.attribution, maxZoom: config.tiles.max_zoom };
    if (config.tiles.subdomains) options.subdomains = config.tiles.subdomains;
    L.tileLayer(config.tiles.url, options).addTo(map);
    hexagons = L.featureGroup().addTo(map);
    return map;
  }

  // Where a WGS-84 point is drawn: shifted to GCJ-02 on Amap's tiles (coords.js, the H5 page's port of
  // domain/coords.py), as is on any other.
  function onMap(point) {
    var coords = window.yizhanCoords;
    if (config.tiles.datum === "gcj02" && coords) return coords.wgs84ToGcj02(point[0], point[1]);
    return point;
  }

  function colour(share) {
    // Pale yellow to deep red as a cell's value nears the largest one.
    var light = Math.round(88 - 50 * share);
    return "hsl(" + Math.round(50 - 50 * share) + ", 90%, " + light + "%)";
  }

  function drawLayer(name) {
    if (!ensureMap()) return;
    hexagons.clearLayers();
    var list = name === "demand" ? cells.demand : cells.gaps;
    var valueOf = {
      demand: function (c) { return c.searches; },
      gaps_day: function (c) { return c.unmet_day; },
      gaps_night: function (c) { return c.unmet_night; },
    }[name];
    var largest = 0;
    list.forEach(function (c) { largest = Math.max(largest, valueOf(c)); });
    var drawn = 0;
    list.forEach(function (c) {
      var value = valueOf(c);
      if (!value) return;
      var polygon = L.polygon(h3.cellToBoundary(c.cell).map(onMap), {
        weight: 1,
        color: "#7a2e0e",
        fillColor: colour(largest ? value / largest : 0),
        fillOpacity: 0.65,
        className: "hexagon",
      });
      polygon.bindTooltip((name === "demand" ? S.cell : S.gap_cell) + " " + c.cell + ": " + value);
      hexagons.addLayer(polygon);
      if (!drawn) body.setAttribute("data-first-vertex", JSON.stringify(polygon.getLatLngs()[0][0]));
      drawn += 1;
    });
    body.setAttribute("data-hexagons", String(drawn));
    if (drawn) map.fitBounds(hexagons.getBounds(), { maxZoom: 14, padding: [12, 12] });
  }

  function chosenLayer() {
    var checked = document.querySelector("input[name=layer]:checked");
    return checked ? checked.value : "demand";
  }

  Array.prototype.forEach.call(document.querySelectorAll("input[name=layer]"), function (input) {
    input.addEventListener("change", function () { drawLayer(chosenLayer()); });
  });

  function loadCells() {
    var note = document.getElementById("map-note");
    return Promise.all([get("demand"), get("gaps")]).then(function (answers) {
      cells.demand = answers[0].cells;
      cells.gaps = answers[1].cells;
      var notes = [];
      if (!cells.demand.length) notes.push(S.no_cells);
      if (answers[0].hidden_cells) notes.push(fill(S.hidden, { count: answers[0].hidden_cells }));
      note.textContent = notes.join(" ");
      drawLayer(chosenLayer());
      drawGapsChart(cells.gaps);
    }).catch(function () { failed(note); });
  }

  // -------------------------------------------------------------------------------------------------
  // Charts
  // -------------------------------------------------------------------------------------------------

  function fromZero(u, min, max) {
    return [0, Math.max(1, max)];
  }

  function chartWidth(node) {
    return Math.max(280, Math.min(960, node.clientWidth || 600));
  }

  function drawHoursChart() {
    var node = document.getElementById("hours-chart");
    return get("hours").then(function (answer) {
      var xs = [], ys = [];
      answer.hours.forEach(function (count, hour) { xs.push(hour); ys.push(count); });
      node.textContent = "";
      new uPlot({
        width: chartWidth(node),
        height: 220,
        scales: { x: { time: false }, y: { range: fromZero } },
        axes: [
          {
            values: function (u, splits) {
              return splits.map(function (hour) {
                return hour % 24 === 0 ? S.weekdays[Math.floor(hour / 24) % 7] : String(hour % 24);
              });
            },
            splits: function () {
              var out = [];
              for (var h = 0; h < 168; h += 12) out.push(h);
              return out;
            },
          },
          {},
        ],
        series: [
          {
            label: S.hour,
            value: function (u, hour) {
              return hour === null ? "–" : S.weekdays[Math.floor(hour / 24) % 7] + " " + (hour % 24) + ":00";
            },
          },
          { label: S.searches, stroke: "#b4441c", fill: "rgba(180, 68, 28, 0.15)" },
        ],
      }, [xs, ys], node);
      body.setAttribute("data-hours-chart", "1");
    }).catch(function () { failed(node); });
  }

  function drawGapsChart(gaps) {
    var node = document.getElementById("gaps-chart");
    var top = gaps.slice().sort(function (a, b) { return b.unmet - a.unmet; }).slice(0, 30);
    var xs = [], day = [], night = [];
    top.forEach(function (c, i) { xs.push(i + 1); day.push(c.unmet_day); night.push(c.unmet_night); });
    node.textContent = "";
    if (!top.length) {
      node.appendChild(el("p", S.no_cells, "muted"));
      return;
    }
    // Day bars wide, night bars narrow in front of them: both stay readable without stacking.
    var wide = uPlot.paths.bars({ size: [0.7, 48] });
    var narrow = uPlot.paths.bars({ size: [0.35, 24] });
    new uPlot({
      width: chartWidth(node),
      height: 220,
      scales: { x: { time: false, range: [0.5, xs.length + 0.5] }, y: { range: fromZero } },
      axes: [{ splits: function () { return xs; } }, {}],
      series: [
        {
          label: S.gap_cell,
          value: function (u, i) { return i === null ? "–" : top[i - 1] ? top[i - 1].cell : "–"; },
        },
        { label: S.unmet_day, stroke: "#d08c1a", fill: "rgba(208, 140, 26, 0.6)", paths: wide },
        { label: S.unmet_night, stroke: "#2c3e7a", fill: "rgba(44, 62, 122, 0.8)", paths: narrow },
      ],
    }, [xs, day, night], node);
    body.setAttribute("data-gaps-chart", "1");
  }

  // -------------------------------------------------------------------------------------------------
  // Suggestions
  // -------------------------------------------------------------------------------------------------

  var suggestForm = document.getElementById("suggest-form");

  function loadSuggestions() {
    var rows = document.getElementById("suggestions");
    var n = suggestForm.elements.n.value || "5";
    return get("suggestions", ["n=" + encodeURIComponent(n)]).then(function (answer) {
      rows.textContent = "";
      answer.suggestions.forEach(function (s) {
        var row = el("tr");
        row.setAttribute("data-testid", "suggestion");
        row.appendChild(el("td", s.rank));
        var where = el("td");
        var link = el("a", (s.name && s.name !== s.cell ? s.name + " · " : "") + s.lat.toFixed(5) + ", " + s.lon.toFixed(5));
        link.href = "#analytics-map";
        link.addEventListener("click", function () {
          if (ensureMap()) map.setView(onMap([s.lat, s.lon]), 15);
        });
        where.appendChild(link);
        row.appendChild(where);
        row.appendChild(el("td", s.covered));
        row.appendChild(el("td", percent(s.share)));
        row.appendChild(el("td", percent(s.cumulative_share)));
        rows.appendChild(row);
      });
      document.getElementById("suggest-note").textContent = fill(S.unmet_total, { count: answer.unmet_total });
    }).catch(function () { failed(document.getElementById("suggest-note")); });
  }

  suggestForm.addEventListener("submit", function (event) {
    event.preventDefault();
    loadSuggestions();
  });

  // -------------------------------------------------------------------------------------------------
  // Station evaluation
  // -------------------------------------------------------------------------------------------------

  var evaluationOffset = 0;
  var previousPage = document.getElementById("evaluation-previous");
  var nextPage = document.getElementById("evaluation-next");

  function loadEvaluation() {
    var rows = document.getElementById("evaluation");
    var paging = ["offset=" + evaluationOffset, "limit=" + config.page_size];
    return get("stations", paging).then(function (answer) {
      rows.textContent = "";
      var shown = answer.stations.length;
      document.getElementById("evaluation-count").textContent = shown ? fill(S.evaluation_count, {
        first: answer.offset + 1, last: answer.offset + shown, total: answer.total,
      }) : "";
      previousPage.hidden = answer.offset === 0;
      nextPage.hidden = answer.offset + shown >= answer.total;
      document.getElementById("evaluation-period").textContent = fill(S.period, { since: answer.since, until: answer.until });
      answer.stations.forEach(function (station) {
        var row = el("tr");
        row.setAttribute("data-testid", "evaluation-row");
        row.setAttribute("data-code", station.code);
        if (station.concerns.length) row.className = "warn";
        config.columns.forEach(function (key) {
          var value = station[key];
          if (key === "concerns") {
            value = value.map(function (c) { return answer.concern_labels[c] || c; }).join("; ");
          } else if (value === null || value === undefined) {
            value = "–";
          }
          row.appendChild(el("td", value));
        });
        rows.appendChild(row);
      });
      body.setAttribute("data-evaluation", String(answer.stations.length));
      body.setAttribute("data-evaluation-offset", String(answer.offset));
    }).catch(function () { failed(rows); });
  }

  previousPage.addEventListener("click", function () {
    evaluationOffset = Math.max(0, evaluationOffset - config.page_size);
    loadEvaluation();
  });
  nextPage.addEventListener("click", function () {
    evaluationOffset += config.page_size;
    loadEvaluation();
  });

  ensureMap();
  Promise.all([loadCells(), drawHoursChart(), loadSuggestions(), loadEvaluation()]).then(function () {
    body.setAttribute("data-analytics-ready", "1");
  });
})();
