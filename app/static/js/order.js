// Order page and checkout review: a countdown of the seat hold, and a pay button that cannot be double-clicked.
(() => {
  const target = document.querySelector("[data-countdown]");
  const out = document.getElementById("hold-countdown");
  if (target && out) {
    const end = Date.parse(target.dataset.countdown);
    const tick = () => {
      const left = Math.max(0, Math.round((end - Date.now()) / 1000));
      const minutes = Math.floor(left / 60);
      const seconds = String(left % 60).padStart(2, "0");
      out.textContent = left > 0 ? ` — ${minutes}:${seconds} left` : " — the hold has expired";
      if (left > 0) window.setTimeout(tick, 1000);
    };
    if (!Number.isNaN(end)) tick();
  }
  const form = document.getElementById("payment-form");
  if (form) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("[data-once]");
      if (button) {
        window.setTimeout(() => { button.disabled = true; button.textContent = "Paying…"; }, 0);
      }
    });
  }
})();
