// xmailnb: the page's side of the door, and "connection lost - reload".
//
// The browser key: the login sends it in the address's fragment (never sent
// to any server); it is kept in this origin's localStorage (other ports of
// 127.0.0.1 are other origins) and sent with the page's own requests: a
// header on fetch, a parameter on the kernel's websockets.  The login
// cookie alone opens nothing.  The address bar loses the key and the
// one-time page ticket at once.
//
// The banner shows when the server or the page's kernel has gone away
// (websocket closed, kernel gone or dead, server down).
(function () {
  "use strict";
  var WORDS = __WORDS__, PREFIX = __PREFIX__, shown = false, timer = null;
  var KEY_NAME = __KEY_NAME__, KEY_HEADER = __KEY_HEADER__, KEY_PARAM = __KEY_PARAM__;
  var TICKET_PARAM = __TICKET_PARAM__, KEY = null;
  var found = new RegExp("(?:^#|&)" + KEY_PARAM + "=([A-Za-z0-9_-]+)").exec(window.location.hash);
  if (found) {
    KEY = found[1];
    try { window.localStorage.setItem(KEY_NAME, KEY); } catch (e) { /* this page keeps it */ }
  } else {
    try { KEY = window.localStorage.getItem(KEY_NAME); } catch (e) { KEY = null; }
  }
  try {
    var here = new URL(window.location.href);
    if (found || here.searchParams.has(TICKET_PARAM)) {
      here.hash = "";
      here.searchParams.delete(TICKET_PARAM);
      window.history.replaceState(window.history.state, "", here.pathname + here.search);
    }
  } catch (e) { /* an old browser: the address keeps a used ticket */ }
  // The newest key of this browser (a later login in another tab replaces
  // the cookie and the stored key together).
  function key() {
    try { return window.localStorage.getItem(KEY_NAME) || KEY; } catch (e) { return KEY; }
  }
  function ours(url) {
    try { return new URL(String(url), window.location.href).host === window.location.host; } catch (e) { return false; }
  }
  var nativeFetch = window.fetch;
  if (nativeFetch && KEY) {
    window.fetch = function (input, init) {
      var url = (typeof input === "string" || input instanceof URL) ? input : input.url;
      if (ours(url)) {
        init = Object.assign({}, init || {});
        var headers = new Headers(init.headers || (input instanceof Request ? input.headers : undefined));
        headers.set(KEY_HEADER, key());
        init.headers = headers;
      }
      return nativeFetch.call(this, input, init);
    };
  }
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
        if (KEY && ours(url)) {
          url = String(url) + (String(url).indexOf("?") >= 0 ? "&" : "?") + KEY_PARAM + "=" + encodeURIComponent(key());
        }
        if (protocols === undefined) { super(url); } else { super(url, protocols); }
        if (String(url).indexOf("/channels") >= 0) {
          this.addEventListener("close", function () { setTimeout(check, 250); });
        }
      }
    };
  }
  window.addEventListener("load", function () { timer = setInterval(check, 2000); check(); });
})();
