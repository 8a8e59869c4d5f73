/* Tickerdeck widget: live quotes inside a Shadow DOM. No framework, no eval, no inline code, no
   workers, no innerHTML (works under a strict CSP and Trusted Types); inert without a DOM (SSR). */
(function () {
  "use strict";
  if (typeof window === "undefined" || typeof document === "undefined" || !window.WebSocket) return;
  var ID = /\/widgets\/(w_[A-Za-z0-9_-]{16})\/embed\.js(?:[?#]|$)/;
  var TERMINAL = { 4400: 1, 4402: 1, 4403: 1, 4404: 1, 4429: 1 };
  var ANNOUNCE_MS = 30000;
  var TOKEN_TRIES = 5;
  var CSS = [
    ":host{all:initial!important;display:block!important;visibility:visible!important;opacity:1!important;",
    "contain:content!important;font:14px/1.4 var(--tickerdeck-font,system-ui,-apple-system,'Segoe UI',Roboto,sans-serif)!important}",
    ".w{--bg:#fff;--fg:#16181d;--muted:#667085;--line:#e4e7ec;--up:#067647;--down:#b42318;",
    "background:var(--tickerdeck-bg,var(--bg));color:var(--tickerdeck-fg,var(--fg));",
    "border:1px solid var(--tickerdeck-border,var(--line));border-radius:var(--tickerdeck-radius,8px);overflow:hidden}",
    ".dark{--bg:#111418;--fg:#f2f4f7;--muted:#98a2b3;--line:#2b3038;--up:#47cd89;--down:#f97066}",
    "table{border-collapse:collapse;width:100%}caption{text-align:left;font-weight:600;padding:8px 10px 4px}",
    "th,td{padding:4px 10px;text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}",
    "th{font-weight:500;color:var(--tickerdeck-muted,var(--muted));font-size:12px}",
    "th:first-child,td:first-child{text-align:left;font-weight:600}",
    "tbody tr{border-top:1px solid var(--tickerdeck-border,var(--line))}",
    ".up{color:var(--tickerdeck-up,var(--up))}.down{color:var(--tickerdeck-down,var(--down))}",
    ".tape{overflow:hidden;white-space:nowrap;padding:8px 0}.track{display:inline-block;padding-left:100%;",
    "animation:tdscroll linear infinite}.item{display:inline-block;margin-right:24px;font-variant-numeric:tabular-nums}",
    ".item b{margin-right:6px}@keyframes tdscroll{to{transform:translateX(-100%)}}",
    // The tape stops while pointed at or focused, or paused with its button (WCAG 2.2.2).
    ".tape:hover .track,.tape:focus .track,.paused .track{animation-play-state:paused}",
    "button{font:inherit;color:inherit;background:none;border:1px solid currentColor;border-radius:4px;padding:0 6px;cursor:pointer}",
    ":focus-visible{outline:2px solid var(--tickerdeck-fg,var(--fg));outline-offset:1px}",
    "@media (prefers-reduced-motion:reduce){.track{animation:none;padding-left:10px}.tape{white-space:normal}button{display:none}}",
    ".foot{display:flex;justify-content:space-between;gap:8px;padding:4px 10px 6px;font-size:11px;",
    "color:var(--tickerdeck-muted,var(--muted))}.msg{padding:12px 10px;color:var(--tickerdeck-muted,var(--muted))}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}",
  ].join("");

  var price = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var change = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });
  var percent = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text != null) node.textContent = text;
    return node;
  }

  function styleRoot(root) {
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS);
      root.adoptedStyleSheets = [sheet];
    } catch (e) {
      root.appendChild(el("style", null, CSS)); // older browsers (needs style-src to allow it)
    }
  }

  function Widget(host, base, id) {
    this.host = host;
    this.base = base;
    this.id = id;
    this.root = host.attachShadow({ mode: "open" });
    styleRoot(this.root);
    this.box = el("div", "w");
    this.body = el("div", "msg", "Loading quotes…");
    this.foot = el("div", "foot");
    this.live = el("div", "sr");
    this.live.setAttribute("role", "status");
    this.live.setAttribute("aria-live", "polite");
    this.box.append(this.body, this.foot, this.live);
    this.root.appendChild(this.box);
    this.quotes = {};
    this.symbols = [];
    this.cells = {};
    this.changed = {};
    this.attempt = 0;
    this.tokenFailures = 0;
    this.lastAnnounce = 0;
    this.start();
  }

  Widget.prototype.start = function () {
    this.token = null;
    this.reconnect();
  };

  Widget.prototype.reconnect = function () {
    // A renewal fails while the server is away: after an outage, fetch a token before connecting,
    // instead of being refused (4401) with the expired one and waiting another backoff.
    var self = this;
    if (this.token && Date.now() < this.renewAt) return this.connect();
    this.fetchToken(function () { self.connect(); });
  };

  Widget.prototype.fetchToken = function (then) {
    var self = this;
    clearTimeout(this.renewTimer);
    fetch(this.base + "/widgets/" + this.id + "/token/", { method: "POST", mode: "cors", credentials: "omit", cache: "no-store" })
      .then(function (response) {
        if (response.status === 403 || response.status === 404) throw { terminal: true };
        if (response.status === 429) throw { retryAfter: Number(response.headers.get("Retry-After")) || 60 };
        if (!response.ok) throw new Error("token " + response.status);
        return response.json();
      })
      .then(function (data) {
        self.token = data.token;
        self.tokenFailures = 0;
        self.renewAt = Date.now() + data.expires_in * 800;
        // Renewed before it expires, so a reconnect always has a valid one.
        self.renewTimer = setTimeout(function () { if (!self.stopped) self.fetchToken(); }, data.expires_in * 800);
        if (then) then();
      })
      .catch(function (error) {
        // 403/404, or a page whose CSP forbids the websocket: retrying would change nothing. A site
        // not in the widget's list gets no CORS header, so its refusal looks like a network error:
        // the widget says it is unavailable at once, and gives up after a few more tries.
        if (error && (error.terminal || error.name === "SecurityError")) return self.unavailable();
        if (error && error.retryAfter) return self.later(error.retryAfter, function () { self.fetchToken(then); });
        if (!then) return;
        // It had a token that the server did not refuse: the server may be away, which the websocket
        // attempt tells (and backs off from); a 4401 drops the token, so a refusal still ends here.
        if (self.token) return then();
        self.showUnavailable();
        if (++self.tokenFailures >= TOKEN_TRIES) return self.unavailable();
        self.retry(function () { self.fetchToken(then); });
      });
  };

  Widget.prototype.connect = function () {
    var self = this;
    var url = this.base.replace(/^http/, "ws") + "/ws/stock-market/?widget=" + this.id + "&token=" + encodeURIComponent(this.token);
    var socket = (this.socket = new WebSocket(url));
    socket.onmessage = function (event) {
      try { self.receive(JSON.parse(event.data)); } catch (e) { /* a frame we cannot use: skip it */ }
    };
    socket.onclose = function (event) {
      if (self.stopped || socket !== self.socket) return;
      // Too many connects from this network address (an office behind one NAT): not the plan's limit,
      // so come back once the server says there is room, spread over a few seconds.
      if (event.code === 4429 && self.rateLimited) return self.later(self.rateLimited, function () { self.reconnect(); });
      if (TERMINAL[event.code]) return self.unavailable();
      if (event.code === 4401) self.token = null; // refused: fetch a new one first
      self.retry(function () { self.reconnect(); });
    };
  };

  Widget.prototype.later = function (seconds, again) {
    var self = this;
    this.rateLimited = 0;
    setTimeout(function () { if (!self.stopped) again(); }, (seconds + Math.random() * 5) * 1000);
  };

  Widget.prototype.retry = function (again) {
    // Exponential backoff with full jitter: many viewers of a restarted server do not return at once.
    var self = this;
    var delay = Math.random() * Math.min(30000, 1000 * Math.pow(2, this.attempt++));
    setTimeout(function () { if (!self.stopped) again(); }, delay); // stopped meanwhile: stay stopped
  };

  Widget.prototype.unavailable = function () {
    this.stopped = true;
    clearTimeout(this.renewTimer);
    this.showUnavailable();
  };

  Widget.prototype.showUnavailable = function () {
    this.config = null;
    this.body.replaceWith((this.body = el("div", "msg", "Quotes unavailable")));
    this.foot.textContent = "";
  };

  Widget.prototype.receive = function (message) {
    var type = message.type;
    if (type === "error" && message.code === "rate_limited" && message.retry_after) {
      this.rateLimited = message.retry_after; // the close (4429) that follows waits this long
    } else if (type === "snapshot") {
      this.attempt = 0;
      this.config = message.widget;
      this.fresh = message.simulated ? "Simulated data" : message.delayed ? "Delayed " + message.delay_minutes + " min" : "Live";
      this.note = message.market && !message.market.open ? "Market closed" : this.fresh;
      this.quotes = {};
      this.symbols = [];
      this.add(message.quotes);
      this.render();
    } else if (type === "quotes") {
      this.add(message.quotes);
    } else if (type === "market") { // the exchange opened or closed while the widget was open
      this.note = message.market.open ? this.fresh : "Market closed";
      this.render();
    } else if (type === "widget") {
      this.config = message.widget;
      this.render();
    } else if (type === "subscribed" && message.symbols.length) {
      for (var i = 0; i < message.symbols.length; i++) this.track(message.symbols[i]);
      this.render();
    } else if (type === "unsubscribed") {
      var gone = {};
      for (var j = 0; j < message.symbols.length; j++) gone[message.symbols[j]] = 1;
      this.symbols = this.symbols.filter(function (s) { return !gone[s]; });
      this.render();
    }
  };

  Widget.prototype.track = function (symbol) {
    if (this.symbols.indexOf(symbol) < 0) this.symbols.push(symbol);
  };

  Widget.prototype.add = function (quotes) {
    var fresh = false;
    for (var i = 0; i < quotes.length; i++) {
      var quote = quotes[i];
      if (this.symbols.indexOf(quote.symbol) < 0) fresh = true;
      this.track(quote.symbol);
      this.quotes[quote.symbol] = quote;
      this.changed[quote.symbol] = quote;
      this.paint(quote.symbol);
    }
    if (fresh && this.config) this.render();
    this.announce();
  };

  Widget.prototype.render = function () {
    if (!this.config) return;
    this.box.className = "w" + (this.config.theme === "dark" ? " dark" : "");
    this.cells = {};
    var body = this.config.kind === "ticker_tape" ? this.tape() : this.table();
    this.body.replaceWith(body);
    this.body = body;
    this.foot.replaceChildren(el("span", null, this.note), el("span", null, "Tickerdeck"));
    if (this.config.kind === "ticker_tape") this.foot.insertBefore(this.pauseButton(body), this.foot.lastChild);
    for (var i = 0; i < this.symbols.length; i++) this.paint(this.symbols[i]);
  };

  Widget.prototype.table = function () {
    var table = el("table");
    table.appendChild(el("caption", null, this.config.name));
    var head = el("tr");
    ["Symbol", "Price", "Change", "%"].forEach(function (name) {
      var th = el("th");
      if (name === "%") th.appendChild(el("span", "sr", "Change in "));
      th.appendChild(document.createTextNode(name));
      th.scope = "col";
      head.appendChild(th);
    });
    table.appendChild(el("thead")).appendChild(head);
    var rows = table.appendChild(el("tbody"));
    for (var i = 0; i < this.symbols.length; i++) {
      var row = rows.appendChild(el("tr"));
      var th = row.appendChild(el("th", null, this.symbols[i]));
      th.scope = "row";
      this.cells[this.symbols[i]] = [row.appendChild(el("td", null, "–")), row.appendChild(el("td")), row.appendChild(el("td"))];
    }
    return table;
  };

  Widget.prototype.tape = function () {
    // A marquee (ARIA's role for a ticker), focusable so that keyboards can stop it too.
    var tape = el("div", this.paused ? "tape paused" : "tape");
    tape.setAttribute("role", "marquee");
    tape.setAttribute("aria-label", this.config.name);
    tape.tabIndex = 0;
    var track = tape.appendChild(el("div", "track"));
    track.style.animationDuration = Math.max(10, this.symbols.length * 4) + "s";
    for (var i = 0; i < this.symbols.length; i++) {
      var item = track.appendChild(el("span", "item"));
      item.appendChild(el("b", null, this.symbols[i]));
      this.cells[this.symbols[i]] = [item.appendChild(el("span", null, "–")), null, item.appendChild(el("span"))];
      item.appendChild(document.createTextNode(" "));
    }
    return tape;
  };

  Widget.prototype.pauseButton = function (tape) {
    var self = this;
    var button = el("button", null, "Pause");
    button.type = "button";
    button.setAttribute("aria-pressed", String(!!this.paused));
    button.addEventListener("click", function () {
      self.paused = tape.classList.toggle("paused");
      button.setAttribute("aria-pressed", String(self.paused));
    });
    return button;
  };

  Widget.prototype.paint = function (symbol) {
    var cells = this.cells[symbol];
    var quote = this.quotes[symbol];
    if (!cells || !quote) return;
    var direction = quote.change > 0 ? "up" : quote.change < 0 ? "down" : "";
    cells[0].textContent = price.format(quote.price);
    if (cells[1]) {
      cells[1].textContent = change.format(quote.change);
      cells[1].className = direction;
    }
    cells[2].textContent = " " + percent.format(quote.change_pct / 100);
    cells[2].className = direction;
  };

  Widget.prototype.announce = function () {
    // A polite live region, at most every 30 seconds, so screen readers are not flooded.
    var now = Date.now();
    if (now - this.lastAnnounce < ANNOUNCE_MS) return;
    var parts = [];
    for (var symbol in this.changed) {
      var quote = this.changed[symbol];
      parts.push(symbol + " " + price.format(quote.price) + " " + percent.format(quote.change_pct / 100));
      if (parts.length === 3) break;
    }
    if (!parts.length) return;
    this.changed = {};
    this.lastAnnounce = now;
    this.live.textContent = parts.join(", ");
  };

  function boot(script) {
    var match = script && ID.exec(script.src);
    if (!match) return;
    var base = script.src.slice(0, script.src.indexOf("/widgets/"));
    var hosts = document.querySelectorAll('[data-tickerdeck-widget="' + match[1] + '"]');
    for (var i = 0; i < hosts.length; i++) {
      if (!hosts[i].shadowRoot) new Widget(hosts[i], base, match[1]);
    }
  }

  function bootAll() {
    var scripts = document.querySelectorAll('script[src*="/widgets/w_"]');
    for (var i = 0; i < scripts.length; i++) boot(scripts[i]);
  }

  try {
    var current = document.currentScript;
    if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", current ? function () { boot(current); } : bootAll);
    else if (current) boot(current);
    else bootAll();
  } catch (e) { /* never break the host page */ }
})();
