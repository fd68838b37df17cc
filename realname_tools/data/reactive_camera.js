// A virtual camera that answers the prompts (realname_tools/reactive_splices.py's player, in the page):
// getUserMedia returns a canvas stream named "Integrated Camera" that loops the rest frames forth and back
// and, `latency_s` after each challenge's prompt is heard on the data channel, plays that challenge's piece,
// again `retry_s` after it ended while the challenge is still asked. Frames are fetched from /__attack/
// (served by the evaluation's route, never by the server). Run before the page's own scripts.
(() => {
  const config = __REACTIVE_CONFIG__;
  const asked = [];
  const done = [];
  let t0 = null;
  const now = () => (t0 === null ? 0 : (performance.now() - t0) / 1000);

  const createDataChannel = RTCPeerConnection.prototype.createDataChannel;
  RTCPeerConnection.prototype.createDataChannel = function (...args) {
    const channel = createDataChannel.apply(this, args);
    channel.addEventListener("message", (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (_) { return; }
      if (message.type !== "prompt" || !Number.isInteger(message.step)) return;
      const t = now();
      for (let i = 0; i < message.step; i++) if (done[i] === undefined) done[i] = t;
      if (message.phase === "challenge" && asked[message.step] === undefined) asked[message.step] = t;
    });
    return channel;
  };

  async function frames(name, count) {
    const out = [];
    for (let i = 0; i < count; i++) {
      const response = await fetch(`/__attack/${name}/${i}.jpg`);
      out.push(await createImageBitmap(await response.blob()));
    }
    return out;
  }

  navigator.mediaDevices.getUserMedia = async () => {
    const rest = await frames("rest", config.rest);
    const moves = [];
    for (let k = 0; k < config.moves.length; k++) moves.push(await frames(`move${k}`, config.moves[k]));
    const canvas = document.createElement("canvas");
    canvas.width = config.width;
    canvas.height = config.height;
    const context = canvas.getContext("2d");
    const stream = canvas.captureStream(config.fps);
    const track = stream.getVideoTracks()[0];
    const settings = { width: config.width, height: config.height, frameRate: config.fps, facingMode: "user", deviceId: "integrated" };
    Object.defineProperty(track, "label", { get: () => "Integrated Camera" });
    track.getSettings = () => settings;

    let restIndex = 0, direction = 1, played = 0, piece = null, at = 0, ended = 0;
    t0 = performance.now();
    setInterval(() => {
      const t = now();
      if (piece === null && played < moves.length && asked[played] !== undefined && t >= asked[played] + config.latency_s) {
        piece = moves[played]; at = 0; played += 1;
      }
      if (piece === null && played && done[played - 1] === undefined && t >= ended + config.retry_s) {
        piece = moves[played - 1]; at = 0;
      }
      if (piece !== null) {
        context.drawImage(piece[at], 0, 0);
        at += 1;
        if (at === piece.length) { piece = null; ended = t; }
        return;
      }
      context.drawImage(rest[restIndex], 0, 0);
      if (rest.length > 1) {
        if (restIndex + direction < 0 || restIndex + direction >= rest.length) direction = -direction;
        restIndex += direction;
      }
    }, 1000 / config.fps);
    return stream;
  };
})();
