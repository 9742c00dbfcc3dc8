// xmailnb: shows "connection lost - reload" when the server or the page's
// kernel has gone away (websocket closed, kernel gone or dead, server down).
(function () {
  "use strict";
  var WORDS = __WORDS__, PREFIX = __PREFIX__, shown = false, timer = null;
  function lang() {
    var app = document.querySelector(".xm-app");
    if (app) { for (var code in WORDS) { if (app.classList.contains(PREFIX + code)) { return code; } } }
    var nav = (navigator.language || "en").toLowerCase().split("-")[0];
    return WORDS[nav] ? nav : "en";
  }
  function kernelId() {
    var el = document.getElementById("jupyter-config-data");
    try { return el ? JSON.parse(el.textContent).kernelId : null; } catch (e) { return null; }
  }
  function show() {
    if (shown || !document.body) { return; }
    shown = true;
    var w = WORDS[lang()], bar = document.createElement("div");
    bar.className = "xm-disconnected";
    bar.setAttribute("role", "alert");
    bar.style.cssText = "position:fixed;top:0;left:0;right:0;z-index:100000;padding:12px 16px;" +
      "background:#b42318;color:#fff;font:600 15px/1.5 'Noto Sans CJK JP',system-ui,sans-serif;" +
      "display:flex;gap:16px;align-items:center;justify-content:center;box-shadow:0 2px 8px rgba(0,0,0,.25)";
    var msg = document.createElement("span");
    msg.textContent = w.message;
    var btn = document.createElement("button");
    btn.type = "button";
    btn.textContent = w.reload;
    btn.style.cssText = "font:inherit;padding:4px 14px;border:0;border-radius:4px;background:#fff;color:#b42318;cursor:pointer";
    btn.addEventListener("click", function () { window.location.reload(); });
    bar.appendChild(msg);
    bar.appendChild(btn);
    document.body.appendChild(bar);
    if (timer) { clearInterval(timer); }
  }
  function check() {
    var app = document.querySelector(".xm-app");
    if (app) { document.documentElement.lang = lang(); }
    var id = kernelId();
    if (shown || !id) { return; }
    var base = (document.body && document.body.getAttribute("data-base-url") || "/voila/").replace(/voila\/$/, "");
    fetch(base + "api/kernels/" + encodeURIComponent(id), {credentials: "same-origin", cache: "no-store"})
      .then(function (r) {
        if (!r.ok) { show(); return null; }
        return r.json();
      })
      .then(function (model) { if (model && model.execution_state === "dead") { show(); } })
      .catch(function () { show(); });
  }
  var Native = window.WebSocket;
  if (Native) {
    window.WebSocket = class extends Native {
      constructor(url, protocols) {
        if (protocols === undefined) { super(url); } else { super(url, protocols); }
        if (String(url).indexOf("/channels") >= 0) {
          this.addEventListener("close", function () { setTimeout(check, 250); });
        }
      }
    };
  }
  window.addEventListener("load", function () { timer = setInterval(check, 2000); check(); });
})();
