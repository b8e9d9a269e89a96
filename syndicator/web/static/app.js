/* syndicator admin page: live updates and in-place actions. No framework, no inline
   script (the Content-Security-Policy forbids it). */
(function () {
  "use strict";

  var csrf = function () {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  };

  function flash(kind, message) {
    var area = document.getElementById("flash");
    if (!area) return;
    var div = document.createElement("div");
    div.className = "flash " + kind;
    div.textContent = message; // text, never HTML
    area.replaceChildren(div);
  }

  // Refetch this page and swap every [data-live] region by id: rows update in place.
  var pending = null, running = false, again = false;
  function refresh() {
    if (running) { again = true; return Promise.resolve(); }
    running = true;
    return fetch(window.location.href, {
      headers: { "X-Live": "1", "Accept": "text/html" },
      credentials: "same-origin",
      cache: "no-store"
    }).then(function (resp) {
      if (resp.redirected && resp.url.indexOf("/login") !== -1) {
        window.location.reload(); // the session ended: show the login form
        return;
      }
      if (!resp.ok) return;
      return resp.text().then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live][id]").forEach(function (old) {
          var fresh = doc.getElementById(old.id);
          if (fresh && fresh.innerHTML !== old.innerHTML) {
            old.replaceWith(document.importNode(fresh, true));
          }
        });
        var token = doc.querySelector('meta[name="csrf-token"]');
        var mine = document.querySelector('meta[name="csrf-token"]');
        if (token && mine) mine.setAttribute("content", token.getAttribute("content"));
        document.dispatchEvent(new CustomEvent("syndicator:refreshed"));
      });
    }).catch(function () { /* offline for a moment: the next event retries */ })
      .finally(function () {
        running = false;
        if (again) { again = false; refresh(); }
      });
  }
  function soon() {
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () { pending = null; refresh(); }, 150);
  }

  function connect() {
    var url = document.body.getAttribute("data-events");
    var dot = document.getElementById("live");
    if (!url || !window.EventSource) return;
    var es = new EventSource(url);
    es.addEventListener("hello", function () { if (dot) dot.classList.add("on"); });
    es.addEventListener("change", soon);
    es.onerror = function () { if (dot) dot.classList.remove("on"); };
    es.onopen = function () { if (dot) dot.classList.add("on"); };
  }

  function showPreviews(out, rows) {
    out.replaceChildren();
    rows.forEach(function (r) {
      var box = document.createElement("div");
      box.className = "preview";
      var h = document.createElement("h3");
      h.textContent = r.channel + " ";
      var n = document.createElement("span");
      n.className = r.fits ? "ok" : "bad";
      n.textContent = r.length + "/" + r.limit + (r.fits ? "" : " too long");
      h.appendChild(n);
      var pre = document.createElement("pre");
      pre.className = "text";
      pre.textContent = r.text;
      box.append(h, pre);
      out.appendChild(box);
    });
    if (!rows.length) out.textContent = "No enabled channel.";
  }

  // Forms marked data-async post with fetch and update the page without a reload.
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.hasAttribute("data-async")) return;
    var button = ev.submitter || null;
    var question = (button && button.getAttribute("data-confirm")) || form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { ev.preventDefault(); return; }
    ev.preventDefault();
    var action = (button && button.getAttribute("formaction")) || form.getAttribute("action");
    var body = new FormData(form);
    body.set("csrf_token", csrf());
    // the button that submitted counts too (e.g. "Save and approve")
    if (button && button.name) body.set(button.name, button.value);
    if (button) button.disabled = true;
    fetch(action, {
      method: "POST",
      body: body,
      headers: { "Accept": "application/json", "X-CSRF-Token": csrf() },
      credentials: "same-origin"
    }).then(function (resp) {
      return resp.json().catch(function () { return { error: "HTTP " + resp.status }; })
        .then(function (data) {
          if (!resp.ok) { flash("error", data.error || ("HTTP " + resp.status)); return; }
          if (data.previews) {
            var out = document.getElementById("preview-out");
            if (out) showPreviews(out, data.previews);
            return;
          }
          flash("ok", data.message || "Done.");
          return refresh();
        });
    }).catch(function () {
      flash("error", "The server did not answer; try again.");
    }).finally(function () {
      if (button && button.isConnected) button.disabled = false;
    });
  });

  document.addEventListener("DOMContentLoaded", connect);
})();
