// Terminals in the browser: xterm.js on a websocket to /ws/terminals/... (terminals/consumers.py).
// Every element with data-terminal becomes one terminal. The session id the server gives is
// kept in this tab's sessionStorage, so a reload or a dropped connection rejoins the same
// shell (within the server's grace period); another tab opens its own shell. A box with
// data-manual connects only when its "open" button is clicked.
(function () {
  "use strict";
  var terminals = [];
  window.filrougeTerminals = terminals;

  // xterm's DOM renderer writes its theme colours and the cell sizes into <style> elements,
  // which the page's Content-Security-Policy (style-src 'self') refuses: the text then took
  // the page's dark ink on the dark screen. The same rules, copied into constructed style
  // sheets (CSSOM, which the policy allows), apply; an observer keeps them in step when
  // xterm rewrites them (a resize, a font that loads late).
  function mirrorStyles(root) {
    if (!("adoptedStyleSheets" in document) || typeof CSSStyleSheet === "undefined") { return; }
    var sheets = new Map();
    function sync() {
      root.querySelectorAll("style").forEach(function (style) {
        var sheet = sheets.get(style);
        if (!sheet) {
          sheet = new CSSStyleSheet();
          sheets.set(style, sheet);
          document.adoptedStyleSheets = document.adoptedStyleSheets.concat([sheet]);
        }
        if (sheet.filrougeText !== style.textContent) {
          sheet.replaceSync(style.textContent);
          sheet.filrougeText = style.textContent;
        }
      });
    }
    sync();
    new MutationObserver(sync).observe(root, { childList: true, subtree: true, characterData: true });
  }

  function Box(element) {
    this.element = element;
    this.screenElement = element.querySelector(".terminal-screen");
    this.statusElement = element.querySelector(".terminal-status");
    this.path = element.dataset.ws;
    this.storageKey = element.dataset.storageKey || "";
    this.readonly = element.dataset.readonly === "1";
    this.sessionId = this.storageKey ? window.sessionStorage.getItem(this.storageKey) : null;
    this.finished = false;
    this.retries = 0;
    this.term = new window.Terminal({
      cursorBlink: !this.readonly, disableStdin: this.readonly, scrollback: 5000, allowProposedApi: false,
      fontFamily: "ui-monospace, 'DejaVu Sans Mono', Menlo, Consolas, monospace", fontSize: 14,
      theme: { background: "#1e1f22", foreground: "#e6e6e6" }
    });
    this.fit = new window.FitAddon.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.screenElement);
    mirrorStyles(this.screenElement);
    this.fitNow();
    var box = this;
    this.term.attachCustomKeyEventHandler(function (event) { return box.clipboardKeys(event); });
    this.term.onData(function (data) { box.send({ type: "input", data: data }); });
    this.term.onResize(function (size) { box.send({ type: "resize", cols: size.cols, rows: size.rows }); });
    var pending = null;
    window.addEventListener("resize", function () {
      window.clearTimeout(pending);
      pending = window.setTimeout(function () { box.fitNow(); }, 100);
    });
    // data-manual (a teacher on a student's lab page): no shell until the button asks for one.
    this.openButton = element.querySelector(".terminal-open");
    if (element.dataset.manual === "1" && this.openButton) {
      this.status("idle");
      this.openButton.addEventListener("click", function () { box.openOnRequest(); });
    } else {
      this.connect();
    }
  }

  Box.prototype.openOnRequest = function () {
    this.openButton.hidden = true;
    this.finished = false;
    this.retries = 0;
    this.term.reset();
    this.connect();
  };

  Box.prototype.status = function (key, extra) {
    var text = this.element.dataset["msg" + key.charAt(0).toUpperCase() + key.slice(1)] || key;
    this.statusElement.textContent = extra ? text + ": " + extra : text;
    this.element.dataset.state = key;
  };

  Box.prototype.fitNow = function () {
    try { this.fit.fit(); } catch (error) { /* not visible yet */ }
  };

  Box.prototype.url = function () {
    var scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    var query = "cols=" + this.term.cols + "&rows=" + this.term.rows;
    if (this.sessionId && !this.readonly) { query += "&session=" + encodeURIComponent(this.sessionId); }
    return scheme + "//" + window.location.host + this.path + (this.path.indexOf("?") >= 0 ? "&" : "?") + query;
  };

  Box.prototype.connect = function () {
    var box = this;
    var opened = false;
    this.status(this.retries ? "reconnecting" : "connecting");
    var socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onopen = function () { opened = true; };
    socket.onmessage = function (event) {
      var message = JSON.parse(event.data);
      if (message.type === "output") {
        if (message.replay) { box.term.reset(); }
        box.term.write(message.data);
      } else if (message.type === "session") {
        box.retries = 0;
        box.sessionId = message.id;
        box.element.dataset.session = message.id;
        if (box.storageKey) { window.sessionStorage.setItem(box.storageKey, message.id); }
        box.status(message.readonly ? "watching" : "connected");
        box.send({ type: "resize", cols: box.term.cols, rows: box.term.rows });
      } else if (message.type === "ended" || message.type === "error") {
        box.finish(message.message);
      }
    };
    socket.onclose = function () {
      if (box.socket !== socket || box.finished) { return; }
      if (!opened) {
        // The handshake was refused (403) or the server is unreachable.
        if (box.retries === 0) { box.finish(null, "refused"); return; }
      }
      box.retries += 1;
      if (box.retries > 20) { box.finish(null, "gone"); return; }
      box.status("reconnecting");
      window.setTimeout(function () { box.connect(); }, Math.min(500 * box.retries, 3000));
    };
  };

  Box.prototype.finish = function (message, key) {
    this.finished = true;
    if (this.storageKey) { window.sessionStorage.removeItem(this.storageKey); }
    this.status(key || "ended", message || "");
    if (message) { this.term.write("\r\n\x1b[7m " + message + " \x1b[0m\r\n"); }
    if (this.socket && this.socket.readyState <= 1) { this.socket.close(); }
    if (this.openButton) { this.openButton.hidden = false; }
  };

  Box.prototype.send = function (message) {
    if (this.readonly && message.type === "input") { return; }
    if (this.socket && this.socket.readyState === 1) { this.socket.send(JSON.stringify(message)); }
  };

  // Ctrl+Shift+C copies the selection, Ctrl+Shift+V pastes (Ctrl+C stays the shell's interrupt).
  Box.prototype.clipboardKeys = function (event) {
    if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey) { return true; }
    var key = event.key.toLowerCase();
    var term = this.term;
    if (key === "c" && term.hasSelection() && navigator.clipboard) {
      navigator.clipboard.writeText(term.getSelection());
      return false;
    }
    if (key === "v" && navigator.clipboard && navigator.clipboard.readText) {
      navigator.clipboard.readText().then(function (text) { term.paste(text); });
      return false;
    }
    return true;
  };

  // The visible screen as text, one string per row (used by people's scripts and by the tests).
  Box.prototype.screenText = function () {
    var buffer = this.term.buffer.active;
    var lines = [];
    for (var i = 0; i < buffer.length; i += 1) {
      var line = buffer.getLine(i);
      lines.push(line ? line.translateToString(true) : "");
    }
    return lines.join("\n");
  };

  // A teacher's view of a student's lab page polls the student's live terminals into the
  // hidden #lab-watch-poll (labs/partials/watch_terminals.html): a session not shown yet moves
  // into #lab-watch-list and is watched; those already shown keep their box. Boxes stay in
  // page order in window.filrougeTerminals.
  function attachNewWatches(poll) {
    var list = document.getElementById("lab-watch-list");
    if (!list) { return; }
    var shown = {};
    list.querySelectorAll(".lab-watch[data-watch-session]").forEach(function (watch) { shown[watch.dataset.watchSession] = true; });
    var added = false;
    poll.querySelectorAll(".lab-watch[data-watch-session]").forEach(function (watch) {
      var element = watch.querySelector("[data-terminal]");
      if (shown[watch.dataset.watchSession] || !element) { return; }
      shown[watch.dataset.watchSession] = true;
      list.appendChild(watch);
      terminals.push(new Box(element));
      added = true;
    });
    if (!added) { return; }
    var empty = document.getElementById("no-live-terminal");
    if (empty) { empty.remove(); }
    terminals.sort(function (a, b) {
      return a.element.compareDocumentPosition(b.element) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
    });
  }

  document.addEventListener("htmx:afterSettle", function (event) {
    var target = event.detail && event.detail.target;
    if (target && target.id === "lab-watch-poll") { attachNewWatches(target); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    var elements = document.querySelectorAll("[data-terminal]");
    for (var i = 0; i < elements.length; i += 1) { terminals.push(new Box(elements[i])); }
  });
})();
