// Check-in page: send each scanned code to the JSON API and show the verdict without reloading,
// so a USB/Bluetooth scanner (which types the code and presses Enter) can scan ticket after
// ticket; where the browser allows it, the camera is read with the vendored jsQR decoder.
// Without JavaScript the form still posts to the server, which renders the same verdict.
(() => {
  "use strict";
  const form = document.getElementById("scan-form");
  if (!form) return;
  const input = form.querySelector("input[name=payload]");
  const area = document.getElementById("verdict-area");
  const apiUrl = form.dataset.api;
  const csrfToken = form.dataset.csrf;
  const PERSON = (n) => `${n} person${n === 1 ? "" : "s"}`;
  const dateFormat = new Intl.DateTimeFormat("en-GB", {
    timeZone: "Europe/Paris", weekday: "short", day: "2-digit", month: "short", year: "numeric",
    hour: "2-digit", minute: "2-digit",
  });
  const localTime = (iso) => (iso ? dateFormat.format(new Date(iso)).replace(" at ", ", ") : "");

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function row(list, label, value, bold) {
    list.append(element("dt", "col-sm-4", label));
    list.append(element("dd", "col-sm-8" + (bold ? " fw-bold" : ""), value));
  }

  // The same markup as templates/tickets/_verdict.html.
  function render(data) {
    const box = element("div", `verdict verdict-${data.answer}`);
    box.dataset.verdict = data.verdict;
    box.append(element("div", "verdict-label", data.label));
    box.append(element("div", "fs-5 fw-normal mt-2", data.message));
    const t = data.ticket;
    if (t) {
      const list = element("dl", "row fs-5 fw-normal text-start mt-3 mb-0 mx-auto col-md-10");
      if (data.verdict === "VALID") row(list, "Admit", PERSON(t.persons), true);
      row(list, "Holder", t.holder);
      row(list, "Offer", t.offer);
      row(list, "Event", `${t.event}, ${localTime(t.starts_at)}`);
      row(list, "Ticket", t.number);
      if (data.verdict === "ALREADY_USED") {
        const who = data.checked_in_by ? ` by ${data.checked_in_by}` : "";
        row(list, "Checked in", localTime(data.checked_in_at) + who, true);
      }
      box.append(list);
    }
    area.replaceChildren(box);
  }

  function showProblem(text) {
    area.replaceChildren(element("div", "alert alert-warning fs-5", text));
  }

  let lastCode = "";
  let lastAt = 0;

  async function check(text, fromCamera) {
    const code = text.trim();
    if (!code) return;
    const now = Date.now();
    // The camera sees the same code many times a second: one check per code every 4 s.
    if (fromCamera && code === lastCode && now - lastAt < 4000) return;
    lastCode = code;
    lastAt = now;
    try {
      const response = await fetch(apiUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", Accept: "application/json", "X-CSRFToken": csrfToken },
        body: JSON.stringify({ payload: code }),
      });
      const data = await response.json();
      if (response.ok) render(data);
      else showProblem(data.message || "The server refused the check. Please log in again.");
    } catch (error) {
      showProblem("No answer from the server. Check the connection and scan again.");
    }
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value;
    input.value = "";
    input.classList.remove("is-invalid");
    input.focus();
    if (!text.trim()) {
      showProblem("Scan a ticket or type its code.");
      return;
    }
    check(text, false);
  });

  // --- camera -------------------------------------------------------------------------------
  const startButton = document.getElementById("camera-start");
  const stopButton = document.getElementById("camera-stop");
  const panel = document.getElementById("camera-panel");
  const video = document.getElementById("camera-video");
  const canvas = document.getElementById("camera-canvas");
  const status = document.getElementById("camera-status");
  const canUseCamera = !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia && window.jsQR);
  let stream = null;
  let lastFrame = 0;

  if (!canUseCamera || !startButton) return;
  startButton.hidden = false;

  function readFrame(time) {
    if (!stream) return;
    if (time - lastFrame > 150 && video.readyState >= video.HAVE_ENOUGH_DATA) {
      lastFrame = time;
      const scale = Math.min(1, 640 / video.videoWidth);
      const width = Math.round(video.videoWidth * scale);
      const height = Math.round(video.videoHeight * scale);
      canvas.width = width;
      canvas.height = height;
      const context = canvas.getContext("2d", { willReadFrequently: true });
      context.drawImage(video, 0, 0, width, height);
      const found = window.jsQR(context.getImageData(0, 0, width, height).data, width, height,
        { inversionAttempts: "dontInvert" });
      if (found && found.data) check(found.data, true);
    }
    window.requestAnimationFrame(readFrame);
  }

  async function startCamera() {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
    } catch (error) {
      panel.hidden = false;
      status.textContent = "The camera is not available here (permission refused or no camera). "
        + "Use a scanner or type the code.";
      return;
    }
    video.srcObject = stream;
    panel.hidden = false;
    startButton.hidden = true;
    stopButton.hidden = false;
    status.textContent = "Hold the QR code in front of the camera.";
    await video.play();
    window.requestAnimationFrame(readFrame);
  }

  function stopCamera() {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    stream = null;
    video.srcObject = null;
    panel.hidden = true;
    stopButton.hidden = true;
    startButton.hidden = false;
    input.focus();
  }

  startButton.addEventListener("click", startCamera);
  stopButton.addEventListener("click", stopCamera);
})();
