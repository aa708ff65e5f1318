// The demo chat client: one user talking to the bot through the local Bot API's /demo/api endpoints.
// Plain JS, no build step. The server is the source of truth: the page long-polls /demo/api/updates and
// (re)renders every message it is told about, so the bot's edits replace messages in place.
"use strict";

(() => {
  // Icons are inline SVG, not emoji: many Linux machines (CI included) have no colour emoji font.
  const PIN_SVG = '<svg viewBox="0 0 24 24" width="1em" height="1em" aria-hidden="true"><path fill="currentColor" '
    + 'd="M12 2a7 7 0 0 0-7 7c0 5.2 7 13 7 13s7-7.8 7-13a7 7 0 0 0-7-7zm0 9.5A2.5 2.5 0 1 1 12 6.5a2.5 2.5 0 0 1 0 5z"/>'
    + "</svg>";

  const state = {
    version: -1, // -1: the first poll asks for the whole chat
    lang: "zh-hans",
    config: null,
    messages: new Map(), // id → view from the server
    replyKeyboard: null,
    keyboardHidden: false,
    commands: [],
    description: "",
    typingUntil: 0,
    offline: false,
  };

  const $ = (id) => document.getElementById(id);
  // The page's strings, the languages and the places' labels come from the server (its catalogues and
  // registries), so this file keeps no translations of its own.
  const t = (key) => {
    const strings = state.config ? state.config.strings : null;
    return (strings && (strings[state.lang] || {})[key]) || "";
  };
  const htmlLang = () => {
    const language = state.config && state.config.languages.find((l) => l.code === state.lang);
    return language ? language.tag : "zh-Hans";
  };
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function pinIcon(className) {
    const span = document.createElement("span");
    span.className = className;
    span.setAttribute("aria-hidden", "true");
    span.innerHTML = PIN_SVG; // a constant of this file, never data from the bot
    return span;
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) if (child !== null && child !== undefined) node.append(child);
    return node;
  }

  async function call(path, body) {
    const init = body === undefined ? {} : {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    };
    const response = await fetch(path, init);
    const data = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(data.error || `${response.status} ${response.statusText}`);
    return data;
  }

  // ---------------------------------------------------------------- the bot's HTML, safely

  const TAGS = {
    b: "b", strong: "b", i: "i", em: "i", u: "u", ins: "u", s: "s", strike: "s", del: "s",
    code: "code", pre: "pre", blockquote: "blockquote",
  };
  const SAFE_SCHEMES = new Set(["http:", "https:", "tg:", "geo:", "mailto:", "tel:"]);

  function safeHref(href) {
    try {
      const url = new URL(href, window.location.href);
      return SAFE_SCHEMES.has(url.protocol) ? url.href : null;
    } catch {
      return null;
    }
  }

  // DOMParser documents are inert (no scripts, no loads); we copy only text and whitelisted elements out
  // of it, so anything else the bot sent ends up as text, never as markup.
  function richText(html) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    const fragment = document.createDocumentFragment();
    copyAllowed(doc.body, fragment);
    return fragment;
  }

  function copyAllowed(from, to) {
    for (const node of from.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) {
        to.append(document.createTextNode(node.data));
        continue;
      }
      if (node.nodeType !== Node.ELEMENT_NODE) continue;
      const tag = node.tagName.toLowerCase();
      let copy = null;
      if (tag in TAGS) {
        copy = document.createElement(TAGS[tag]);
      } else if (tag === "a") {
        const href = safeHref(node.getAttribute("href") || "");
        if (href) copy = el("a", { href, target: "_blank", rel: "noopener noreferrer" });
      } else if (tag === "tg-spoiler" || (tag === "span" && node.classList.contains("tg-spoiler"))) {
        copy = el("span", { class: "spoiler", title: "spoiler" });
        copy.addEventListener("click", () => copy.classList.add("revealed"));
      }
      if (copy) {
        copyAllowed(node, copy);
        to.append(copy);
      } else {
        copyAllowed(node, to);
      }
    }
  }

  // ---------------------------------------------------------------- messages

  function osmLink(lat, lon) {
    return `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=17/${lat}/${lon}`;
  }

  function placeCard(message) {
    const location = message.location;
    const venue = message.venue;
    const live = location && location.live_period;
    const lat = Number(location.latitude).toFixed(5);
    const lon = Number(location.longitude).toFixed(5);
    return el(
      "a",
      {
        class: `place-card${live ? " live" : ""}`,
        href: osmLink(lat, lon),
        target: "_blank",
        rel: "noopener noreferrer",
        title: t("open_map"),
        "data-testid": venue ? "venue" : "location",
        "data-lat": location.latitude,
        "data-lon": location.longitude,
      },
      el("div", { class: "place-map", "aria-hidden": "true" }, pinIcon("pin")),
      el(
        "div",
        { class: "place-body" },
        el("div", { class: "place-title", text: venue ? venue.title : t(live ? "live_location" : "location") }),
        venue && venue.address ? el("div", { class: "place-address", text: venue.address }) : null,
        el("div", { class: "place-coords", text: `${lat}, ${lon}` }),
      ),
    );
  }

  function inlineKeyboard(message) {
    const rows = (message.reply_markup && message.reply_markup.inline_keyboard) || [];
    if (!rows.length) return null;
    const keyboard = el("div", { class: "inline-keyboard", "data-testid": "inline-keyboard" });
    for (const row of rows) {
      const line = el("div", { class: "kb-row" });
      for (const button of row) line.append(inlineButton(message, button));
      keyboard.append(line);
    }
    return keyboard;
  }

  function inlineButton(message, button) {
    const common = { class: "kb-button", "data-testid": "inline-button" };
    if (button.url) {
      return el("a", { ...common, href: safeHref(button.url) || "#", target: "_blank", rel: "noopener noreferrer",
        "data-url": button.url }, button.text, el("span", { class: "kb-corner", text: "↗", "aria-hidden": "true" }));
    }
    if (button.callback_data !== undefined) {
      const node = el("button", { ...common, type: "button", "data-callback-data": button.callback_data }, button.text);
      node.addEventListener("click", () => press(message.id, button.callback_data, node));
      return node;
    }
    if (button.copy_text) {
      const node = el("button", { ...common, type: "button" }, button.text);
      node.addEventListener("click", () => navigator.clipboard && navigator.clipboard.writeText(button.copy_text.text));
      return node;
    }
    return el("button", { ...common, type: "button", disabled: true, title: "not simulated" }, button.text);
  }

  function timeOf(seconds) {
    return new Date(seconds * 1000).toLocaleTimeString(htmlLang(), { hour: "2-digit", minute: "2-digit" });
  }

  function renderMessage(message) {
    const id = `msg-${message.id}`;
    const node = el("div", {
      id,
      class: `message ${message.from}`,
      "data-testid": "message",
      "data-from": message.from,
      "data-message-id": message.id,
      "data-edits": message.edits,
    });
    const bubble = el("div", { class: "bubble" });
    if (message.reply_to) {
      bubble.append(el("div", { class: "reply-quote", text: message.reply_to.text || `#${message.reply_to.id}` }));
    }
    if (message.photo) {
      bubble.append(el("img", {
        class: "photo", src: `/demo/api/file/${encodeURIComponent(message.photo.file_id)}`, alt: "",
        width: message.photo.width, height: message.photo.height, loading: "lazy",
      }));
    }
    if (message.location) bubble.append(placeCard(message));
    if (message.html) {
      const text = el("div", { class: "text", "data-testid": "message-text" });
      text.append(richText(message.html));
      bubble.append(text);
    }
    const meta = el("span", { class: "meta" });
    if (message.edits) meta.append(el("span", { class: "edited", text: t("edited") }));
    meta.append(el("time", { text: timeOf(message.date) }));
    bubble.append(meta);
    node.append(bubble);
    const keyboard = inlineKeyboard(message);
    if (keyboard) node.append(keyboard);

    const list = $("messages");
    const existing = document.getElementById(id);
    if (existing) {
      existing.replaceWith(node);
      return;
    }
    // Keep message_id order even if an older message arrives late.
    const later = [...list.querySelectorAll("[data-testid=message]")].find((m) => Number(m.dataset.messageId) > message.id);
    list.insertBefore(node, later || null);
  }

  function scrollToEnd(force) {
    const list = $("messages");
    const nearEnd = list.scrollHeight - list.scrollTop - list.clientHeight < 160;
    if (force || nearEnd) list.scrollTop = list.scrollHeight;
  }

  // ---------------------------------------------------------------- reply keyboard, menu, intro

  function renderReplyKeyboard() {
    const box = $("reply-keyboard");
    box.replaceChildren();
    const markup = state.replyKeyboard;
    $("keyboard-toggle").hidden = !markup || !state.keyboardHidden;
    box.hidden = !markup || state.keyboardHidden;
    if (!markup) return;
    if (markup.input_field_placeholder) $("text-input").placeholder = markup.input_field_placeholder;
    for (const row of markup.keyboard) {
      const line = el("div", { class: "kb-row" });
      for (const button of row) {
        const node = el("button", {
          type: "button",
          class: `kb-button reply${button.request_location ? " location" : ""}`,
          "data-testid": "reply-button",
          "data-request-location": button.request_location ? "true" : null,
        }, button.request_location ? pinIcon("button-pin") : null, button.text);
        node.addEventListener("click", () => {
          if (markup.one_time_keyboard) {
            state.keyboardHidden = true;
            renderReplyKeyboard();
          }
          if (button.request_location) openSharePanel();
          else sendText(button.text);
        });
        line.append(node);
      }
      box.append(line);
    }
  }

  function renderMenu() {
    const menu = $("menu");
    $("menu-button").hidden = state.commands.length === 0;
    menu.replaceChildren(...state.commands.map((command) => {
      const item = el("button", { type: "button", class: "menu-item", "data-testid": "menu-command",
        "data-command": command.command },
      el("span", { class: "menu-command", text: `/${command.command}` }),
      el("span", { class: "menu-description", text: command.description }));
      item.addEventListener("click", () => {
        menu.hidden = true;
        sendText(`/${command.command}`);
      });
      return item;
    }));
    if (!state.commands.length) menu.hidden = true;
  }

  function renderIntro() {
    const empty = state.messages.size === 0;
    $("intro").hidden = !empty;
    $("intro-text").textContent = state.description || t("intro_default");
  }

  function applyLanguage() {
    document.documentElement.lang = htmlLang();
    for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
    if (!state.replyKeyboard || !state.replyKeyboard.input_field_placeholder) $("text-input").placeholder = t("placeholder");
    $("language").value = state.lang;
    if (state.config) renderPresets();
    for (const message of state.messages.values()) renderMessage(message);
    renderStatus();
    renderIntro();
  }

  function renderStatus() {
    const status = $("bot-status");
    const typing = Date.now() < state.typingUntil;
    status.textContent = state.offline ? t("offline") : typing ? t("typing") : t("bot");
    status.classList.toggle("typing", typing && !state.offline);
    status.classList.toggle("offline", state.offline);
  }

  // ---------------------------------------------------------------- notices

  let toastTimer = 0;
  function toast(text) {
    const box = $("toast");
    box.textContent = text;
    box.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { box.hidden = true; }, 2500);
  }

  function showAlert(text) {
    $("alert-text").textContent = text;
    $("alert").hidden = false;
    $("alert-ok").focus();
  }

  function applyNotice(notice) {
    if (notice.kind === "callback_answer") {
      for (const node of document.querySelectorAll(".kb-button.pending")) node.classList.remove("pending");
      if (notice.text && notice.show_alert) showAlert(notice.text);
      else if (notice.text) toast(notice.text);
      if (notice.url) window.open(notice.url, "_blank", "noopener");
    } else if (notice.kind === "chat_action") {
      state.typingUntil = Date.now() + 5000;
      renderStatus();
      setTimeout(renderStatus, 5100);
    }
  }

  // ---------------------------------------------------------------- the long poll

  function apply(data) {
    if (data.reset) {
      state.messages.clear();
      for (const node of document.querySelectorAll("[data-testid=message]")) node.remove();
    }
    let appended = false;
    for (const message of data.messages) {
      if (!state.messages.has(message.id)) appended = true;
      if (message.from === "bot") state.typingUntil = 0;
      state.messages.set(message.id, message);
      renderMessage(message);
    }
    for (const id of data.deleted) {
      state.messages.delete(id);
      const node = document.getElementById(`msg-${id}`);
      if (node) node.remove();
    }
    for (const notice of data.notices) applyNotice(notice);
    const keyboardChanged = JSON.stringify(data.reply_keyboard) !== JSON.stringify(state.replyKeyboard);
    if (keyboardChanged) {
      state.replyKeyboard = data.reply_keyboard;
      state.keyboardHidden = false;
      if (!data.reply_keyboard) $("text-input").placeholder = t("placeholder");
      renderReplyKeyboard();
    }
    state.commands = data.commands || [];
    state.description = data.description || "";
    $("live-bar").hidden = !(data.live && data.live.active);
    if (data.language_code && data.language_code !== state.lang) {
      state.lang = data.language_code;
      applyLanguage();
    }
    renderMenu();
    renderIntro();
    renderStatus();
    state.version = data.version;
    if (appended || data.reset) scrollToEnd(data.reset);
  }

  async function poll() {
    for (;;) {
      try {
        const data = await call(`/demo/api/updates?since=${state.version}`);
        if (state.offline) {
          state.offline = false;
          renderStatus();
        }
        apply(data);
        document.body.dataset.ready = "1";
      } catch (error) {
        console.warn("updates failed", error);
        state.offline = true;
        renderStatus();
        await sleep(1000);
      }
    }
  }

  // ---------------------------------------------------------------- user actions

  async function sendText(text) {
    const trimmed = text.trim();
    if (!trimmed) return;
    try {
      await call("/demo/api/message", { text: trimmed });
    } catch (error) {
      toast(error.message);
    }
  }

  async function press(messageId, callbackData, node) {
    node.classList.add("pending");
    setTimeout(() => node.classList.remove("pending"), 10000);
    try {
      await call("/demo/api/press", { message_id: messageId, callback_data: callbackData });
    } catch (error) {
      node.classList.remove("pending");
      toast(error.message);
    }
  }

  function openSharePanel() {
    $("share-error").textContent = "";
    $("share-panel").hidden = false;
    $("menu").hidden = true;
  }

  async function sendLocation(body) {
    try {
      await call("/demo/api/location", { ...body, live: $("live-toggle").checked });
      $("share-panel").hidden = true;
      scrollToEnd(true);
    } catch (error) {
      $("share-error").textContent = error.message;
    }
  }

  function parseCoordinates(text) {
    const match = text.trim().match(/^(-?\d+(?:\.\d+)?)\s*[,，\s]\s*(-?\d+(?:\.\d+)?)$/);
    if (!match) return null;
    const latitude = Number(match[1]);
    const longitude = Number(match[2]);
    if (Math.abs(latitude) > 90 || Math.abs(longitude) > 180) return null;
    return { latitude, longitude };
  }

  function renderPresets() {
    const box = $("presets");
    box.replaceChildren(...state.config.preset_places.map((place) => {
      const node = el("button", { type: "button", class: "preset", "data-testid": "preset-place", "data-key": place.key },
        pinIcon("preset-pin"),
        el("span", { class: "preset-label", text: (place.labels || {})[state.lang] || place.label }),
        el("span", { class: "preset-coords", text: `${place.latitude.toFixed(4)}, ${place.longitude.toFixed(4)}` }));
      node.addEventListener("click", () => sendLocation({ key: place.key }));
      return node;
    }));
  }

  function wire() {
    $("composer").addEventListener("submit", (event) => {
      event.preventDefault();
      const input = $("text-input");
      const text = input.value;
      input.value = "";
      sendText(text);
      input.focus();
    });
    $("share-location").addEventListener("click", () => {
      if ($("share-panel").hidden) openSharePanel();
      else $("share-panel").hidden = true;
    });
    $("close-share").addEventListener("click", () => { $("share-panel").hidden = true; });
    $("coords-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const point = parseCoordinates($("coords").value);
      if (!point) {
        $("share-error").textContent = t("bad_coords");
        return;
      }
      sendLocation(point);
    });
    $("stop-live").addEventListener("click", () => call("/demo/api/live/stop", {}).catch((e) => toast(e.message)));
    $("keyboard-toggle").addEventListener("click", () => {
      state.keyboardHidden = false;
      renderReplyKeyboard();
    });
    $("menu-button").addEventListener("click", () => {
      $("menu").hidden = !$("menu").hidden;
      $("share-panel").hidden = true;
    });
    $("start").addEventListener("click", () => sendText("/start"));
    $("alert-ok").addEventListener("click", () => { $("alert").hidden = true; });
    $("language").addEventListener("change", async (event) => {
      state.lang = event.target.value;
      applyLanguage();
      try {
        await call("/demo/api/language", { language_code: state.lang });
      } catch (error) {
        toast(error.message);
      }
    });
  }

  async function main() {
    wire();
    for (;;) {
      try {
        state.config = await call("/demo/api/config");
        break;
      } catch (error) {
        state.offline = true;
        renderStatus();
        await sleep(1000);
      }
    }
    const config = state.config;
    state.lang = config.user.language_code;
    $("bot-name").textContent = config.bot.first_name;
    $("bot-avatar").textContent = Array.from(config.bot.first_name)[0] || "🤖";
    document.title = `${config.bot.first_name} · @${config.bot.username}`;
    $("language").replaceChildren(...config.languages.map((l) => el("option", { value: l.code, text: l.label })));
    applyLanguage();
    poll();
  }

  main();
})();
