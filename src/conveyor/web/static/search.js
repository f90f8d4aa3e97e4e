// Autocomplete of task and queue names for the filter inputs (data-names="tasks" or
// "queues"): as one types, the names that hold the text (GET /api/v1/names, the signed-in
// tenant's own) fill the input's <datalist>, which the browser shows as suggestions.
// Hand-written, no library: a debounce, one request in flight per input, the latest wins.
(function () {
  "use strict";
  const WAIT_MS = 150;

  function attach(input) {
    const list = document.getElementById(input.getAttribute("list"));
    if (!list) return;
    const kind = input.dataset.names;
    let timer = 0, asked = 0, lastQuery = null;

    function fill(names) {
      list.replaceChildren(...names.map((name) => {
        const option = document.createElement("option");
        option.value = name;
        return option;
      }));
    }

    async function suggest() {
      const query = input.value.trim();
      if (query === lastQuery) return;
      lastQuery = query;
      const ticket = ++asked;
      try {
        const reply = await fetch(`/api/v1/names?limit=20&q=${encodeURIComponent(query)}`,
                                  {credentials: "same-origin", headers: {Accept: "application/json"}});
        if (!reply.ok || ticket !== asked) return;
        const body = await reply.json();
        if (ticket === asked) fill(body[kind] || []);
      } catch (_) { /* offline or signed out: no suggestions, the input still works */ }
    }

    input.addEventListener("input", () => {
      clearTimeout(timer);
      timer = setTimeout(suggest, WAIT_MS);
    });
    input.addEventListener("focus", suggest, {once: true});
  }

  function start() {
    document.querySelectorAll("input[data-names][list]").forEach(attach);
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
