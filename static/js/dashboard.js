// Tickerdeck live dashboard: one websocket per page, quotes into the table, reconnect with backoff.
(function () {
  "use strict";

  const table = document.getElementById("quotes");
  if (!table) return; // nothing to stream: the page shows a neutral badge and how to add symbols
  const badge = document.getElementById("stream-badge");
  const problem = document.getElementById("stream-problem");
  const notice = document.getElementById("stream-notice");
  const alertNotice = document.getElementById("alert-notice");
  const announcer = document.getElementById("quotes-announcer");
  const changeToggle = document.getElementById("change-toggle");
  const changeHeader = document.getElementById("change-header");
  const body = table.querySelector("tbody");
  // A blank row to copy when an edit of the watchlist adds a symbol (the first row, emptied).
  const blank = body.querySelector("tr[data-symbol]").cloneNode(true);
  blank.querySelectorAll("td").forEach((td) => { if (!td.classList.contains("col-chart")) td.textContent = "—"; });
  blank.querySelector(".spark polyline").setAttribute("points", "");
  const UNSERVED = {
    symbol_limit: "Beyond the number of symbols the market data plan allows.",
    not_entitled: "The market data plan does not include this symbol.",
    unknown_symbol: "The market data source has no data for this symbol.",
  };
  const SPARK_POINTS = 390; // the intraday sparkline: a trading day of minutes

  // Numbers and times in the viewer's locale; times in the exchange's zone, which the page names.
  const TIME_ZONE = table.dataset.timeZone;
  const ZONE_NAME = table.dataset.timeZoneName;
  const PRICE = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2 });
  const CHANGE = new Intl.NumberFormat(undefined, { minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });
  const PERCENT = new Intl.NumberFormat(undefined, { style: "percent", minimumFractionDigits: 2, maximumFractionDigits: 2, signDisplay: "exceptZero" });
  const VOLUME = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const TIME = new Intl.DateTimeFormat(undefined, { timeStyle: "medium", timeZone: TIME_ZONE });
  const MOMENT = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short", timeZone: TIME_ZONE });
  const moment = (ms) => MOMENT.format(ms) + " (" + ZONE_NAME + ")";

  // Absolute or % change, remembered per browser.
  const CHANGE_KEY = "tickerdeck.dashboard.change";
  let percent = stored(CHANGE_KEY) === "percent";

  function stored(key) {
    try { return window.localStorage.getItem(key); } catch { return null; } // storage may be refused
  }

  function store(key, value) {
    try { window.localStorage.setItem(key, value); } catch { /* remembered for this page only */ }
  }

  const rows = new Map();

  function rowOf(tr, points) {
    const last = points[points.length - 1];
    const cell = (name) => tr.querySelector("." + name);
    return {
      tr,
      cells: { price: cell("price"), change: cell("change"), bid: cell("bid"), ask: cell("ask"), volume: cell("volume"), time: cell("time") },
      polyline: tr.querySelector(".spark polyline"),
      prices: points.map((p) => p[1]),
      minute: last ? Math.floor(last[0] / 60000) : null,
      last: null, // the last price shown (for the flash)
      quote: null, // the last quote (to redraw the change column when the toggle flips)
      spoken: null, // the price the live region last said (what a move is measured from)
    };
  }

  // The intraday sparkline: one point a minute, starting from the feed's history ("ts:price ts:price …").
  body.querySelectorAll("tr[data-symbol]").forEach((tr) => {
    const points = (tr.dataset.history || "").split(" ").filter(Boolean).map((p) => p.split(":").map(Number));
    const row = rowOf(tr, points);
    rows.set(tr.dataset.symbol, row);
    drawSpark(row);
  });

  // An edit of the watchlist reaches the open socket: new symbols get a row, removed ones lose theirs.
  function addRow(symbol) {
    if (rows.has(symbol)) return;
    const tr = blank.cloneNode(true);
    tr.dataset.symbol = symbol;
    tr.querySelector("th").textContent = symbol;
    tr.querySelector(".col-name").textContent = "";
    body.appendChild(tr);
    rows.set(symbol, rowOf(tr, []));
  }

  function removeRow(symbol) {
    const row = rows.get(symbol);
    if (!row) return;
    row.tr.remove();
    rows.delete(symbol);
  }

  const BACKOFF_MIN_MS = 500;
  const BACKOFF_MAX_MS = 30000;
  // Close codes after which retrying cannot help (SPEC "Close codes"): what to tell the person.
  const FINAL = {
    4400: { text: "The dashboard sent a request the server could not understand.", link: null },
    4401: { text: "Your session has ended. Log in again to keep watching.", link: ["Log in", table.dataset.loginUrl] },
    4402: { text: "Your organisation's subscription is inactive. An owner or admin can settle it.", link: ["Go to billing", table.dataset.billingUrl] },
    4403: { text: "You no longer have access to this organisation's quotes.", link: null },
    4404: { text: "There is no organisation at this address.", link: null },
    4429: { text: "Your plan's limit is reached.", link: ["Upgrade your plan", table.dataset.billingUrl] },
  };

  let attempt = 0;
  let lastError = null;
  let socket = null;

  function setBadge(kind, text) {
    badge.className = "badge badge--" + kind;
    badge.textContent = text;
  }

  function show(element, text, link) {
    element.textContent = text + " ";
    if (link && link[1]) {
      const a = document.createElement("a");
      a.href = link[1];
      a.textContent = link[0];
      element.appendChild(a);
    }
    element.hidden = false;
  }

  function changeText(quote) {
    return percent ? PERCENT.format(quote.change_pct / 100) : CHANGE.format(quote.change);
  }

  function drawSpark(row) {
    const prices = row.prices;
    if (prices.length < 2) return;
    const low = Math.min(...prices), high = Math.max(...prices);
    const span = high - low || 1;
    const step = 100 / (SPARK_POINTS - 1);
    const offset = SPARK_POINTS - prices.length;
    const points = prices.map((p, i) => ((offset + i) * step).toFixed(1) + "," + (22 - ((p - low) / span) * 20).toFixed(1));
    row.polyline.setAttribute("points", points.join(" "));
  }

  function apply(quote) {
    const row = rows.get(quote.symbol);
    if (!row) return;
    const cells = row.cells;
    // A row the source no longer serves keeps saying so: a quote sent just before that notice (quotes
    // and notices travel apart) is kept for when the symbol is served again, not shown over it.
    const unserved = row.tr.classList.contains("row--unserved");
    if (!unserved && row.last !== null && quote.price !== row.last) {
      cells.price.classList.remove("flash-up", "flash-down");
      void cells.price.offsetWidth; // restart the animation
      cells.price.classList.add(quote.price > row.last ? "flash-up" : "flash-down");
    }
    row.last = quote.price;
    row.quote = quote;
    if (row.spoken === null) row.spoken = quote.price; // moves are counted from the first price seen
    if (!unserved) cells.price.textContent = PRICE.format(quote.price);
    row.tr.dataset.direction = quote.change > 0 ? "up" : quote.change < 0 ? "down" : "flat";
    cells.change.textContent = changeText(quote);
    cells.bid.textContent = PRICE.format(quote.bid);
    cells.ask.textContent = PRICE.format(quote.ask);
    cells.volume.textContent = VOLUME.format(quote.volume);
    cells.time.textContent = TIME.format(quote.ts);
    row.tr.classList.remove("row--stopped");
    const minute = Math.floor(quote.ts / 60000);
    if (minute === row.minute) {
      row.prices[row.prices.length - 1] = quote.price; // the current minute's point follows the price
    } else if (row.minute === null || minute > row.minute) {
      row.prices.push(quote.price);
      row.minute = minute;
      if (row.prices.length > SPARK_POINTS) row.prices.shift();
    }
    drawSpark(row);
  }

  // The change column: absolute or %, as the toggle (aria-pressed) says.
  function showChangeMode() {
    changeToggle.setAttribute("aria-pressed", String(percent));
    changeHeader.textContent = percent ? "Change %" : "Change";
    rows.forEach((row) => { if (row.quote) row.cells.change.textContent = changeText(row.quote); });
  }

  changeToggle.addEventListener("click", () => {
    percent = !percent;
    store(CHANGE_KEY, percent ? "percent" : "absolute");
    showChangeMode();
  });
  showChangeMode();
  document.getElementById("quotes-tools").hidden = false;

  // Screen readers: one polite summary of the biggest moves at most every ANNOUNCE_MS, never a
  // message per tick (prices change many times a second). A move counts from the price last said.
  const ANNOUNCE_MS = 5000;
  const ANNOUNCE_SYMBOLS = 3;
  let announced = 0;
  let announceTimer = null;

  function announceSoon() {
    if (announceTimer === null) announceTimer = window.setTimeout(announce, Math.max(0, announced + ANNOUNCE_MS - Date.now()));
  }

  function announce() {
    announceTimer = null;
    const moved = [];
    rows.forEach((row, symbol) => {
      if (row.quote && row.spoken && row.quote.price !== row.spoken) {
        moved.push({ symbol, row, size: Math.abs(row.quote.price - row.spoken) / row.spoken });
      }
    });
    if (!moved.length) return;
    moved.sort((a, b) => b.size - a.size);
    announcer.textContent = moved.slice(0, ANNOUNCE_SYMBOLS).map(({ symbol, row }) => {
      row.spoken = row.quote.price;
      return symbol + " " + PRICE.format(row.quote.price) + ", " + changeText(row.quote) + " today";
    }).join("; ") + ".";
    announced = Date.now();
  }

  // What the badge says about the data: its freshness, and that it is made up when it is; while the
  // exchange is closed, that it is (the snapshot, then `market` messages, say when it opens or closes).
  let simulated = false;
  let freshness = { delayed: false, minutes: 0 };
  let marketClosed = false;
  function setFreshness(delayed, delayMinutes) {
    freshness = { delayed: delayed, minutes: delayMinutes };
    if (marketClosed) return setBadge("closed", "Market closed");
    const text = delayed ? "Delayed by " + delayMinutes + " min" : "Live";
    setBadge(delayed ? "delayed" : "live", simulated ? "Simulated · " + text.toLowerCase() : text);
  }

  function setMarket(market) {
    const closed = Boolean(market && !market.open);
    if (closed) {
      const close = market.last_close_ms ? moment(market.last_close_ms) : "the last close";
      const opens = market.next_open_ms ? " It opens at " + moment(market.next_open_ms) + "." : "";
      show(notice, "The market is closed: these are the last prices, as of " + close + "." + opens);
    } else if (marketClosed) {
      notice.hidden = true; // the closed-market notice goes with the close
    }
    marketClosed = closed;
    setFreshness(freshness.delayed, freshness.minutes);
  }

  // Symbols the data source does not serve (not in a replay's files, beyond a vendor plan's cap): the
  // full list for this stream, so a row not in it is served (again).
  function setUnserved(unserved) {
    const reasons = new Map(unserved.map((item) => [item.symbol, item.reason]));
    rows.forEach((row, symbol) => {
      if (!reasons.has(symbol)) {
        if (!row.tr.classList.contains("row--unserved")) return;
        row.tr.classList.remove("row--unserved");
        row.cells.price.removeAttribute("title");
        row.cells.price.textContent = row.quote ? PRICE.format(row.quote.price) : "—";
        return;
      }
      row.tr.classList.add("row--unserved");
      const reason = UNSERVED[reasons.get(symbol)] || "The market data source does not serve this symbol.";
      const why = document.createElement("span"); // the reason for screen readers too, not only a tooltip
      why.className = "visually-hidden";
      why.textContent = " (" + reason + ")";
      row.cells.price.replaceChildren("Not served", why);
      row.cells.price.title = reason;
    });
  }

  function onSnapshot(message) {
    attempt = 0;
    problem.hidden = true;
    simulated = message.simulated === true;
    setFreshness(message.delayed, message.delay_minutes);
    setMarket(message.market);
    (message.quotes || []).forEach(apply);
    setUnserved(message.unserved || []);
    const pending = message.pending || [];
    if (marketClosed) {
      // the closed-market notice stays
    } else if (pending.length) {
      const first = Math.min(...pending.map((p) => p.available_at));
      show(notice, "Your plan shows quotes " + message.delay_minutes + " minutes late. Delayed data for " +
        pending.map((p) => p.symbol).join(", ") + " starts at " + TIME.format(first) + " (" + ZONE_NAME + ").",
        ["Get realtime data", table.dataset.billingUrl]);
    } else {
      notice.hidden = true;
    }
  }

  function onMessage(event) {
    const message = JSON.parse(event.data);
    switch (message.type) {
      case "snapshot": onSnapshot(message); break;
      case "quotes":
        message.quotes.forEach(apply);
        announceSoon();
        if (!notice.hidden && badge.classList.contains("badge--delayed")) notice.hidden = true;
        break;
      case "limits":
        setFreshness(message.delayed, message.delay_minutes);
        break;
      case "market": setMarket(message.market); break;
      case "unserved": setUnserved(message.unserved || []); break;
      case "unsubscribed":
        if (message.reason === "watchlist") {
          message.symbols.forEach(removeRow);
          break;
        }
        message.symbols.forEach((s) => rows.get(s) && rows.get(s).tr.classList.add("row--stopped"));
        if (message.reason === "plan_limit") show(notice, message.message, ["Upgrade your plan", table.dataset.billingUrl]);
        break;
      case "subscribed":
        message.symbols.forEach(addRow);
        if (message.rejected && message.rejected.length) {
          show(notice, "Not streaming: " + message.rejected.map((r) => r.symbol + " (" + r.reason.replace("_", " ") + ")").join(", ") + ".", null);
        }
        break;
      case "alert": {
        // An alert of the organisation fired: said at once (the history page lists them all).
        const alert = message.alert || {};
        const price = typeof alert.price === "number" ? " at " + PRICE.format(alert.price) : "";
        show(alertNotice, "Alert “" + alert.name + "”: " + alert.symbol + " " + alert.condition + price + ".",
          ["Alert history", table.dataset.alertsUrl]);
        break;
      }
      case "error": lastError = message; break;
      default: break;
    }
  }

  function onClose(event) {
    if (event.code === 4429 && lastError && lastError.code === "rate_limited" && lastError.retry_after) {
      // Too many connects from this network address (an office behind one NAT), not the plan's limit:
      // come back once the server says there is room, spread over a few seconds.
      const delay = Math.round((lastError.retry_after + Math.random() * 5) * 1000);
      setBadge("reconnecting", "Reconnecting in " + Math.ceil(delay / 1000) + " s");
      window.setTimeout(connect, delay);
      return;
    }
    const final = FINAL[event.code];
    if (final) {
      setBadge("stopped", "Stopped");
      const detail = lastError && lastError.message ? lastError.message : final.text;
      show(problem, detail, final.link);
      return;
    }
    attempt += 1;
    // Exponential backoff with full jitter, so a restarted server is not hit by every tab at once.
    const ceiling = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** attempt);
    const delay = Math.round(ceiling / 2 + Math.random() * ceiling / 2);
    setBadge("reconnecting", "Reconnecting in " + Math.ceil(delay / 1000) + " s");
    window.setTimeout(connect, delay);
  }

  function connect() {
    lastError = null;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(scheme + "://" + location.host + "/ws/stock-market/?watchlist=" + encodeURIComponent(table.dataset.watchlist));
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", onClose);
    setBadge("idle", attempt ? "Reconnecting…" : "Connecting…");
  }

  // Keep the connection alive through idle proxies.
  window.setInterval(() => socket && socket.readyState === WebSocket.OPEN && socket.send('{"action":"ping"}'), 25000);
  connect();
})();
