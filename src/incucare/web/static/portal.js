/* Portal report form: show matching self-help articles while the customer types (deflection).
   Progressive enhancement only: without this file the form still works through its "check self-help
   first" button. The server renders the suggestions (escaped HTML); this script only fetches and inserts
   them, and remembers which articles the customer opened in hidden "opened_articles" fields. */
(function () {
  "use strict";
  var form = document.querySelector("[data-portal-form]");
  if (!form) { return; }
  var box = form.querySelector("[data-deflection]");
  var text = form.querySelector("textarea[name=description]");
  var preview = form.querySelector("[data-preview]");
  if (!box || !text || !window.fetch) { return; }
  if (preview) { preview.hidden = true; }

  var DELAY_MS = 350;
  var MAX_QUERY = 500;  /* the start of a report names the fault; a long URL would be refused */
  var timer = null;
  var latest = 0;
  var shown = box.children.length ? text.value.trim() : "";
  var opened = {};

  function markOpened(id) {
    if (!id || opened[id]) { return; }
    opened[id] = true;
    var input = document.createElement("input");
    input.type = "hidden";
    input.name = "opened_articles";
    input.value = id;
    form.appendChild(input);
  }

  function linksInNewTab() {
    /* an article's cross-references must not navigate away from the half-filled form */
    var links = box.querySelectorAll("a[href]");
    for (var i = 0; i < links.length; i++) {
      links[i].target = "_blank";
      links[i].rel = "noopener";
    }
  }

  function refresh() {
    var q = text.value.trim();
    if (q === shown) { return; }
    shown = q;
    var mine = ++latest;
    if (q.length < 2) { box.innerHTML = ""; return; }
    var url = box.getAttribute("data-suggest-url") + "?" + new URLSearchParams({ q: q.slice(0, MAX_QUERY) });
    fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (r) { return r.ok && !r.redirected ? r.text() : null; })
      .then(function (html) {
        if (html !== null && mine === latest) { box.innerHTML = html; linksInNewTab(); }
      })
      .catch(function () { /* offline or server busy: the form still submits normally */ });
  }

  text.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(refresh, DELAY_MS);
  });
  box.addEventListener("toggle", function (ev) {
    var d = ev.target;
    if (d.open && d.getAttribute("data-article")) { markOpened(d.getAttribute("data-article")); }
  }, true);
  box.addEventListener("click", function (ev) {
    var link = ev.target.closest ? ev.target.closest("a[data-article]") : null;
    if (link) { markOpened(link.getAttribute("data-article")); }
  });
  linksInNewTab();
  if (text.value.trim() && !box.children.length) { refresh(); }
})();
