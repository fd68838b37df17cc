// Live check: stream the front camera to the server over WebRTC and show what the server asks for.
// The server decides everything (challenges, timing, result); this page only displays and streams.

import { canRecord, recordCheck } from "./recorded.js";

const config = JSON.parse(document.getElementById("live-config").textContent);
const $ = (id) => document.getElementById(id);
const text = (key, values = {}) =>
  (config.messages[key] || "").replace(/\{(\w+)\}/g, (_, name) => (name in values ? values[name] : `{${name}}`));

// A phone has the camera the check needs: the offer to continue on a phone is for desktops, and for a
// device where no camera was found.
const ON_PHONE = navigator.maxTouchPoints > 0 && window.matchMedia && window.matchMedia("(pointer: coarse)").matches;

const IN_APP = /FBAN|FBAV|Instagram|Line\/|MicroMessenger|WeChat|Weibo|QQ\/|baiduboxapp|UCBrowser|; wv\)/i;

let stream = null;
let pc = null;
let channel = null;
let sender = null; // the camera's RTP sender: the server asks it for the rate each step needs
let finished = false;
let waitTimer = null;
let connectTimer = null;
let recordOnly = false; // no WebRTC in this browser: the check is recorded and uploaded instead

function show(problemKey, shownText) {
  $("problem-text").textContent = shownText || text(problemKey);
  $("problem").hidden = false;
  $("retry").hidden = !$("intro").hidden; // while the Start button shows, it is the way to try again
  $("instruction").textContent = "";
  $("hint").textContent = "";
  $("problem").scrollIntoView({ block: "nearest" });
}

function byeBeacon() {
  const form = new FormData();
  form.append(config.csrfField, config.csrf);
  navigator.sendBeacon(config.byeUrl, form);
}

function say(key, values) {
  $("instruction").textContent = text(key, values);
  $("hint").textContent = "";
}

function step(done, total) {
  $("challenge-progress").textContent = done ? text("step.of", { step: done, total }) : "";
}

async function record() {
  $("record").hidden = true;
  $("problem").hidden = true;
  $("intro").hidden = true;
  $("stage").hidden = false;
  try {
    const outcome = await recordCheck(stream, config, say, step);
    finished = true;
    stop();
    window.location.assign(outcome.resultUrl);
  } catch (error) {
    if (config.restartCodes.includes(error.code)) {
      window.location.assign(config.restartUrl);
      return;
    }
    show("live.error.generic", config.errorTexts[error.code]);
    // With a live key a recording is offered only after the server saw the connection fail: this
    // browser cannot connect at all, so the way on is a phone.
    const unavailable = error.code === "recording_unavailable";
    $("record").hidden = !stream || unavailable;
    if (unavailable && !ON_PHONE) $("handoff-offer").hidden = false;
    document.body.dataset.liveError = error.code || "generic";
  }
}

function offerRecording() {
  // The peer connection did not connect: give the live attempt back and offer to record instead.
  clearTimeout(connectTimer);
  if (finished || !pc) return;
  byeBeacon();
  stopPeer();
  show("live.error.record_offer");
  $("retry").hidden = true;
  $("record").hidden = false;
  document.body.dataset.liveError = "no_connection";
}

function stopPeer() {
  if (channel && channel.readyState === "open") {
    try { channel.send(JSON.stringify({ type: "bye" })); } catch (e) { /* closing anyway */ }
  }
  if (pc) pc.close();
  pc = null;
  channel = null;
  sender = null;
}

function stop() {
  clearTimeout(waitTimer);
  clearTimeout(connectTimer);
  if (channel && channel.readyState === "open") {
    try { channel.send(JSON.stringify({ type: "bye" })); } catch (e) { /* closing anyway */ }
  }
  if (pc) pc.close();
  if (stream) stream.getTracks().forEach((t) => t.stop());
  pc = null;
  channel = null;
  sender = null;
  stream = null;
}

function onMessage(event) {
  let message;
  try { message = JSON.parse(event.data); } catch (e) { return; }
  if (message.type === "prompt") {
    let key = `live.phase.${message.phase}`;
    if (message.phase === "challenge" && message.challenge) key = `live.challenge.${message.challenge}`;
    $("instruction").textContent = text(key);
    $("hint").textContent = message.hint ? text(`live.hint.${message.hint}`) : "";
    $("stage").classList.toggle("good", !message.hint);
    const step = Math.min(message.step + (message.phase === "challenge" ? 1 : 0), message.total);
    $("challenge-progress").textContent = message.phase === "start" ? "" : text("step.of", { step, total: message.total });
  } else if (message.type === "rate") {
    sendAt(message.fps);
  } else if (message.type === "result") {
    finished = true;
    $("instruction").textContent = text("live.phase.done");
    stop();
    window.location.assign(config.resultUrl);
  }
}

async function sendAt(fps) {
  // A step analysed at fewer frames than the camera gives: those are neither encoded nor sent. Never more
  // than the page asked the camera for; the other encoding settings (bitrate, size) stay as they are.
  if (!sender || !(fps > 0)) return;
  const parameters = sender.getParameters();
  if (!parameters.encodings || !parameters.encodings.length) return;
  parameters.encodings[0].maxFramerate = Math.min(fps, config.captureFps);
  try {
    await sender.setParameters(parameters);
    document.body.dataset.sentFps = String(parameters.encodings[0].maxFramerate);
  } catch (e) { /* the browser keeps the rate it has: the server only analyses fewer of its frames */ }
}

function iceGatheringDone(connection, timeoutMs) {
  if (connection.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, timeoutMs);
    connection.addEventListener("icegatheringstatechange", () => {
      if (connection.iceGatheringState === "complete") {
        clearTimeout(timer);
        resolve();
      }
    });
  });
}

function preferVp8(transceiver) {
  // Some Android builds lack H.264; VP8 decodes everywhere and costs the server least.
  if (!transceiver.setCodecPreferences || !window.RTCRtpReceiver || !RTCRtpReceiver.getCapabilities) return;
  const codecs = RTCRtpReceiver.getCapabilities("video").codecs;
  const vp8 = codecs.filter((c) => c.mimeType.toLowerCase() === "video/vp8");
  if (vp8.length) transceiver.setCodecPreferences([...vp8, ...codecs.filter((c) => !vp8.includes(c))]);
}

async function sendOffer(body, attemptsLeft = 5) {
  const response = await fetch(config.offerUrl, {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json", [config.csrfHeader]: config.csrf },
    body: JSON.stringify(body),
  });
  if (response.ok) return response.json();
  let code = "generic";
  let queue = null;
  try {
    const error = (await response.json()).error;
    code = error.code;
    queue = error.queue || null;
  } catch (e) { /* keep generic */ }
  if (config.retryCodes.includes(code) && attemptsLeft > 0) {
    await new Promise((resolve) => setTimeout(resolve, 1500));
    return sendOffer(body, attemptsLeft - 1);
  }
  if (config.restartCodes.includes(code)) {
    window.location.assign(config.restartUrl);
    return null;
  }
  throw Object.assign(new Error(code), { code, queue });
}

function wait(queue) {
  // The server is full: keep the camera and the place in line, say where we are, ask again by ourselves.
  stopPeer();
  const minutes = Math.max(1, Math.round(queue.wait_s / 60));
  $("instruction").textContent = text("live.waiting", { position: queue.position, minutes });
  $("hint").textContent = "";
  document.body.dataset.liveWaiting = String(queue.position);
  waitTimer = setTimeout(start, Math.max(0.2, queue.retry_after_s) * 1000);
}

async function start() {
  $("start").disabled = true;
  $("problem").hidden = true;
  if (!stream) $("instruction").textContent = text("live.connecting");
  try {
    // The frame rate the analysis uses (see CAPTURE_FPS in server/web/pages.py), not more.
    stream = stream || await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { facingMode: "user", width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { ideal: config.captureFps } },
    });
  } catch (error) {
    $("start").disabled = false;
    const denied = ["NotAllowedError", "SecurityError", "PermissionDeniedError"].includes(error.name);
    show(denied ? "live.error.camera_denied" : "live.error.no_camera");
    document.body.dataset.liveError = denied ? "camera_denied" : "no_camera";
    if (!denied) $("handoff-offer").hidden = false;
    return;
  }
  $("intro").hidden = true;
  $("stage").hidden = false;
  // On a phone the header would push the instructions below the fold: bring the title to the top, so
  // that it, the camera picture (at most 62vh) and the instructions under it are all on screen. (Scrolling
  // the picture itself to the top stopped short at the page's end and left the title cut in half.)
  document.querySelector(".live h1").scrollIntoView({ block: "start" });
  $("preview").srcObject = stream;
  if (recordOnly) {
    await record();
    return;
  }

  const track = stream.getVideoTracks()[0];
  const settings = track.getSettings ? track.getSettings() : {};
  // Send what the analysis uses, no more: its frame rate and bitrate, and its size when the camera gives more.
  const encoding = { maxFramerate: config.captureFps, maxBitrate: config.captureKbps * 1000 };
  const longSide = Math.max(settings.width || 0, settings.height || 0);
  if (longSide > config.analysisSide) encoding.scaleResolutionDownBy = longSide / config.analysisSide;
  pc = new RTCPeerConnection({ iceServers: config.iceServers });
  const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [stream], sendEncodings: [encoding] });
  preferVp8(transceiver);
  sender = transceiver.sender;
  channel = pc.createDataChannel("control");
  channel.addEventListener("message", onMessage);
  pc.addEventListener("connectionstatechange", () => {
    if (pc && pc.connectionState === "connected") clearTimeout(connectTimer);
    if (!finished && pc && pc.connectionState === "failed" && canRecord()) {
      offerRecording();
    } else if (!finished && pc && ["failed", "disconnected"].includes(pc.connectionState)) {
      stop();
      show("live.error.connection");
      document.body.dataset.liveError = "connection";
    }
  });
  try {
    await pc.setLocalDescription(await pc.createOffer());
    await iceGatheringDone(pc, 4000);
    const answer = await sendOffer({
      sdp: pc.localDescription.sdp,
      type: "offer",
      camera_label: track.label || "",
      camera: { width: settings.width, height: settings.height, frame_rate: settings.frameRate },
    });
    if (!answer || !pc) return;
    delete document.body.dataset.liveWaiting;
    await pc.setRemoteDescription(answer);
    if (canRecord()) {
      connectTimer = setTimeout(() => {
        if (pc && pc.connectionState !== "connected") offerRecording();
      }, config.connectWaitMs);
    }
  } catch (error) {
    if (error.queue) {
      wait(error.queue);
      return;
    }
    delete document.body.dataset.liveWaiting;
    stop();
    $("intro").hidden = false;
    $("stage").hidden = true;
    $("start").disabled = false;
    show("live.error.generic", config.errorTexts[error.code]);
    document.body.dataset.liveError = error.code || "generic";
  }
}

function init() {
  recordOnly = !window.RTCPeerConnection && canRecord();
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !(window.RTCPeerConnection || recordOnly)) {
    $("start").hidden = true;
    show("live.error.unsupported");
    $("retry").hidden = true;
    document.body.dataset.liveError = "unsupported";
    return;
  }
  if (ON_PHONE) $("handoff-offer").hidden = true;
  if (IN_APP.test(navigator.userAgent)) $("in-app").hidden = false;
  $("start").addEventListener("click", start);
  $("record").addEventListener("click", record);
  $("retry").addEventListener("click", () => {
    $("problem").hidden = true;
    start();
  });
  // Leaving is said, not guessed: a page that closes while live or waiting in line frees its place at once.
  window.addEventListener("pagehide", () => {
    if (finished || !(pc || document.body.dataset.liveWaiting)) return;
    byeBeacon();
    stop();
  });
  window.addEventListener("pageshow", (event) => {
    // Back from the browser's page cache after having left the line: ask for a place again.
    if (event.persisted && !finished && document.body.dataset.liveWaiting) start();
  });
}

init();
