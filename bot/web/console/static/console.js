/* The console's only script of its own: what is typed into a form is kept in this tab (sessionStorage)
   until the form is sent and answered, so a session that ended meanwhile costs a login, not the text.
   After the login the page comes back and its forms are filled again. Forms marked `data-no-draft`
   (passwords) are never kept; password and file inputs never are. */
(function () {
  "use strict";
  var PREFIX = "yizhan-draft:";
  function keyOf(form) {
    // A form's id names it best; otherwise its action and its place among the page's forms.
    var name = form.id || (form.getAttribute("action") || "") + ":" + Array.prototype.indexOf.call(document.forms, form);
    return PREFIX + location.pathname + location.search + "#" + name;
  }
  function kept(field) {
    // Hidden fields are the page's own, except a form's `base_*`: the values it showed when it was opened,
    // which a save merges against; a draft keeps them with what was typed over them.
    if (field.type === "hidden") return field.name.indexOf("base_") === 0;
    return field.name && field.name !== "csrf_token" && field.type !== "password" && field.type !== "file" &&
      field.type !== "submit" && field.type !== "button";
  }
  function save(form) {
    var values = {};
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field)) return;
      if (field.type === "checkbox" || field.type === "radio") {
        values[field.name + "=" + field.value] = field.checked;
      } else if (field.multiple && field.options) {
        values[field.name] = Array.prototype.filter.call(field.options, function (o) { return o.selected; })
          .map(function (o) { return o.value; });
      } else {
        values[field.name] = field.value;
      }
    });
    try { sessionStorage.setItem(keyOf(form), JSON.stringify(values)); } catch (e) { /* storage full or off */ }
  }
  function restore(form) {
    var raw;
    try { raw = sessionStorage.getItem(keyOf(form)); } catch (e) { return; }
    if (!raw) return;
    var values;
    try { values = JSON.parse(raw); } catch (e) { return; }
    var restored = false;
    Array.prototype.forEach.call(form.elements, function (field) {
      if (!kept(field)) return;
      if (field.type === "checkbox" || field.type === "radio") {
        var key = field.name + "=" + field.value;
        if (key in values && field.checked !== values[key]) { field.checked = values[key]; restored = true; }
      } else if (field.multiple && field.options && Array.isArray(values[field.name])) {
        Array.prototype.forEach.call(field.options, function (o) { o.selected = values[field.name].indexOf(o.value) >= 0; });
        restored = true;
      } else if (field.name in values && field.value !== values[field.name]) {
        field.value = values[field.name];
        restored = true;
      }
    });
    if (restored) form.classList.add("draft-restored");
  }
  function forget(form) {
    try { sessionStorage.removeItem(keyOf(form)); } catch (e) { /* nothing kept */ }
  }
  function eligible(form) { return form && form.tagName === "FORM" && !form.hasAttribute("data-no-draft"); }
  function setup() {
    Array.prototype.forEach.call(document.forms, function (form) { if (eligible(form)) restore(form); });
  }
  document.addEventListener("input", function (event) { if (eligible(event.target.form)) save(event.target.form); });
  document.addEventListener("change", function (event) { if (eligible(event.target.form)) save(event.target.form); });
  // After a form is sent, the next page says how it went: the login page means the session had ended
  // (the draft stays for the page the login leads back to); any other page means it was received.
  document.addEventListener("htmx:afterRequest", function (event) {
    var form = event.detail.elt && event.detail.elt.closest ? event.detail.elt.closest("form") : null;
    if (event.detail.successful && eligible(form)) {
      forget(form);
      try { sessionStorage.removeItem(PREFIX + "submitted"); } catch (e) { /* ignore */ }
    }
  });
  document.addEventListener("submit", function (event) {
    if (eligible(event.target)) {
      save(event.target);
      try { sessionStorage.setItem(PREFIX + "submitted", keyOf(event.target)); } catch (e) { /* ignore */ }
    }
  });
  function settle() {
    var submitted;
    try { submitted = sessionStorage.getItem(PREFIX + "submitted"); } catch (e) { submitted = null; }
    if (submitted) {
      try {
        if (location.pathname !== "/console/login") sessionStorage.removeItem(submitted);
        sessionStorage.removeItem(PREFIX + "submitted");
      } catch (e) { /* ignore */ }
    }
    setup();
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", settle);
  else settle();
})();
