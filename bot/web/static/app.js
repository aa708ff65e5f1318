// The rider's page: where am I → the nearest open union stations, with the way there and a phone number.
// Plain ES2017 in one classic script (no modules, no build step, no optional chaining) so that WeChat's
// in-app browser and other embedded WebViews run it. Station data is only ever written with textContent.
// The map (Leaflet) is progressive enhancement: without Leaflet or tiles the list works the same.
"use strict";

(function () {
  var RESULTS = 8;
  var LOCALES = ["zh_Hans", "zh_Hant", "en"];
  var HTML_LANG = { zh_Hans: "zh-Hans", zh_Hant: "zh-Hant", en: "en" };
  var STORAGE_KEY = "yizhan.locale";

  var body = document.body;
  var state = {
    ui: JSON.parse(document.getElementById("ui").textContent),
    locale: document.documentElement.getAttribute("data-locale") || "zh_Hans",
    amenities: [], // selected keys, in the order of the chips
    includeClosed: false,
    position: null, // {kind: device | place | coords, lat, lon, key (of a preset place)}
    placeStatus: "locating", // what the place line says while there is no position
    response: null, // {results, fallback, amenities}
    request: 0, // sequence number: only the latest answer is drawn
    map: null,
    mapLayer: null,
    leaflet: null, // the promise of Leaflet loaded (true) or not (false)
    weeks: {}, // station code → its week from /api/v1/stations/{code}, for this page's life
  };

  function $(id) {
    return document.getElementById(id);
  }

  // ---------------------------------------------------------------------------------------------------
  // Strings
  // ---------------------------------------------------------------------------------------------------

  function t(key, values) {
    var text = state.ui.strings[key] || key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, function (match, name) {
        return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match;
      });
    }
    return text;
  }

  // The same mapping as bot/i18n.py `locale_for`.
  function localeFor(tag) {
    if (!tag) return "zh_Hans";
    var normal = String(tag).split(".")[0].split("@")[0].replace(/_/g, "-").toLowerCase();
    if (["zh-hans", "zh-cn", "zh-sg", "zh", "zh-my"].indexOf(normal) >= 0) return "zh_Hans";
    if (["zh-hant", "zh-tw", "zh-hk", "zh-mo"].indexOf(normal) >= 0) return "zh_Hant";
    var parts = normal.split("-");
    if (parts[0] === "zh") {
      for (var i = 1; i < parts.length; i++) {
        if (["hant", "tw", "hk", "mo"].indexOf(parts[i]) >= 0) return "zh_Hant";
      }
      return "zh_Hans";
    }
    var candidates = [normal, parts[0]];
    for (var c = 0; c < candidates.length; c++) {
      for (var l = 0; l < LOCALES.length; l++) {
        if (LOCALES[l].toLowerCase().replace("_", "-") === candidates[c]) return LOCALES[l];
      }
    }
    return "zh_Hans";
  }

  // `?lang=zh-Hant`, `?lang=en`…: a link's choice; null when absent or not one of ours.
  function urlLocale() {
    var match = /[?&]lang=([^&#]*)/.exec(window.location.search);
    if (!match) return null;
    var wanted = decodeURIComponent(match[1]).replace(/-/g, "_").toLowerCase();
    for (var i = 0; i < LOCALES.length; i++) {
      if (LOCALES[i].toLowerCase() === wanted) return LOCALES[i];
    }
    return null;
  }

  function storedLocale() {
    try {
      var value = window.localStorage.getItem(STORAGE_KEY);
      return LOCALES.indexOf(value) >= 0 ? value : null;
    } catch (e) {
      return null; // storage disabled (private mode, some WebViews)
    }
  }

  function storeLocale(locale) {
    try {
      window.localStorage.setItem(STORAGE_KEY, locale);
    } catch (e) {
      /* the choice then lasts for this page only */
    }
  }

  function applyStrings() {
    document.documentElement.lang = HTML_LANG[state.locale] || state.locale;
    document.documentElement.setAttribute("data-locale", state.locale);
    document.title = t("title");
    var nodes = document.querySelectorAll("[data-i18n]");
    for (var i = 0; i < nodes.length; i++) {
      nodes[i].textContent = t(nodes[i].getAttribute("data-i18n"));
    }
    $("map").setAttribute("aria-label", t("map"));
    $("language").value = state.locale;
    renderPlaces();
    renderChips();
    renderPlaceLine();
    render();
  }

  function setLocale(locale, remember) {
    if (LOCALES.indexOf(locale) < 0) return Promise.resolve();
    if (remember) storeLocale(locale);
    if (locale === state.ui.locale) {
      state.locale = locale;
      applyStrings();
      return Promise.resolve();
    }
    return fetch("/api/v1/ui/" + locale + ".json", { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (ui) {
        state.ui = ui;
        state.locale = locale;
        applyStrings();
      })
      .catch(function () {
        $("language").value = state.locale;
        showError(t("error_network"));
      });
  }

  // ---------------------------------------------------------------------------------------------------
  // Formatting (the bot's rules: handlers/views.py)
  // ---------------------------------------------------------------------------------------------------

  function formatDistance(metres) {
    if (metres < 1000) return t("metres", { metres: Math.round(metres) });
    if (metres < 100000) return t("km", { km: (metres / 1000).toFixed(1) });
    return t("km", { km: Math.round(metres / 1000).toLocaleString("en-US") });
  }

  // Minutes on foot, or null beyond walking range (the bot's thresholds, from the server).
  function walkingMinutes(metres) {
    var distances = state.ui.distances;
    if (metres > distances.walking_range_m) return null;
    return Math.max(1, Math.ceil(metres / distances.walking_m_per_min));
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  // A time of day in the station's own offset (from the ISO string), with the day when it is not today.
  function formatWhen(iso) {
    var m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::[\d.]+)?(Z|([+-])(\d{2}):?(\d{2}))?$/.exec(iso);
    if (!m) return iso;
    var offset = 0;
    if (m[7]) offset = (m[7] === "-" ? -1 : 1) * (parseInt(m[8], 10) * 60 + parseInt(m[9], 10));
    var when = Date.UTC(+m[1], +m[2] - 1, +m[3]);
    var now = new Date(Date.now() + offset * 60000);
    var today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
    var days = Math.round((when - today) / 86400000);
    var clock = m[4] + ":" + m[5];
    if (days <= 0) return clock;
    if (days === 1) return t("tomorrow", { time: clock });
    if (days < 7) return state.ui.weekdays[(new Date(when).getUTCDay() + 6) % 7] + " " + clock;
    return t("month_day", { month: +m[2], day: +m[3], time: clock });
  }

  // {text, tone}: tone is open | closed | unknown (colour always comes with words).
  function hoursPhrase(station) {
    if (station.status !== "active") return { text: t("temporarily_closed"), tone: "closed" };
    if (station.open_now === null || station.open_now === undefined) {
      // Offline nobody worked out whether it is open: its hours as written say more than "unknown".
      if (station.offline && station.opening_hours) return { text: station.opening_hours, tone: "unknown" };
      return { text: t("hours_unknown"), tone: "unknown" };
    }
    if (station.open_now) {
      if (!station.next_change) return { text: t("open_24h"), tone: "open" };
      return { text: t("open_until", { time: formatWhen(station.next_change) }), tone: "open" };
    }
    if (!station.next_change) return { text: t("closed"), tone: "closed" };
    return { text: t("closed_opens", { time: formatWhen(station.next_change) }), tone: "closed" };
  }

  function amapUrl(s) {
    return "https://uri.amap.com/marker?position=" + s.lon + "," + s.lat + "&name=" + encodeURIComponent(s.name) +
      "&coordinate=wgs84&callnative=1&src=yizhan";
  }

  function baiduUrl(s) {
    return "https://api.map.baidu.com/marker?location=" + s.lat + "," + s.lon +
      "&title=" + encodeURIComponent(s.name) + "&content=" + encodeURIComponent(s.address || s.name) +
      "&output=html&coord_type=wgs84&src=yizhan";
  }

  function telUrl(phone) {
    return "tel:" + String(phone).replace(/[^0-9+#*,;]/g, "");
  }

  // ---------------------------------------------------------------------------------------------------
  // DOM helpers
  // ---------------------------------------------------------------------------------------------------

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function showError(message) {
    var node = $("error");
    node.textContent = message;
    node.hidden = !message;
  }

  function setNotice(message) {
    var node = $("notice");
    node.textContent = message || "";
    node.hidden = !message;
  }

  // ---------------------------------------------------------------------------------------------------
  // Where: geolocation, typed coordinates, preset places
  // ---------------------------------------------------------------------------------------------------

  function placeLabel(key) {
    for (var i = 0; i < state.ui.places.length; i++) {
      if (state.ui.places[i].key === key) return state.ui.places[i].label;
    }
    return null;
  }

  function renderPlaceLine() {
    var line = $("place-line");
    var p = state.position;
    if (!p) line.textContent = t(state.placeStatus);
    else if (p.kind === "device") line.textContent = t("near_you");
    else if (p.kind === "place") line.textContent = t("near_place", { place: placeLabel(p.key) || p.key });
    else line.textContent = t("near_place", { place: p.lat.toFixed(4) + ", " + p.lon.toFixed(4) });
  }

  function renderPlaces() {
    var box = $("places");
    box.textContent = "";
    state.ui.places.forEach(function (place) {
      var button = el("button", "button place", place.label);
      button.type = "button";
      button.setAttribute("data-testid", "preset-place");
      button.setAttribute("data-key", place.key);
      button.addEventListener("click", function () {
        usePosition({ kind: "place", key: place.key, lat: place.lat, lon: place.lon });
      });
      box.appendChild(button);
    });
  }

  function setFormOpen(open) {
    $("place-form").hidden = !open;
    $("change-place").hidden = open || !state.position;
  }

  function usePosition(position) {
    state.position = position;
    // For report.js and notices.js; the position stays in this page.
    document.dispatchEvent(new CustomEvent("yizhan:position", { detail: position }));
    showError("");
    renderPlaceLine();
    setFormOpen(false);
    search();
  }

  // "23.13, 113.26", "23.13 113.26", "23.13，113.26"; swapped longitude-first pairs are put right.
  function parseCoords(text) {
    var parts = String(text).trim().split(/[\s,，;；]+/).filter(Boolean);
    if (parts.length !== 2) return null;
    var a = Number(parts[0]);
    var b = Number(parts[1]);
    if (!isFinite(a) || !isFinite(b)) return null;
    if (Math.abs(a) > 90 && Math.abs(b) <= 90) {
      var swap = a;
      a = b;
      b = swap;
    }
    if (Math.abs(a) > 90 || Math.abs(b) > 180) return null;
    return { lat: a, lon: b };
  }

  function setPlaceStatus(key) {
    state.placeStatus = key;
    renderPlaceLine();
  }

  // `asked`: the rider tapped the button (rather than the page asking on load), so failures are told
  // even when a place is already chosen, and the answer replaces that place.
  function locate(asked) {
    var explicit = asked === true;
    var started = state.position;
    function fail(key) {
      if (state.position) {
        if (explicit) showError(t(key));
        return; // a typed or picked place is in use: keep it
      }
      setPlaceStatus(key);
      setFormOpen(true);
    }
    if (!navigator.geolocation) {
      fail("geo_unavailable");
      return;
    }
    setPlaceStatus("locating");
    if (state.position && explicit) $("place-line").textContent = t("locating");
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        // A place picked while the browser was still locating wins over the answer to the page's own ask.
        if (!explicit && state.position !== started) return;
        usePosition({ kind: "device", lat: pos.coords.latitude, lon: pos.coords.longitude });
      },
      function (error) {
        renderPlaceLine();
        fail(error && error.code === 1 ? "geo_denied" : "geo_unavailable");
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  // ---------------------------------------------------------------------------------------------------
  // Filters (kept in the URL hash: #amenity=toilet,wifi&closed=1, so a link shares them)
  // ---------------------------------------------------------------------------------------------------

  function readHash() {
    var params = {};
    String(window.location.hash || "").replace(/^#/, "").split("&").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i > 0) params[decodeURIComponent(pair.slice(0, i))] = decodeURIComponent(pair.slice(i + 1));
    });
    var known = Object.keys(state.ui.amenities);
    state.amenities = (params.amenity || "").split(",").filter(function (key) {
      return known.indexOf(key) >= 0;
    });
    state.includeClosed = params.closed === "1";
  }

  function writeHash() {
    var parts = [];
    if (state.amenities.length) parts.push("amenity=" + state.amenities.join(","));
    if (state.includeClosed) parts.push("closed=1");
    var url = window.location.pathname + window.location.search + (parts.length ? "#" + parts.join("&") : "");
    try {
      window.history.replaceState(null, "", url);
    } catch (e) {
      /* some WebViews refuse replaceState; the filters still work for this page */
    }
  }

  // `focus`: the key of the chip just tapped, scrolled into view (the bar is rebuilt, and scrolls, on a tap).
  function renderChips(focus) {
    var box = $("chips");
    var scrolled = box.scrollLeft;
    box.textContent = "";
    Object.keys(state.ui.amenities).forEach(function (key) {
      var pressed = state.amenities.indexOf(key) >= 0;
      var chip = el("button", "chip", state.ui.amenities[key]);
      chip.type = "button";
      chip.setAttribute("data-testid", "amenity-chip");
      chip.setAttribute("data-key", key);
      chip.setAttribute("aria-pressed", pressed ? "true" : "false");
      chip.addEventListener("click", function () {
        toggleAmenity(key);
      });
      box.appendChild(chip);
    });
    box.scrollLeft = scrolled;
    var shown = box.querySelector('[data-key="' + (focus || state.amenities[0] || "") + '"]');
    if (shown && shown.scrollIntoView) shown.scrollIntoView({ block: "nearest", inline: "nearest" });
    $("clear-filters").hidden = state.amenities.length === 0;
    $("include-closed").checked = state.includeClosed;
  }

  function toggleAmenity(key) {
    var selected = state.amenities.indexOf(key) < 0
      ? state.amenities.concat([key])
      : state.amenities.filter(function (k) { return k !== key; });
    // Chip order, whatever order they were tapped in: the URL and the request stay stable.
    state.amenities = Object.keys(state.ui.amenities).filter(function (k) { return selected.indexOf(k) >= 0; });
    writeHash();
    renderChips(key);
    search();
  }

  // ---------------------------------------------------------------------------------------------------
  // Search
  // ---------------------------------------------------------------------------------------------------

  function nearby(includeClosed) {
    var p = state.position;
    var query = "lat=" + p.lat.toFixed(6) + "&lon=" + p.lon.toFixed(6) + "&k=" + RESULTS +
      "&include_closed=" + (includeClosed ? "true" : "false");
    if (state.amenities.length) query += "&amenity=" + encodeURIComponent(state.amenities.join(","));
    // The header lets the server count the search as the page's (a coarse cell; no position is kept).
    return fetch("/api/v1/stations/nearby?" + query, {
      headers: { Accept: "application/json", "X-Yizhan-Channel": "h5" }
    })
      .then(function (response) {
        return response.json().then(
          function (data) { return { ok: response.ok, data: data }; },
          function () { return { ok: false, data: null }; }
        );
      })
      .then(function (answer) {
        if (!answer.ok || !answer.data || !answer.data.results) {
          var error = new Error("API error");
          error.api = answer.data && answer.data.error;
          throw error;
        }
        return answer.data.results;
      });
  }

  function search() {
    if (!state.position) return;
    var request = ++state.request;
    var amenities = state.amenities.slice();
    body.setAttribute("data-loading", "1");
    setNotice(t("searching"));
    showError("");
    nearby(state.includeClosed)
      .then(function (results) {
        // Nothing open: like the bot, show the nearest ones and when they open.
        if (results.length || state.includeClosed) return { results: results, fallback: false };
        return nearby(true).then(function (all) { return { results: all, fallback: true }; });
      })
      .then(function (answer) {
        if (request !== state.request) return;
        state.response = { results: answer.results, fallback: answer.fallback, amenities: amenities };
        render();
        keepArea();
      })
      .catch(function (error) {
        if (request !== state.request) return;
        if (!(error && error.api) && answerOffline(amenities)) return;
        if (window.console) console.warn("nearby search failed", error && error.api ? error.api : error);
        setNotice("");
        showError(error && error.api ? t("error_generic") : t("error_network"));
        showRetry();
      })
      .then(function () {
        if (request === state.request) body.setAttribute("data-loading", "0");
      });
  }

  // Keep the stations around the rider on the device (offline.js) once the list is shown.
  function keepArea() {
    var offline = window.yizhanOffline;
    if (!offline || !state.position) return;
    offline.keepArea(state.position.lat, state.position.lon).then(function (area) {
      body.setAttribute("data-area", area ? "1" : "0");
    });
  }

  // No network: the nearest stations of the kept area, said to be as of when they were fetched.
  function answerOffline(amenities) {
    var offline = window.yizhanOffline;
    var kept = offline && offline.nearest(state.position.lat, state.position.lon, amenities, RESULTS);
    if (!kept) return false;
    state.response = { results: kept.results, fallback: false, amenities: amenities, asOf: kept.fetchedAt };
    render();
    return true;
  }

  function showRetry() {
    var node = $("error");
    var retry = el("button", "button retry", t("retry"));
    retry.type = "button";
    retry.addEventListener("click", search);
    node.appendChild(document.createTextNode(" "));
    node.appendChild(retry);
  }

  // ---------------------------------------------------------------------------------------------------
  // Results
  // ---------------------------------------------------------------------------------------------------

  // ---------------------------------------------------------------------------------------------------
  // Station evaluation: which cards riders saw and what they tapped, sent in small beacons. Only the
  // station and the kind of use leave the page (the server keeps counts per station per day).
  // ---------------------------------------------------------------------------------------------------

  var USAGE_BATCH = 20;
  var usage = { queue: [], timer: null, seen: {}, observer: null };

  function sendUsage() {
    if (usage.timer) {
      clearTimeout(usage.timer);
      usage.timer = null;
    }
    while (usage.queue.length) {
      var payload = JSON.stringify({ events: usage.queue.splice(0, USAGE_BATCH) });
      var sent = false;
      try {
        // text/plain keeps it a simple request; the beacon outlives the page when a map app opens.
        sent = !!(navigator.sendBeacon && navigator.sendBeacon("/api/v1/usage", new Blob([payload], { type: "text/plain" })));
      } catch (error) {
        sent = false;
      }
      if (!sent && window.fetch) {
        fetch("/api/v1/usage", { method: "POST", body: payload, keepalive: true }).catch(function () {});
      }
    }
  }

  function countUsage(code, kind) {
    if (!code || body.getAttribute("data-offline") === "1") return;
    usage.queue.push({ station: code, kind: kind });
    if (kind !== "view" || usage.queue.length >= USAGE_BATCH) sendUsage();
    else if (!usage.timer) usage.timer = setTimeout(sendUsage, 2000);
  }

  // A card counts as seen once per answer, when at least half of it has been on the screen.
  function watchCard(item, code) {
    if (usage.seen[code]) return;
    if (!window.IntersectionObserver) {
      usage.seen[code] = true;
      countUsage(code, "view");
      return;
    }
    if (!usage.observer) {
      usage.observer = new IntersectionObserver(function (entries) {
        entries.forEach(function (entry) {
          if (!entry.isIntersecting) return;
          var seenCode = entry.target.getAttribute("data-code");
          usage.observer.unobserve(entry.target);
          if (usage.seen[seenCode]) return;
          usage.seen[seenCode] = true;
          countUsage(seenCode, "view");
        });
      }, { threshold: 0.5 });
    }
    usage.observer.observe(item);
  }

  function newAnswer() {
    usage.seen = {};
    if (usage.observer) usage.observer.disconnect();
  }

  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "hidden") sendUsage();
  });

  function stationCard(station, rank, wanted) {
    var item = el("li", "station");
    item.setAttribute("data-testid", "station");
    item.setAttribute("data-code", station.code);
    item.id = "station-" + rank;

    var head = el("div", "station-head");
    head.appendChild(el("span", "rank", String(rank)));
    var name = el("h3", "station-name", station.name);
    name.setAttribute("data-testid", "station-name");
    head.appendChild(name);
    item.appendChild(head);

    var hours = hoursPhrase(station);
    var facts = el("p", "facts");
    var distance = el("strong", "distance", formatDistance(station.distance_m));
    distance.setAttribute("data-testid", "station-distance");
    facts.appendChild(distance);
    var minutes = walkingMinutes(station.distance_m);
    if (minutes !== null) facts.appendChild(el("span", "walk", t("walk", { minutes: minutes })));
    item.appendChild(facts);

    var badge = el("p", "hours hours-" + hours.tone, hours.text);
    badge.setAttribute("data-testid", "station-hours");
    item.appendChild(badge);

    if (station.address) item.appendChild(el("p", "address", station.address));

    if (station.amenities && station.amenities.length) {
      var list = el("ul", "tags");
      station.amenities.forEach(function (key) {
        var label = state.ui.amenities[key];
        if (!label) return;
        var tag = el("li", "tag" + (wanted.indexOf(key) >= 0 ? " tag-wanted" : ""), label);
        tag.setAttribute("data-key", key);
        list.appendChild(tag);
      });
      item.appendChild(list);
    }

    if (station.status === "active" && station.opening_hours) item.appendChild(weekBox(station));

    var actions = el("div", "actions");
    if (station.phone) {
      var call = el("a", "button action call", t("call"));
      call.href = telUrl(station.phone);
      call.setAttribute("data-testid", "station-call");
      call.setAttribute("aria-label", t("call") + " " + station.phone);
      call.addEventListener("click", function () { countUsage(station.code, "call"); });
      actions.appendChild(call);
    }
    var amap = el("a", "button action", t("amap"));
    amap.href = amapUrl(station);
    amap.rel = "noopener noreferrer";
    amap.setAttribute("data-testid", "nav-amap");
    actions.appendChild(amap);
    var baidu = el("a", "button action", t("baidu"));
    baidu.href = baiduUrl(station);
    baidu.rel = "noopener noreferrer";
    baidu.setAttribute("data-testid", "nav-baidu");
    actions.appendChild(baidu);
    [amap, baidu].forEach(function (link) {
      link.addEventListener("click", function () { countUsage(station.code, "navigate"); });
    });
    item.appendChild(actions);
    return item;
  }

  // The week's hours, Monday first, today marked: asked of the station's own endpoint when opened (a cached
  // answer, not on the search's hot path), so a slow network spends nothing on it until the rider wants it.
  function weekBox(station) {
    var box = el("details", "week");
    box.setAttribute("data-testid", "station-week");
    var summary = el("summary", null, t("week"));
    box.appendChild(summary);
    var table = el("ol", "week-days");
    box.appendChild(table);
    function fill(week) {
      table.textContent = "";
      week.days.forEach(function (day, i) {
        var row = el("li", "week-day");
        var today = day.date === week.today;
        if (today) {
          row.className += " today";
          row.setAttribute("aria-current", "date");
        }
        row.appendChild(el("span", "week-name", (today ? "▸ " : "") + state.ui.weekdays[i]));
        var spans = day.intervals.map(function (span) {
          var text = span.start === "00:00" && span.end === "24:00" ? t("open_24h") : span.start + "–" + span.end;
          return span.state === "open" ? text : t("span_unknown", { span: text });
        });
        row.appendChild(el("span", "week-hours", spans.length ? spans.join(", ") : t("closed")));
        table.appendChild(row);
      });
    }
    box.addEventListener("toggle", function () {
      if (!box.open || box.getAttribute("data-loaded") === "1") return;
      var cached = state.weeks[station.code];
      if (cached) {
        fill(cached);
        box.setAttribute("data-loaded", "1");
        return;
      }
      table.textContent = "";
      table.appendChild(el("li", "week-day", t("week_loading")));
      fetch("/api/v1/stations/" + encodeURIComponent(station.code), { headers: { Accept: "application/json" } })
        .then(function (response) {
          if (!response.ok) throw new Error("HTTP " + response.status);
          return response.json();
        })
        .then(function (detail) {
          if (!detail.week) throw new Error("no week");
          state.weeks[station.code] = detail.week;
          fill(detail.week);
          box.setAttribute("data-loaded", "1");
        })
        .catch(function () {
          table.textContent = "";
          table.appendChild(el("li", "week-day", t("error_network")));
        });
    });
    return box;
  }

  function render() {
    var answer = state.response;
    var title = $("results-title");
    var list = $("results");
    if (!answer) return;
    list.textContent = "";
    var results = answer.results;
    title.hidden = false;
    title.textContent = answer.fallback || state.includeClosed ? t("results_all") : t("results_open");
    if (!results.length) setNotice(answer.amenities.length ? t("empty_filter") : t("empty"));
    else setNotice(answer.fallback ? t("none_open") : "");
    if (answer.asOf) {
      title.textContent = t("results_all");
      setNotice(t("offline_as_of", { time: pad(answer.asOf.getHours()) + ":" + pad(answer.asOf.getMinutes()) }));
    }
    body.setAttribute("data-offline", answer.asOf ? "1" : "0");
    var far = $("far");
    var nearest = results.length ? results[0].distance_m : 0;
    far.hidden = !(nearest > state.ui.distances.far_away_m);
    far.textContent = far.hidden ? "" : t("far", { distance: formatDistance(nearest) });
    newAnswer();
    results.forEach(function (station, i) {
      var card = stationCard(station, i + 1, answer.amenities);
      list.appendChild(card);
      watchCard(card, station.code);
    });
    body.setAttribute("data-results", String(results.length));
    drawMap(results);
  }

  // ---------------------------------------------------------------------------------------------------
  // Map (only when Leaflet loaded; any failure leaves the list alone)
  // ---------------------------------------------------------------------------------------------------

  function escapeHtml(text) {
    var div = document.createElement("div");
    div.textContent = text;
    return div.innerHTML;
  }

  // Where a WGS-84 point goes on the base map: shifted to GCJ-02 on Amap's tiles, as they are drawn.
  function onMap(lat, lon) {
    var coords = window.yizhanCoords;
    if (body.getAttribute("data-tile-datum") === "gcj02" && coords) return coords.wgs84ToGcj02(lat, lon);
    return [lat, lon];
  }

  function tileLayer(L, url, attribution) {
    var options = {
      maxZoom: parseInt(body.getAttribute("data-tile-max-zoom"), 10) || 19,
      attribution: attribution,
    };
    var subdomains = body.getAttribute("data-tile-subdomains");
    if (subdomains) options.subdomains = subdomains;
    return L.tileLayer(url, options);
  }

  function ensureMap() {
    if (state.map) return state.map;
    var L = window.L;
    var tiles = body.getAttribute("data-tile-url");
    if (!L || !tiles) return null;
    var node = $("map");
    node.hidden = false;
    var map = L.map(node, { zoomControl: true, scrollWheelZoom: false });
    map.attributionControl.setPrefix('<a href="https://leafletjs.com">Leaflet</a>');
    tileLayer(L, tiles, escapeHtml(body.getAttribute("data-tile-attribution") || "")).addTo(map);
    var overlay = body.getAttribute("data-tile-overlay");
    if (overlay) tileLayer(L, overlay, "").addTo(map); // Tianditu's place names
    state.map = map;
    state.mapLayer = L.layerGroup().addTo(map);
    return map;
  }

  // Leaflet (42 KB gzipped) is fetched once the first list is shown, so it never delays the list.
  function loadLeaflet() {
    if (window.L) return Promise.resolve(true);
    if (state.leaflet) return state.leaflet;
    state.leaflet = new Promise(function (resolve) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = body.getAttribute("data-leaflet-css");
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = body.getAttribute("data-leaflet-js");
      script.onload = function () { resolve(!!window.L); };
      script.onerror = function () { resolve(false); };
      document.head.appendChild(script);
    });
    return state.leaflet;
  }

  function drawMap(results) {
    if (!window.L) {
      loadLeaflet().then(function (loaded) {
        if (loaded && state.response && state.response.results === results) drawMap(results);
      });
      return;
    }
    try {
      var map = ensureMap();
      if (!map) return;
      var L = window.L;
      var layer = state.mapLayer;
      layer.clearLayers();
      var points = [];
      var here = onMap(state.position.lat, state.position.lon);
      $("map").setAttribute("data-here", here.join(","));
      L.circleMarker(here, { radius: 9, color: "#ffffff", weight: 3, fillColor: "#1557c0", fillOpacity: 1 })
        .bindTooltip(t("you_are_here"))
        .addTo(layer);
      points.push(here);
      results.forEach(function (station, i) {
        var tone = hoursPhrase(station).tone;
        var pin = el("span", "pin-label", String(i + 1));
        var at = onMap(station.lat, station.lon);
        pin.setAttribute("data-at", at.join(","));
        var marker = L.marker(at, {
          icon: L.divIcon({ className: "pin pin-" + tone, html: pin, iconSize: [34, 34], iconAnchor: [17, 17] }),
          title: station.name,
          keyboard: false,
        });
        var popup = el("div", "popup");
        popup.appendChild(el("strong", null, station.name));
        popup.appendChild(el("div", null, formatDistance(station.distance_m) + " · " + hoursPhrase(station).text));
        marker.bindPopup(popup);
        marker.on("click", function () {
          var card = $("station-" + (i + 1));
          if (card) card.classList.add("highlight");
          window.setTimeout(function () { if (card) card.classList.remove("highlight"); }, 1500);
        });
        marker.addTo(layer);
        points.push(at);
      });
      map.invalidateSize();
      if (points.length > 1) map.fitBounds(points, { padding: [28, 28], maxZoom: 17 });
      else map.setView(here, 15);
    } catch (error) {
      if (window.console) console.warn("map unavailable", error);
      $("map").hidden = true;
    }
  }

  // ---------------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------------

  function start() {
    readHash();
    if (navigator.serviceWorker && window.isSecureContext) {
      navigator.serviceWorker.register("/sw.js").catch(function (error) {
        if (window.console) console.warn("no offline copy of the page", error);
      });
    }
    $("language").addEventListener("change", function (event) {
      setLocale(event.target.value, true);
    });
    $("locate").addEventListener("click", function () {
      locate(true);
    });
    $("change-place").addEventListener("click", function () {
      setFormOpen(true);
      $("coords").focus();
    });
    $("coords-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var point = parseCoords($("coords").value);
      if (!point) {
        showError(t("coords_invalid"));
        return;
      }
      usePosition({ kind: "coords", lat: point.lat, lon: point.lon });
    });
    $("clear-filters").addEventListener("click", function () {
      state.amenities = [];
      writeHash();
      renderChips();
      search();
    });
    $("include-closed").addEventListener("change", function (event) {
      state.includeClosed = event.target.checked;
      writeHash();
      search();
    });

    var linked = urlLocale();
    if (linked) storeLocale(linked); // a link's language lasts, like a choice made on the page
    var wanted = linked || storedLocale() || localeFor((navigator.languages && navigator.languages[0]) || navigator.language);
    var ready = wanted !== state.ui.locale ? setLocale(wanted) : Promise.resolve(applyStrings());
    ready.then(function () {
      body.setAttribute("data-ready", "1");
      locate(false);
    });
  }

  start();
})();
