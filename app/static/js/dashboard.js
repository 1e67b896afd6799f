// Admin sales dashboard: draws the four charts from the JSON block the page carries
// (<script type="application/json" id="dashboard-data">), the same numbers as the tables.
(() => {
  "use strict";
  const source = document.getElementById("dashboard-data");
  if (!source || typeof window.Chart === "undefined") {
    return;
  }
  const stats = JSON.parse(source.textContent);
  const BLUE = "#0b3d91";
  const GOLD = "#f2b705";
  const TEAL = "#00838f";
  const GREY = "#adb5bd";
  const euro = new Intl.NumberFormat("en-GB", { style: "currency", currency: "EUR" });
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.animation = reducedMotion ? false : { duration: 400 };
  Chart.defaults.maintainAspectRatio = false;

  // Horizontal bar charts grow with their number of rows, so labels stay readable.
  function sizeFor(canvas, rows) {
    const box = canvas.parentElement;
    if (box && box.classList.contains("chart-box-tall")) {
      box.style.height = `${Math.max(280, rows * 30 + 80)}px`;
    }
  }

  function draw(id, rows, config) {
    const canvas = document.getElementById(id);
    if (!canvas) {
      return null;
    }
    sizeFor(canvas, rows);
    const chart = new Chart(canvas, config);
    canvas.dataset.rendered = "true";
    return chart;
  }

  const offers = stats.offers;
  draw("chart-offers", offers.length, {
    type: "bar",
    data: {
      labels: offers.map((o) => o.label),
      datasets: [
        { label: "Tickets sold", data: offers.map((o) => o.tickets), backgroundColor: BLUE, xAxisID: "x" },
        { label: "Revenue (€)", data: offers.map((o) => o.revenue_cents / 100), backgroundColor: GOLD,
          xAxisID: "revenue" },
      ],
    },
    options: {
      indexAxis: "y",
      scales: {
        x: { beginAtZero: true, position: "bottom", title: { display: true, text: "Tickets" },
             ticks: { precision: 0 } },
        revenue: { beginAtZero: true, position: "top", grid: { drawOnChartArea: false },
                   title: { display: true, text: "Revenue" }, ticks: { callback: (v) => euro.format(v) } },
      },
      plugins: {
        tooltip: { callbacks: { label: (ctx) => (ctx.dataset.xAxisID === "revenue"
          ? `Revenue: ${euro.format(ctx.raw)}` : `Tickets sold: ${ctx.raw}`) } },
      },
    },
  });

  const days = stats.days;
  draw("chart-days", days.length, {
    type: "line",
    data: {
      labels: days.map((d) => d.day),
      datasets: [
        { label: "Revenue (€)", data: days.map((d) => d.revenue_cents / 100), borderColor: GOLD,
          backgroundColor: GOLD, yAxisID: "y", tension: 0.2 },
        { label: "Paid orders", data: days.map((d) => d.orders), borderColor: BLUE, backgroundColor: BLUE,
          yAxisID: "orders", tension: 0.2 },
      ],
    },
    options: {
      scales: {
        y: { beginAtZero: true, position: "left", ticks: { callback: (v) => euro.format(v) } },
        orders: { beginAtZero: true, position: "right", grid: { drawOnChartArea: false }, ticks: { precision: 0 } },
      },
      plugins: {
        tooltip: { callbacks: { label: (ctx) => (ctx.dataset.yAxisID === "y"
          ? `Revenue: ${euro.format(ctx.raw)}` : `Paid orders: ${ctx.raw}`) } },
      },
    },
  });

  const events = stats.events;
  draw("chart-fill", events.length, {
    type: "bar",
    data: {
      labels: events.map((e) => e.event),
      datasets: [{ label: "Seats sold (% of capacity)", data: events.map((e) => e.fill_rate), backgroundColor: TEAL }],
    },
    options: {
      indexAxis: "y",
      scales: { x: { beginAtZero: true, max: 100, ticks: { callback: (v) => `${v} %` } } },
      plugins: {
        tooltip: { callbacks: { label: (ctx) => {
          const e = events[ctx.dataIndex];
          return `${e.fill_rate.toFixed(1)} % (${e.seats_sold} of ${e.capacity} seats)`;
        } } },
      },
    },
  });

  draw("chart-checkins", events.length, {
    type: "bar",
    data: {
      labels: events.map((e) => e.event),
      datasets: [
        { label: "Checked in", data: events.map((e) => e.checked_in), backgroundColor: BLUE },
        { label: "Tickets sold", data: events.map((e) => e.tickets_sold), backgroundColor: GREY },
      ],
    },
    options: {
      indexAxis: "y",
      scales: { x: { beginAtZero: true, ticks: { precision: 0 } } },
    },
  });
})();
