// Conveyor dashboard: the colour theme, applied before the page paints. "system" follows the
// operating system (prefers-color-scheme, also when it changes); "dark" and "light" are kept
// in localStorage. The stylesheet reads html[data-theme], which is always dark or light.
"use strict";
(function () {
  const THEMES = ["system", "dark", "light"];
  function stored() {
    try { const t = localStorage.getItem("conveyor-theme"); return THEMES.includes(t) ? t : "system"; }
    catch (err) { return "system"; }
  }
  const systemDark = window.matchMedia ? window.matchMedia("(prefers-color-scheme: dark)") : null;
  function apply(theme) {
    const root = document.documentElement;
    root.dataset.theme = theme !== "system" ? theme : (systemDark && systemDark.matches ? "dark" : "light");
    document.querySelectorAll("[data-theme-toggle]").forEach((b) => {
      b.textContent = "Theme: " + theme;
      b.setAttribute("aria-label", "Colour theme: " + theme + ". Switch theme");
    });
  }
  function next() {
    const theme = THEMES[(THEMES.indexOf(stored()) + 1) % THEMES.length];
    try { localStorage.setItem("conveyor-theme", theme); } catch (err) { /* private mode */ }
    apply(theme);
  }
  window.conveyorTheme = { next: next };
  apply(stored());
  if (systemDark) systemDark.addEventListener("change", () => apply(stored()));
  document.addEventListener("DOMContentLoaded", () => {
    apply(stored());
    document.addEventListener("click", (ev) => {
      if (ev.target.closest("[data-theme-toggle]")) next();
    });
  });
})();
