// Reporting a station's problem from the page, and following one's reports (POST/GET /api/v1/reports).
// A "Report a problem" button joins every station card; the form asks what the bot asks (the same six
// kinds and details); the first report's answer carries a device token, kept in localStorage, with which
// "Your reports" shows each report's status. Plain ES2017 like app.js; text only ever via textContent.
// Also defines window.yizhanPage (strings in the page's language, storage) for notices.js.
"use strict";

(function () {
  var DEVICE_KEY = "yizhan.device";
  var MAX_TEXT = 1000; // bot/services/reports.py MAX_TEXT

  // -- strings in the page's language, and storage ------------------------------------------------------
  var ui = JSON.parse(document.getElementById("ui").textContent);
  var listeners = [];

  function t(key, values) {
    var text = ui.strings[key] || key;
    if (values) {
      text = text.replace(/\{(\w+)\}/g, function (match, name) {
        return Object.prototype.hasOwnProperty.call(values, name) ? String(values[name]) : match;
      });
    }
    return text;
  }

  function onLocale(listener) {
    listeners.push(listener);
  }

  // app.js switches the language by fetching the catalogue and marking <html data-locale>: follow it.
  new MutationObserver(function () {
    var locale = document.documentElement.getAttribute("data-locale");
    if (!locale || locale === ui.locale) return;
    fetch("/api/v1/ui/" + locale + ".json", { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (next) {
        ui = next;
        listeners.forEach(function (listener) { listener(); });
      })
      .catch(function (error) {
        if (window.console) console.warn("strings unavailable", error);
      });
  }).observe(document.documentElement, { attributes: true, attributeFilter: ["data-locale"] });

  function load(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null; // storage disabled (private mode, some WebViews)
    }
  }

  function store(key, value) {
    try {
      window.localStorage.setItem(key, value);
    } catch (e) {
      /* kept for this page only */
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pad(n) {
    return (n < 10 ? "0" : "") + n;
  }

  function formatDate(iso) {
    var d = new Date(iso);
    return t("month_day", { month: d.getMonth() + 1, day: d.getDate(), time: pad(d.getHours()) + ":" + pad(d.getMinutes()) });
  }

  window.yizhanPage = { t: t, onLocale: onLocale, load: load, store: store, el: el, formatDate: formatDate };

  // -- where the rider is (app.js tells), sent with a report only when it comes from the device ---------
  var position = null;
  document.addEventListener("yizhan:position", function (event) {
    position = event.detail;
  });

  // -- the form ---------------------------------------------------------------------------------------
  var sheet = null; // the open form: {station: {code, name, amenities}, node}

  function stationOf(card) {
    var name = card.querySelector("[data-testid=station-name]");
    var tags = card.querySelectorAll(".tag[data-key]");
    var amenities = [];
    for (var i = 0; i < tags.length; i++) amenities.push(tags[i].getAttribute("data-key"));
    return { code: card.getAttribute("data-code"), name: name ? name.textContent : "", amenities: amenities };
  }

  function field(labelKey, input) {
    var label = el("label", "report-field");
    label.appendChild(el("span", "field-label", t(labelKey)));
    label.appendChild(input);
    return label;
  }

  function closeForm() {
    if (sheet && sheet.node.parentNode) sheet.node.parentNode.removeChild(sheet.node);
    sheet = null;
  }

  function openForm(station, card) {
    closeForm();
    var form = el("form", "report-form card");
    form.setAttribute("data-testid", "report-form");
    form.noValidate = true;
    form.appendChild(el("h3", "report-title", t("report_title", { station: station.name })));

    var kinds = el("fieldset", "report-kinds");
    kinds.appendChild(el("legend", "field-label", t("report_kind")));
    ui.report_kinds.forEach(function (kind, i) {
      var option = el("label", "report-kind");
      var radio = el("input");
      radio.type = "radio";
      radio.name = "kind";
      radio.value = kind;
      radio.checked = i === 0;
      radio.setAttribute("data-testid", "report-kind-" + kind);
      option.appendChild(radio);
      option.appendChild(el("span", "", t("kind_" + kind)));
      kinds.appendChild(option);
    });
    form.appendChild(kinds);

    var amenity = el("select");
    amenity.name = "amenity";
    station.amenities.forEach(function (key) {
      var choice = el("option", "", ui.amenities[key] || key);
      choice.value = key;
      amenity.appendChild(choice);
    });
    var hours = el("input");
    hours.type = "text";
    hours.name = "hours";
    hours.placeholder = t("report_hours_hint");
    hours.setAttribute("data-testid", "report-hours");
    var place = el("input");
    place.type = "text";
    place.name = "location";
    place.inputMode = "decimal";
    place.placeholder = "23.13, 113.26";
    if (position && position.kind === "device") place.value = position.lat.toFixed(6) + ", " + position.lon.toFixed(6);
    var text = el("textarea");
    text.name = "text";
    text.rows = 3;
    text.maxLength = MAX_TEXT;
    text.setAttribute("data-testid", "report-text");

    var details = {
      amenity_broken: field("report_amenity", amenity),
      wrong_hours: field("report_hours", hours),
      wrong_location: field("report_location", place),
    };
    Object.keys(details).forEach(function (kind) { form.appendChild(details[kind]); });
    var textField = field("report_text", text);
    form.appendChild(textField);

    var message = el("p", "report-message");
    message.setAttribute("role", "alert");
    message.setAttribute("data-testid", "report-message");
    message.hidden = true;
    form.appendChild(message);

    var actions = el("div", "actions");
    var send = el("button", "button primary", t("report_send"));
    send.type = "submit";
    send.setAttribute("data-testid", "report-send");
    var cancel = el("button", "button", t("report_cancel"));
    cancel.type = "button";
    cancel.addEventListener("click", closeForm);
    actions.appendChild(send);
    actions.appendChild(cancel);
    form.appendChild(actions);

    function chosen() {
      var checked = form.querySelector("input[name=kind]:checked");
      return checked ? checked.value : ui.report_kinds[0];
    }

    function showDetails() {
      var kind = chosen();
      Object.keys(details).forEach(function (key) { details[key].hidden = key !== kind; });
      if (kind === "amenity_broken" && !station.amenities.length) details.amenity_broken.hidden = true;
      textField.firstChild.textContent = t(kind === "other" ? "report_text_required" : "report_text");
    }
    kinds.addEventListener("change", showDetails);
    showDetails();

    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var kind = chosen();
      var body = { station: station.code, kind: kind, text: text.value };
      if (kind === "amenity_broken") body.detail = amenity.value;
      if (kind === "wrong_hours") body.detail = hours.value;
      if (kind === "wrong_location") body.detail = place.value.replace(/[，\s]+/g, ",").replace(/,+/g, ",");
      var device = load(DEVICE_KEY);
      if (device) body.device = device;
      if (position && position.kind === "device") {
        body.lat = position.lat;
        body.lon = position.lon;
      }
      send.disabled = true;
      message.hidden = false;
      message.className = "report-message";
      message.textContent = t("report_sending");
      submit(body)
        .then(function () {
          closeForm();
          var thanks = el("p", "report-thanks", t("report_thanks"));
          thanks.setAttribute("role", "status");
          thanks.setAttribute("data-testid", "report-thanks");
          card.appendChild(thanks);
          refreshReports();
        })
        .catch(function (error) {
          send.disabled = false;
          message.className = "report-message error";
          message.textContent = refusal(error);
        });
    });

    card.appendChild(form);
    sheet = { station: station, node: form };
    var first = form.querySelector("input[name=kind]");
    if (first) first.focus();
  }

  function refusal(error) {
    var api = error && error.api;
    if (!api) return t("error_network");
    if (api.code === "invalid_report") {
      var reason = "reason_" + (api.reason || "kind");
      return t("report_refused", { reason: t(reason, { count: MAX_TEXT }) });
    }
    if (api.code === "unknown_station") return t("report_unknown_station");
    if (api.code === "report_too_soon") return t("report_too_soon");
    if (api.code === "report_limit") return t("report_limit");
    if (api.code === "rate_limited") return t("report_rate_limited");
    return t("error_generic");
  }

  function submit(body) {
    return fetch("/api/v1/reports", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(
        function (data) {
          if (!response.ok) throw { api: data && data.error ? data.error : { code: "http_error" } };
          if (data.device) store(DEVICE_KEY, data.device);
          return data.report;
        },
        function () { throw { api: { code: "http_error" } }; }
      );
    });
  }

  // -- the button on each station card ------------------------------------------------------------------
  function addButtons() {
    var cards = document.querySelectorAll("#results [data-testid=station]");
    for (var i = 0; i < cards.length; i++) {
      var card = cards[i];
      if (card.querySelector("[data-testid=report-open]")) continue;
      var button = el("button", "link-button report-open", t("report"));
      button.type = "button";
      button.setAttribute("data-testid", "report-open");
      button.addEventListener("click", (function (card) {
        return function () { openForm(stationOf(card), card); };
      })(card));
      card.appendChild(button);
    }
  }

  // -- "Your reports" -----------------------------------------------------------------------------------
  var section = el("section", "my-reports card");
  section.setAttribute("data-testid", "my-reports");
  section.hidden = true;
  var heading = el("div", "filters-head");
  var title = el("h2", "", t("my_reports"));
  var refresh = el("button", "link-button", t("refresh"));
  refresh.type = "button";
  refresh.setAttribute("data-testid", "my-reports-refresh");
  heading.appendChild(title);
  heading.appendChild(refresh);
  section.appendChild(heading);
  var list = el("ol", "my-reports-list");
  section.appendChild(list);
  // The bot's /forget, for this browser: the reports stay with staff, the token that ties them to it goes.
  var forget = el("button", "link-button", t("forget_reports"));
  forget.type = "button";
  forget.setAttribute("data-testid", "my-reports-forget");
  section.appendChild(forget);
  var forgetNote = el("p", "my-reports-note");
  forgetNote.setAttribute("data-testid", "my-reports-note");
  forgetNote.setAttribute("role", "status");
  forgetNote.hidden = true;
  var reports = [];

  function renderReports() {
    title.textContent = t("my_reports");
    refresh.textContent = t("refresh");
    forget.textContent = t("forget_reports");
    list.textContent = "";
    section.hidden = !reports.length;
    reports.forEach(function (report) {
      var item = el("li", "my-report status-" + report.status);
      item.setAttribute("data-testid", "my-report");
      item.setAttribute("data-status", report.status);
      item.appendChild(el("strong", "", report.station.name));
      item.appendChild(el("span", "my-report-kind", t("kind_" + report.kind) + " · " + formatDate(report.created_at)));
      var status = el("span", "my-report-status", t("status_" + report.status));
      status.setAttribute("data-testid", "my-report-status");
      item.appendChild(status);
      list.appendChild(item);
    });
  }

  function refreshReports() {
    var device = load(DEVICE_KEY);
    if (!device) return Promise.resolve();
    return fetch("/api/v1/reports?device=" + encodeURIComponent(device), { headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(function (data) {
        reports = data.reports;
        renderReports();
      })
      .catch(function (error) {
        if (window.console) console.warn("reports unavailable", error);
      });
  }

  function forgetReports() {
    var device = load(DEVICE_KEY);
    if (!device || !window.confirm(t("forget_confirm"))) return Promise.resolve();
    forget.disabled = true;
    return fetch("/api/v1/reports?device=" + encodeURIComponent(device), {
      method: "DELETE",
      headers: { Accept: "application/json" }
    })
      .then(function (response) {
        // 404: the server keeps nothing for this token (forgotten elsewhere already): forgotten all the same.
        if (!response.ok && response.status !== 404) throw new Error("HTTP " + response.status);
        try { window.localStorage.removeItem(DEVICE_KEY); } catch (e) { /* storage off: nothing kept */ }
        reports = [];
        renderReports();
        forgetNote.textContent = t("forgotten");
      })
      .catch(function (error) {
        if (window.console) console.warn("reports not forgotten", error);
        forgetNote.textContent = t("forget_failed");
      })
      .then(function () {
        forget.disabled = false;
        forgetNote.hidden = false;
      });
  }

  function relabel() {
    var buttons = document.querySelectorAll("[data-testid=report-open]");
    for (var i = 0; i < buttons.length; i++) buttons[i].textContent = t("report");
    if (sheet) closeForm();
    renderReports();
  }

  function start() {
    var results = document.getElementById("results");
    var main = document.querySelector("main");
    if (!results || !main) return;
    main.insertBefore(section, document.getElementById("map"));
    main.insertBefore(forgetNote, document.getElementById("map"));
    refresh.addEventListener("click", refreshReports);
    forget.addEventListener("click", forgetReports);
    new MutationObserver(addButtons).observe(results, { childList: true });
    addButtons();
    onLocale(relabel);
    refreshReports();
  }

  start();
})();
