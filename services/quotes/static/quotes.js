// The search page: results follow the query as it is typed (debounced, older requests
// cancelled), the random button fetches one quote. Without JavaScript the form still works:
// the server renders the same results.
"use strict";

(() => {
  const DEBOUNCE_MS = 180;
  const form = document.getElementById("search-form");
  const input = document.getElementById("q");
  const randomButton = document.getElementById("random");
  const results = document.getElementById("results");
  const status = document.getElementById("status");
  const list = document.getElementById("list");
  let timer = 0;
  let inflight = null;

  function quoteItem(id, html, text, author) {
    const item = document.createElement("li");
    item.className = "quote";
    item.dataset.id = String(id);
    const block = document.createElement("blockquote");
    const para = document.createElement("p");
    // `snippet` comes escaped from the server, with <mark> around matched words only.
    if (html !== null) para.innerHTML = html;
    else para.textContent = text;
    block.append(para);
    item.append(block);
    if (author) {
      const by = document.createElement("p");
      by.className = "author";
      by.textContent = "— " + author;
      item.append(by);
    }
    return item;
  }

  async function load(url) {
    if (inflight) inflight.abort();
    const controller = new AbortController();
    inflight = controller;
    results.setAttribute("aria-busy", "true");
    try {
      const response = await fetch(url, { signal: controller.signal, headers: { Accept: "application/json" } });
      const body = await response.json();
      if (!response.ok) throw new Error(body.detail || response.statusText);
      return body;
    } finally {
      if (inflight === controller) {
        inflight = null;
        results.setAttribute("aria-busy", "false");
      }
    }
  }

  function show(message, items) {
    status.textContent = message;
    list.replaceChildren(...items);
  }

  async function search(query) {
    const url = new URL("/quotes/", location.href);
    if (query) url.searchParams.set("q", query);
    history.replaceState(null, "", url);
    if (!query) {
      show("", []);
      return;
    }
    try {
      const body = await load("/quotes/search?limit=20&q=" + encodeURIComponent(query));
      const found = body.total === 1 ? "1 quote found." : `${body.total} quotes found.`;
      const prefix = body.corrected ? `Showing results for “${body.corrected}”. ` : "";
      show(prefix + found, body.items.map((hit) => quoteItem(hit.id, hit.snippet, null, hit.author)));
    } catch (error) {
      if (error.name !== "AbortError") show("Search failed: " + error.message, []);
    }
  }

  async function randomQuote() {
    try {
      const [quote] = await load("/quotes/json/random?count=1");
      if (quote) show("A random quote.", [quoteItem(quote.id, null, quote.text, quote.author)]);
      else show("There are no quotes yet.", []);
    } catch (error) {
      if (error.name !== "AbortError") show("Could not fetch a quote: " + error.message, []);
    }
  }

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => search(input.value.trim()), DEBOUNCE_MS);
  });
  input.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      input.value = "";
      clearTimeout(timer);
      search("");
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    clearTimeout(timer);
    if (event.submitter === randomButton) randomQuote();
    else search(input.value.trim());
  });
})();
