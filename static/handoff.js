// Desktop to phone: follow the check the phone is doing and show its result here.
// The server says what to show; this page only asks every few seconds.

const config = JSON.parse(document.getElementById("handoff-config").textContent);
const $ = (id) => document.getElementById(id);

async function poll() {
  let progress = null;
  try {
    const response = await fetch(config.statusUrl, { credentials: "same-origin", cache: "no-store" });
    if (response.ok) progress = await response.json();
  } catch (e) { /* offline for a moment: ask again */ }
  if (progress) {
    $("handoff-status").textContent = progress.text;
    document.body.dataset.handoffState = progress.state;
    document.body.dataset.handoffStatus = progress.status;
    if (progress.state !== "waiting" && $("handoff-link")) $("handoff-link").hidden = true;
    if (progress.state === "done") {
      if (progress.return_url) {
        $("continue").href = progress.return_url;
        $("continue").textContent = progress.return_text;
        $("handoff-return").hidden = false;
      }
      return;
    }
  }
  setTimeout(poll, config.pollMs);
}

setTimeout(poll, config.pollMs);
