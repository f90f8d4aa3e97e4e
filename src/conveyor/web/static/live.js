// Conveyor dashboard: live updates from /api/v1/events (server-sent events), keyboard
// shortcuts and bulk selection. No framework, no build step.
"use strict";
(function () {
  const live = document.getElementById("live");
  const pending = new Map();          // job id -> latest event, flushed every FLUSH_MS
  const FLUSH_MS = 250, MAX_FETCHES = 12;
  let hiddenNew = 0, regionTimer = null;

  function setLive(state, text) {
    if (!live) return;
    live.dataset.state = state;
    live.textContent = text;
  }

  function connect() {
    if (!live || !window.EventSource) return;
    const source = new EventSource("/api/v1/events");
    source.addEventListener("ready", () => { setLive("on", "Live"); catchUp(); });
    source.addEventListener("job", (m) => onEvent(JSON.parse(m.data)));
    source.addEventListener("progress", (m) => onProgress(JSON.parse(m.data)));
    source.addEventListener("overflow", () => { source.close(); location.reload(); });
    source.onerror = () => setLive("error", "Reconnecting…");
  }

  // Changes between rendering the page and (re)connecting the stream were not seen: refresh
  // what may have moved since (the job detail, and list rows that were not yet finished).
  function catchUp() {
    if (document.querySelector("#job-detail")) refreshRegions(0);
    const t = table();
    if (!t) return;
    t.querySelectorAll("tbody tr[data-job-id]").forEach((row) => {
      if (!["completed", "dead", "cancelled"].includes(row.dataset.state)) {
        pending.set(row.dataset.jobId, { id: row.dataset.jobId, state: row.dataset.state, force: true });
      }
    });
  }

  // --- list pages: update rows in place, insert new matching jobs at the top -------------
  function table() { return document.querySelector("table[data-live-table]"); }

  function matches(t, e) {
    const states = (t.dataset.states || "").split(",").filter(Boolean);
    return (!states.length || states.includes(e.state))
      && (!t.dataset.queue || t.dataset.queue === e.queue)
      && (!t.dataset.task || t.dataset.task === e.task)
      && (!t.dataset.tenant || t.dataset.tenant === e.tenant);
  }

  function onEvent(e) {
    const t = table();
    if (t) {
      const row = t.querySelector(`tr[data-job-id="${CSS.escape(e.id)}"]`);
      if (row || (!t.dataset.exact && matches(t, e))) pending.set(e.id, e);
    }
    const detail = document.querySelector("#job-detail");
    if (detail && detail.dataset.jobId === e.id && detail.dataset.state !== e.state) {
      refreshRegions(0);
    } else if (document.querySelector("[data-live-region]:not(#job-detail)")) {
      refreshRegions(1500);
    }
  }

  function onProgress(e) {
    const detail = document.querySelector("#job-detail");
    if (detail && detail.dataset.jobId === e.id) {
      const wrap = detail.querySelector(".progress-wrap");
      wrap.hidden = false;
      detail.querySelector("[data-progress-fill]").style.width = Math.min(e.progress, 100) + "%";
      detail.querySelector("[role=progressbar]").setAttribute("aria-valuenow", Math.round(e.progress));
      detail.querySelector("[data-progress-text]").textContent = Math.round(e.progress) + "%";
    }
    const row = table() && table().querySelector(`tr[data-job-id="${CSS.escape(e.id)}"]`);
    const fill = row && row.querySelector(".mini-progress span");
    if (fill) fill.style.width = Math.min(e.progress, 100) + "%";
    else if (row) pending.set(e.id, e);
  }

  // A row moving between waiting and running is redrawn here; finished rows and new rows
  // are fetched from the server (they gain errors, results and attempts).
  function updateInPlace(row, e) {
    // a job scheduled again may be waiting to retry: its row comes from the server
    if (!["queued", "running"].includes(e.state)) return false;
    const badge = row.querySelector(".badge");
    if (!badge) return false;
    badge.className = `badge s-${e.state}`;
    badge.lastChild.textContent = e.state;
    row.dataset.state = e.state;
    return true;
  }

  async function flush() {
    const t = table();
    if (!t || !pending.size) return;
    const batch = [...pending.values()].slice(0, MAX_FETCHES);
    batch.forEach((e) => pending.delete(e.id));
    const selectable = t.querySelector("th.sel") ? "1" : "0";
    const when = t.dataset.when === "finished" ? "&when=finished" : "";
    for (const e of batch) {
      const existing = t.querySelector(`tr[data-job-id="${CSS.escape(e.id)}"]`);
      if (existing && !e.force && e.progress == null && updateInPlace(existing, e)) continue;
      if (!existing && t.tBodies[0].rows.length >= 200) { hiddenNew++; continue; }
      try {
        const r = await fetch(`/jobs/${encodeURIComponent(e.id)}/row?select=${selectable}${when}`,
                              { credentials: "same-origin" });
        if (!r.ok) continue;
        placeRow(t, existing, await r.text());
      } catch (err) { /* the stream will bring the next change */ }
    }
    if (pending.size > MAX_FETCHES * 4) { hiddenNew += pending.size; pending.clear(); }
    showHidden();
  }

  function placeRow(t, existing, html) {
    const holder = document.createElement("tbody");
    holder.innerHTML = html.trim();
    const row = holder.firstElementChild;
    if (!row) return;
    const box = existing && existing.querySelector("input[type=checkbox]");
    if (box && box.checked) { const nb = row.querySelector("input[type=checkbox]"); if (nb) nb.checked = true; }
    const stillMatches = matches(t, { state: row.dataset.state, queue: t.dataset.queue,
                                      task: t.dataset.task, tenant: t.dataset.tenant });
    if (!stillMatches) row.classList.add("gone");
    row.classList.add("flash-row");
    if (existing) existing.replaceWith(row);
    else t.tBodies[0].prepend(row);
    const empty = document.querySelector("[data-empty]");
    if (empty) empty.hidden = true;
  }

  function showHidden() {
    const banner = document.querySelector("[data-new-banner]");
    if (!banner || !hiddenNew) return;
    banner.hidden = false;
    banner.querySelector("span").textContent = `${hiddenNew} more job change${hiddenNew === 1 ? "" : "s"} since this page loaded.`;
  }

  // --- region pages (overview, queues, workers, job detail): re-render the region ---------
  function refreshRegions(delay) {
    if (regionTimer !== null) return;
    regionTimer = setTimeout(async () => {
      regionTimer = null;
      if (document.activeElement && document.activeElement.closest("[data-live-region] form")) return;
      try {
        const r = await fetch(location.href, { credentials: "same-origin" });
        if (!r.ok) return;
        const doc = new DOMParser().parseFromString(await r.text(), "text/html");
        document.querySelectorAll("[data-live-region]").forEach((old) => {
          const fresh = doc.getElementById(old.id);
          if (fresh) old.replaceWith(fresh);
        });
      } catch (err) { /* try again on the next event */ }
    }, delay);
  }

  function periodicRefresh() {
    const region = document.querySelector("[data-live-region][data-refresh]");
    if (!region) return;
    const seconds = Math.max(2, parseFloat(region.dataset.refresh) || 5);
    setInterval(() => { if (!document.hidden) refreshRegions(0); }, seconds * 1000);
  }

  // --- bulk selection and confirmations ------------------------------------------------------
  function selection() {
    document.addEventListener("change", (ev) => {
      const el = ev.target;
      if (el.matches("[data-select-all]")) {
        document.querySelectorAll("input[name=ids]").forEach((b) => { b.checked = el.checked; });
      }
      const count = document.querySelector("[data-selected-count]");
      if (count) count.textContent = document.querySelectorAll("input[name=ids]:checked").length + " selected";
    });
    document.addEventListener("click", (ev) => {
      const btn = ev.target.closest("[data-confirm]");
      if (btn && !window.confirm(btn.dataset.confirm)) ev.preventDefault();
    });
  }

  // --- keyboard: "g" then a letter goes to a page, "/" focuses the first filter, "?" helps ------
  function keyboard() {
    let leader = false;
    document.addEventListener("keydown", (ev) => {
      if (ev.target.closest("input, select, textarea") || ev.metaKey || ev.ctrlKey || ev.altKey) return;
      if (ev.key === "?") {
        const help = document.getElementById("keys-help");
        if (help && !help.open) { ev.preventDefault(); help.showModal(); }
        return;
      }
      if (ev.key === "t" && !leader && window.conveyorTheme) { ev.preventDefault(); window.conveyorTheme.next(); return; }
      if (ev.key === "/") {
        const field = document.querySelector(".filters input, .filters select");
        if (field) { ev.preventDefault(); field.focus(); }
        return;
      }
      if (leader) {
        leader = false;
        const link = document.querySelector(`nav a[data-key="${CSS.escape(ev.key)}"]`);
        if (link) { ev.preventDefault(); link.click(); }
        return;
      }
      if (ev.key === "g") { leader = true; setTimeout(() => { leader = false; }, 1500); }
    });
  }

  // --- phone layout: each cell of a table row-card says what it is (its column's header) -----
  function labelCells(root) {
    (root || document).querySelectorAll(".table-wrap table").forEach((t) => {
      const heads = [...t.querySelectorAll("thead th")].map((th) => th.textContent.trim());
      t.querySelectorAll("tbody tr").forEach((tr) => {
        [...tr.children].forEach((cell, i) => {
          if (!cell.hasAttribute("data-label") && heads[i]) cell.setAttribute("data-label", heads[i]);
        });
      });
    });
  }
  new MutationObserver(() => labelCells()).observe(document.documentElement,
                                                   { childList: true, subtree: true });

  document.addEventListener("DOMContentLoaded", () => {
    labelCells();
    connect();
    selection();
    keyboard();
    periodicRefresh();
    setInterval(flush, FLUSH_MS);
  });
})();
