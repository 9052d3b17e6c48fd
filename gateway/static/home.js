// Refreshes the health column from /readyz (200 when all is ready, 503 problem+json otherwise;
// both carry the per-service "checks").
"use strict";
const LABELS = { ready: "ready", down: "down", absent: "not deployed" };

async function refreshHealth() {
  const status = document.getElementById("health-status");
  let checks;
  try {
    const response = await fetch("/readyz", { headers: { Accept: "application/json" } });
    checks = (await response.json()).checks || {};
  } catch (error) {
    status.textContent = "The gateway did not answer; health not refreshed.";
    return;
  }
  for (const cell of document.querySelectorAll("td.health")) {
    const entry = checks[cell.dataset.service];
    if (!entry) continue; // not deployed: nothing to check
    const state = entry.ok ? "ready" : "down";
    cell.dataset.state = state;
    cell.querySelector(".label").textContent = LABELS[state];
    cell.title = entry.detail || "";
  }
  status.textContent = "Health refreshed at " + new Date().toLocaleTimeString() + ".";
}

refreshHealth();
setInterval(refreshHealth, 10000);
