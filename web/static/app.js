// campaignflow front-end glue: CSRF header for htmx, charts from data-* attributes (no inline JS: CSP).
(function () {
  const token = () => (document.querySelector('meta[name="csrf-token"]') || {}).content;
  document.addEventListener("htmx:configRequest", (e) => { e.detail.headers["X-CSRFToken"] = token(); });

  function drawCharts(root) {
    if (!window.Chart) return;
    root.querySelectorAll("canvas[data-chart]").forEach((el) => {
      if (el.dataset.drawn) return;
      el.dataset.drawn = "1";
      const spec = JSON.parse(el.dataset.chart);
      new Chart(el, spec);
    });
  }
  function sizeBars(root) {
    root.querySelectorAll("[data-width]").forEach((el) => { el.style.width = el.dataset.width + "%"; });
  }
  document.addEventListener("DOMContentLoaded", () => { drawCharts(document); sizeBars(document); });
  document.addEventListener("htmx:afterSwap", (e) => { drawCharts(e.target); sizeBars(e.target.parentNode || document); });

  // confirm buttons: <button data-confirm="…">
  document.addEventListener("click", (e) => {
    const b = e.target.closest("[data-confirm]");
    if (b && !window.confirm(b.dataset.confirm)) e.preventDefault();
  });
})();
