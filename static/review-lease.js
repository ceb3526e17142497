// The review page's clock: the undo window's countdown, and the heartbeat that keeps the
// inspector's leases while they work (an idle inspector lets them run out, so the items go
// back to the queue).
"use strict";

(() => {
  const config = document.getElementById("review-config");
  if (!config) return;
  const messages = JSON.parse(config.dataset.messages || "{}");
  const heartbeatMs = Number(config.dataset.heartbeatSeconds || 60) * 1000;
  const leaseMs = Number(config.dataset.leaseSeconds || 300) * 1000;

  // --- undo window ---------------------------------------------------------------------------

  function startUndoCountdown(root) {
    const bar = root.querySelector(".undo-bar");
    if (!bar) return;
    let left = Number(bar.dataset.seconds || 0);
    const counter = bar.querySelector(".undo-count");
    const timer = setInterval(() => {
      left -= 1;
      if (!bar.isConnected || left <= 0) {
        clearInterval(timer);
        bar.remove();
        return;
      }
      counter.textContent = String(left);
    }, 1000);
  }

  // --- lease heartbeat -----------------------------------------------------------------------

  let lastActivity = Date.now();
  for (const type of ["keydown", "mousemove", "mousedown", "wheel", "touchstart"]) {
    document.addEventListener(type, () => { lastActivity = Date.now(); }, { passive: true });
  }

  function csrfToken() {
    const headers = JSON.parse(document.body.getAttribute("hx-headers") || "{}");
    return headers["X-CSRF-Token"] || "";
  }

  async function heartbeat() {
    const root = document.getElementById("review-item");
    if (!root || !root.dataset.taskId) return;
    // Someone who walked away lets the lease run out: the item goes back to the queue.
    if (Date.now() - lastActivity > leaseMs) return;
    const notice = root.querySelector(".lease-notice");
    const body = new FormData();
    body.append("task", root.dataset.taskId);
    try {
      const response = await fetch("/review/heartbeat", {
        method: "POST", body, credentials: "same-origin",
        headers: { "X-CSRF-Token": csrfToken() },
      });
      if (response.redirected) {
        window.location.assign(response.url); // logged out meanwhile: to the login form
      } else if (response.status === 409 && notice) {
        notice.innerHTML = await response.text(); // escaped by the server's template
      } else if (!response.ok && notice) {
        notice.textContent = messages.lease_error;
      } else if (notice) {
        notice.textContent = "";
      }
    } catch {
      if (notice) notice.textContent = messages.lease_error;
    }
  }

  setInterval(heartbeat, heartbeatMs);
  // Every item that arrives (and the first page) brings its own undo offer.
  htmx.onLoad((element) => {
    const root = element === document.body ? document.getElementById("review-item") : element;
    if (root && root.id === "review-item") startUndoCountdown(root);
  });
})();
