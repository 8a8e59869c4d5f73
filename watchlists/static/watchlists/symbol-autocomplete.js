// Suggestions for the "Add symbols" field of a watchlist, from GET /symbols/search/?q=.
// Progressive enhancement: without this script the field takes typed tickers and the page's
// directory search (a plain GET form) finds the rest. Keyboard: ↓/↑ to choose, Enter or Tab to
// take the chosen one (Enter with none chosen submits), Escape to close (WAI-ARIA combobox).
(function () {
  "use strict";
  const form = document.querySelector("form[data-symbol-search]");
  const input = form && form.querySelector("input[name=symbols]");
  if (!input) return;
  const searchUrl = form.dataset.symbolSearch;
  const fallback = document.querySelector("[data-search-fallback]");
  if (fallback && !fallback.querySelector("input[name=q]").value) fallback.hidden = true;

  const list = document.createElement("ul");
  list.id = input.id + "-suggestions";
  list.className = "suggestions";
  list.setAttribute("role", "listbox");
  list.hidden = true;
  input.parentElement.classList.add("field--suggest");
  input.insertAdjacentElement("afterend", list);
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-controls", list.id);
  input.setAttribute("aria-expanded", "false");

  let results = [];
  let active = -1;
  let timer = 0;
  let pending = null;

  // The token being typed: whatever follows the last comma, semicolon or space.
  function split(value) {
    const match = /^(.*[\s,;])?([^\s,;]*)$/.exec(value);
    return { head: (match && match[1]) || "", term: (match && match[2]) || "" };
  }

  function close() {
    results = [];
    active = -1;
    list.hidden = true;
    list.replaceChildren();
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
  }

  function render() {
    list.replaceChildren(
      ...results.map((entry, index) => {
        const item = document.createElement("li");
        item.id = list.id + "-" + index;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", String(index === active));
        const ticker = document.createElement("strong");
        ticker.textContent = entry.symbol;
        const name = document.createElement("span");
        name.textContent = " " + entry.name + (entry.exchange ? " · " + entry.exchange : "");
        item.append(ticker, name);
        // mousedown, not click: it runs before the input's blur closes the list.
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          pick(index);
        });
        return item;
      }),
    );
    list.hidden = results.length === 0;
    input.setAttribute("aria-expanded", String(!list.hidden));
    if (active >= 0) input.setAttribute("aria-activedescendant", list.id + "-" + active);
    else input.removeAttribute("aria-activedescendant");
  }

  function pick(index) {
    const entry = results[index];
    if (!entry) return;
    input.value = split(input.value).head + entry.symbol + ", ";
    close();
    input.focus();
  }

  async function suggest() {
    const term = split(input.value).term;
    if (pending) pending.abort();
    if (!term) return close();
    pending = new AbortController();
    try {
      const response = await fetch(searchUrl + "?q=" + encodeURIComponent(term), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: pending.signal,
      });
      if (!response.ok) return close();
      results = (await response.json()).results;
      active = -1;
      render();
    } catch (error) {
      if (error.name !== "AbortError") close();
    }
  }

  input.addEventListener("input", () => {
    window.clearTimeout(timer);
    timer = window.setTimeout(suggest, 120);
  });
  input.addEventListener("keydown", (event) => {
    if (list.hidden) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      if (active < 0) active = step > 0 ? 0 : results.length - 1;
      else active = (active + step + results.length) % results.length;
      render();
    } else if ((event.key === "Enter" || event.key === "Tab") && active >= 0) {
      event.preventDefault();
      pick(active);
    } else if (event.key === "Escape") {
      close();
    }
  });
  input.addEventListener("blur", close);
})();
