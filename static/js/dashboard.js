// Tickerdeck live dashboard: one websocket per page, quotes into the table, reconnect with backoff.
(function () {
  "use strict";

  const table = document.getElementById("quotes");
  if (!table) return; // nothing to stream: the page shows a neutral badge and how to add symbols
  const badge = document.getElementById("stream-badge");
  const problem = document.getElementById("stream-problem");
  const notice = document.getElementById("stream-notice");
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
  const rows = new Map();
  // The intraday sparkline: one point a minute, starting from the feed's history ("ts:price ts:price …").
  body.querySelectorAll("tr[data-symbol]").forEach((tr) => {
    const points = (tr.dataset.history || "").split(" ").filter(Boolean).map((p) => p.split(":").map(Number));
    const last = points[points.length - 1];
    const row = { tr, prices: points.map((p) => p[1]), minute: last ? Math.floor(last[0] / 60000) : null, last: null };
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
    rows.set(symbol, { tr, prices: [], minute: null, last: null });
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

  function fmt(value, digits) {
    return Number(value).toLocaleString(undefined, { minimumFractionDigits: digits, maximumFractionDigits: digits });
  }

  function signed(value, digits, suffix) {
    const text = fmt(Math.abs(value), digits) + (suffix || "");
    return (value > 0 ? "+" : value < 0 ? "−" : "") + text;
  }

  function drawSpark(row) {
    const prices = row.prices;
    if (prices.length < 2) return;
    const low = Math.min(...prices), high = Math.max(...prices);
    const span = high - low || 1;
    const step = 100 / (SPARK_POINTS - 1);
    const offset = SPARK_POINTS - prices.length;
    const points = prices.map((p, i) => ((offset + i) * step).toFixed(1) + "," + (22 - ((p - low) / span) * 20).toFixed(1));
    row.tr.querySelector(".spark polyline").setAttribute("points", points.join(" "));
  }

  function apply(quote) {
    const row = rows.get(quote.symbol);
    if (!row) return;
    const tr = row.tr;
    const priceCell = tr.querySelector(".price");
    if (row.last !== null && quote.price !== row.last) {
      priceCell.classList.remove("flash-up", "flash-down");
      void priceCell.offsetWidth; // restart the animation
      priceCell.classList.add(quote.price > row.last ? "flash-up" : "flash-down");
    }
    row.last = quote.price;
    priceCell.textContent = fmt(quote.price, 2);
    const direction = quote.change > 0 ? "up" : quote.change < 0 ? "down" : "flat";
    tr.dataset.direction = direction;
    tr.querySelector(".change").textContent = signed(quote.change, 2);
    tr.querySelector(".change-pct").textContent = signed(quote.change_pct, 2, "%");
    tr.querySelector(".bid").textContent = fmt(quote.bid, 2);
    tr.querySelector(".ask").textContent = fmt(quote.ask, 2);
    tr.querySelector(".volume").textContent = Number(quote.volume).toLocaleString();
    tr.querySelector(".time").textContent = new Date(quote.ts).toLocaleTimeString();
    tr.classList.remove("row--stopped");
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

  // What the badge says about the data: its freshness, and that it is made up when it is.
  let simulated = false;
  function setFreshness(delayed, delayMinutes) {
    const freshness = delayed ? "Delayed by " + delayMinutes + " min" : "Live";
    setBadge(delayed ? "delayed" : "live", simulated ? "Simulated · " + freshness.toLowerCase() : freshness);
  }

  function onSnapshot(message) {
    attempt = 0;
    problem.hidden = true;
    simulated = message.simulated === true;
    setFreshness(message.delayed, message.delay_minutes);
    const market = message.market;
    if (market && !market.open) {
      setBadge("closed", "Market closed");
      const close = market.last_close_ms ? new Date(market.last_close_ms).toLocaleString() : "the last close";
      const opens = market.next_open_ms ? " It opens at " + new Date(market.next_open_ms).toLocaleString() + "." : "";
      show(notice, "The market is closed: these are the last prices, as of " + close + "." + opens);
    }
    (message.quotes || []).forEach(apply);
    // Symbols the data source does not serve (not in a replay's files, beyond a vendor plan's cap).
    (message.unserved || []).forEach((item) => {
      const row = rows.get(item.symbol);
      if (!row) return;
      row.tr.classList.add("row--unserved");
      const cell = row.tr.querySelector(".price");
      cell.textContent = "Not served";
      cell.title = UNSERVED[item.reason] || "The market data source does not serve this symbol.";
    });
    const pending = message.pending || [];
    if (market && !market.open) {
      // the closed-market notice stays
    } else if (pending.length) {
      const first = Math.min(...pending.map((p) => p.available_at));
      show(notice, "Your plan shows quotes " + message.delay_minutes + " minutes late. Delayed data for " +
        pending.map((p) => p.symbol).join(", ") + " starts at " + new Date(first).toLocaleTimeString() + ".",
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
        if (!notice.hidden && badge.classList.contains("badge--delayed")) notice.hidden = true;
        break;
      case "limits":
        setFreshness(message.delayed, message.delay_minutes);
        break;
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
      case "error": lastError = message; break;
      default: break;
    }
  }

  function onClose(event) {
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
