// The union's notices around the rider: announcements whose audience covers the position the page
// searches from (GET /api/v1/notices), newest first, above the results. A dismissed notice stays hidden
// (its id kept in localStorage). The position is sent for the request only. Needs report.js (yizhanPage).
"use strict";

(function () {
  var DISMISSED_KEY = "yizhan.dismissed_notices";
  var KEEP_DISMISSED = 200;
  var page = window.yizhanPage;
  if (!page) return;
  var t = page.t;
  var el = page.el;

  var section = el("section", "notices");
  section.setAttribute("data-testid", "notices");
  section.setAttribute("aria-label", t("notices"));
  section.hidden = true;
  var notices = [];
  var asked = null; // the last position asked about, so that a repeated search asks nothing new
  var request = 0;

  function dismissed() {
    try {
      var ids = JSON.parse(page.load(DISMISSED_KEY) || "[]");
      return Array.isArray(ids) ? ids : [];
    } catch (e) {
      return [];
    }
  }

  function dismiss(id) {
    var ids = dismissed().filter(function (known) { return known !== id; });
    ids.push(id);
    page.store(DISMISSED_KEY, JSON.stringify(ids.slice(-KEEP_DISMISSED)));
    render();
  }

  function render() {
    section.textContent = "";
    section.setAttribute("aria-label", t("notices"));
    var hidden = dismissed();
    var shown = notices.filter(function (notice) { return hidden.indexOf(notice.id) < 0; });
    section.hidden = !shown.length;
    if (!shown.length) return;
    section.appendChild(el("h2", "notices-title", t("notices")));
    shown.forEach(function (notice) {
      var item = el("article", "notice-card");
      item.setAttribute("data-testid", "notice");
      item.setAttribute("data-id", String(notice.id));
      var close = el("button", "notice-dismiss", "×");
      close.type = "button";
      close.setAttribute("aria-label", t("dismiss"));
      close.title = t("dismiss");
      close.setAttribute("data-testid", "notice-dismiss");
      close.addEventListener("click", function () { dismiss(notice.id); });
      item.appendChild(close);
      item.appendChild(el("p", "notice-text", notice.text));
      item.appendChild(el("p", "notice-date", page.formatDate(notice.sent_at)));
      section.appendChild(item);
    });
  }

  function load(position) {
    var key = position.lat.toFixed(4) + "," + position.lon.toFixed(4);
    if (key === asked) return;
    asked = key;
    var mine = ++request;
    var query = "lat=" + encodeURIComponent(position.lat) + "&lon=" + encodeURIComponent(position.lon);
    fetch("/api/v1/notices?" + query, { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        if (mine !== request) return;
        notices = data.notices;
        render();
      })
      .catch(function (error) {
        asked = null;
        if (window.console) console.warn("notices unavailable", error);
      });
  }

  var where = document.getElementById("where");
  if (where && where.parentNode) where.parentNode.insertBefore(section, where.nextSibling);
  document.addEventListener("yizhan:position", function (event) { load(event.detail); });
  page.onLocale(render);
})();
