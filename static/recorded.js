// The recorded check: the fallback when no live connection can be made. The server sends a timetable
// and a one-time nonce, and each challenge only when the recording reaches its prompt; this page shows
// each prompt at its time while MediaRecorder records, then uploads the clip. The server checks the
// movements against the timetable.

const TYPES = ["video/webm;codecs=vp8", "video/webm", "video/mp4"];
const RETURN_BEFORE_S = 2; // the last seconds of each slot ask for a straight look again
const ASK_AHEAD_S = 0.5; // a challenge is asked for this long before its prompt (the server allows 1 s)

export function canRecord() {
  return Boolean(window.MediaRecorder && TYPES.some((type) => MediaRecorder.isTypeSupported(type)));
}

async function post(url, config, headers, body, attemptsLeft = 5, retryCodes = config.retryCodes) {
  const response = await fetch(url, {
    method: "POST",
    credentials: "same-origin",
    headers: { [config.csrfHeader]: config.csrf, ...headers },
    body,
  });
  if (response.ok) return response.json();
  let code = "generic";
  try { code = (await response.json()).error.code; } catch (e) { /* keep generic */ }
  if (retryCodes.includes(code) && attemptsLeft > 0) {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return post(url, config, headers, body, attemptsLeft - 1, retryCodes);
  }
  throw Object.assign(new Error(code), { code });
}

// say(key, values): show a text of the locale; step(n, total): the progress line.
export async function recordCheck(stream, config, say, step) {
  // A live attempt given up a moment ago keeps the session live until the server has closed it.
  const track = stream.getVideoTracks()[0];
  const body = JSON.stringify({ camera_label: (track && track.label) || "" });
  const plan = await post(config.planUrl, config, { "Content-Type": "application/json" }, body, 5, [...config.retryCodes, ...config.restartCodes]);
  const type = TYPES.find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, { mimeType: type, videoBitsPerSecond: 1000000 });
  const chunks = [];
  recorder.addEventListener("dataavailable", (event) => { if (event.data.size) chunks.push(event.data); });
  const stopped = new Promise((resolve) => recorder.addEventListener("stop", resolve));
  const timers = [];
  const at = (seconds, action) => timers.push(setTimeout(action, seconds * 1000));
  const nonceHeaders = { "Content-Type": "application/json", [config.nonceHeader]: plan.nonce };
  const badge = document.getElementById("recording"); // the customer sees that the camera is being recorded
  recorder.addEventListener("start", () => {
    document.body.dataset.recording = "on";
    badge.hidden = false;
    say("live.phase.start");
    step(0, plan.count);
    const started = performance.now();
    plan.prompts_at_s.forEach((promptAt, index) => {
      at(Math.max(0, promptAt - ASK_AHEAD_S), async () => {
        let challenge;
        try {
          ({ challenge } = await post(config.promptUrl, config, nonceHeaders, JSON.stringify({ index }), 0));
        } catch (e) {
          return; // not shown: the clip will not follow the timetable, and the server says so
        }
        const wait = promptAt * 1000 - (performance.now() - started);
        timers.push(setTimeout(() => {
          say(`live.challenge.${challenge}`);
          step(index + 1, plan.count);
        }, Math.max(0, wait)));
      });
      at(promptAt + plan.slot_s - RETURN_BEFORE_S, () => say("live.phase.return"));
    });
    at(plan.duration_s, () => recorder.stop());
  });
  recorder.start(1000);
  await stopped;
  timers.forEach(clearTimeout);
  badge.hidden = true;
  document.body.dataset.recording = "sent";
  say("live.phase.done");
  const clipType = recorder.mimeType.split(";")[0] || type.split(";")[0];
  const clip = new Blob(chunks, { type: clipType });
  // "busy": the server holds a few recordings at once and read none of this one; its nonce still holds.
  return post(config.recordUrl, config, { "Content-Type": clipType, [config.nonceHeader]: plan.nonce }, clip, 30, ["busy"]);
}
