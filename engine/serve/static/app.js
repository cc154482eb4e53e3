// mprt serve page: camera -> (frame code stamped) -> WebRTC -> server; output video back; latency read from pixels.
// No build step, no external resources. Frame-code layout: engine/serve/framecode.py (keep the two in step).
"use strict";

const CELLS = 16, CODE_BITS = 10, CHECK_BITS = 4, CODE_MOD = 1 << CODE_BITS, MIN_CONTRAST = 64;
const SEND_WIDTH = 256;   // camera frames are scaled to this width before sending (cheap to encode and track)
const NO_CAMERA_FPS = 15;
const KEEP = 300;         // displayed frames the percentiles are taken over

const $ = (id) => document.getElementById(id);
const state = {
  pc: null, channel: null, session: null, portrait: "builtin", camera: null, timer: null,
  code: 0, stamps: new Map(), g2g: [], displayedTimes: [], displayed: 0, unreadable: 0,
  server: null, lastFrame: null, errors: [], status: "ready", running: false,
  serverFrames: new Map(),  // code -> the server's timing of that frame (data channel)
  log: [],                  // displayed frames: {t, code, g2g, wait, compute, server} (for scripts)
};
window.mprt = state;  // for scripts and tests

function setStatus(text, isError = false) {
  state.status = text;
  if (isError) state.errors.push(text);
  const el = $("status");
  el.textContent = text;
  el.classList.toggle("error", isError);
}

// ---- frame code (see framecode.py) --------------------------------------------------------------
const roundHalfUp = (x) => Math.floor(x + 0.5);
const stripHeight = (w) => Math.max(2, roundHalfUp(w / CELLS));
const checkBits = (c) => (c ^ (c >> 4) ^ (c >> 8)) & ((1 << CHECK_BITS) - 1);

function drawCode(ctx, w, y0, code) {
  const word = (code << CHECK_BITS) | checkBits(code), n = CODE_BITS + CHECK_BITS;
  const bits = [1, 0];
  for (let i = 0; i < n; i++) bits.push((word >> (n - 1 - i)) & 1);
  const h = stripHeight(w);
  for (let i = 0; i < CELLS; i++) {
    const x0 = roundHalfUp(i * w / CELLS), x1 = roundHalfUp((i + 1) * w / CELLS);
    ctx.fillStyle = bits[i] ? "#fff" : "#000";
    ctx.fillRect(x0, y0, x1 - x0, h);
  }
}

function readCode(data, w, h) {  // RGBA pixels of the strip (w x h)
  const cw = w / CELLS, y0 = Math.floor(h * 0.25), y1 = Math.max(y0 + 1, Math.round(h * 0.75));
  const levels = [];
  for (let i = 0; i < CELLS; i++) {
    const x0 = Math.floor(i * cw + cw * 0.25), x1 = Math.max(x0 + 1, Math.round(i * cw + cw * 0.75));
    let sum = 0, count = 0;
    for (let y = y0; y < y1; y++) {
      for (let x = x0; x < x1; x++) {
        const k = (y * w + x) * 4;
        sum += 0.299 * data[k] + 0.587 * data[k + 1] + 0.114 * data[k + 2];
        count++;
      }
    }
    levels.push(sum / count);
  }
  const white = levels[0], black = levels[1];
  if (white - black < MIN_CONTRAST) return null;
  const threshold = (white + black) / 2;
  let word = 0;
  for (let i = 2; i < CELLS; i++) word = (word << 1) | (levels[i] > threshold ? 1 : 0);
  const code = word >> CHECK_BITS;
  return checkBits(code) === (word & ((1 << CHECK_BITS) - 1)) ? code : null;
}

// ---- sending side: camera (or placeholder) -> stamped canvas -> track -----------------------------
function makeSender(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height + stripHeight(width);
  const ctx = canvas.getContext("2d", { willReadFrequently: false });
  const stream = canvas.captureStream(0);
  const track = stream.getVideoTracks()[0];
  return {
    canvas, ctx, stream, track, width, height,
    send(draw, captured) {  // draw the picture, stamp the next code, push one frame
      draw(ctx, width, height);
      const code = state.code;
      state.code = (state.code + 1) % CODE_MOD;
      drawCode(ctx, width, height, code);
      state.stamps.set(code, captured);
      if (track.requestFrame) track.requestFrame();
    },
  };
}

async function startCamera(deviceId) {
  const constraints = { video: deviceId && deviceId !== "default" ? { deviceId: { exact: deviceId } } : true, audio: false };
  const media = await navigator.mediaDevices.getUserMedia(constraints);
  const video = $("camera-view");
  video.srcObject = media;
  await video.play().catch(() => {});
  while (!video.videoWidth) await new Promise((r) => setTimeout(r, 20));
  const width = Math.min(SEND_WIDTH, video.videoWidth - (video.videoWidth % 16)) || SEND_WIDTH;
  let height = Math.round(width * video.videoHeight / video.videoWidth);
  height -= height % 2;
  const sender = makeSender(width, height);
  $("camera-frame").style.aspectRatio = `${width} / ${height}`;
  const onFrame = (now, meta) => {
    if (!state.running) return;
    // the camera's capture time when the browser gives it (same clock as `now`), else the time we see the frame
    const captured = meta && meta.captureTime && meta.captureTime <= now && now - meta.captureTime < 1000 ? meta.captureTime : now;
    sender.send((ctx, w, h) => ctx.drawImage(video, 0, 0, w, h), captured);
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  refreshCameras();
  return { sender, stop: () => media.getTracks().forEach((t) => t.stop()) };
}

function startPlaceholder() {
  const sender = makeSender(SEND_WIDTH, SEND_WIDTH);
  const frame = $("camera-frame");
  $("camera-view").srcObject = null;
  frame.style.aspectRatio = "1 / 1";
  sender.canvas.id = "placeholder";
  frame.appendChild(sender.canvas);
  const t0 = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    sender.send((ctx, w, h) => {
      const phase = ((now - t0) / 4000) % 1;
      ctx.fillStyle = `hsl(${Math.round(phase * 360)}, 35%, 30%)`;
      ctx.fillRect(0, 0, w, h);
      ctx.fillStyle = "#ddd";
      ctx.font = "15px sans-serif";
      ctx.fillText("no camera:", 12, h / 2 - 8);
      ctx.fillText("built-in motion", 12, h / 2 + 12);
    }, now);
  }, 1000 / NO_CAMERA_FPS);
  return { sender, stop: () => { clearInterval(timer); sender.canvas.remove(); } };
}

// ---- receiving side: read the code of every displayed output frame ------------------------------
function watchOutput(video) {
  const reader = document.createElement("canvas");
  const ctx = reader.getContext("2d", { willReadFrequently: true });
  const onFrame = (now, meta) => {
    if (!state.running) return;
    const w = meta.width, h = meta.height, sh = stripHeight(w);
    if (w && h > sh) {
      if (reader.width !== w || reader.height !== h) { reader.width = w; reader.height = h; }
      ctx.drawImage(video, 0, 0, w, h);
      const code = readCode(ctx.getImageData(0, h - sh, w, sh).data, w, sh);
      const shown = meta.expectedDisplayTime || now;
      state.displayed++;
      state.displayedTimes.push(shown);
      if (state.displayedTimes.length > 64) state.displayedTimes.shift();
      if (code === null) {
        state.unreadable++;
      } else if (state.stamps.has(code)) {
        const g2g = shown - state.stamps.get(code);
        state.stamps.delete(code);  // a code is matched once
        state.g2g.push(g2g);
        if (state.g2g.length > KEEP) state.g2g.shift();
        state.lastFrame = { code, g2g };
        const srv = state.serverFrames.get(code) || {};
        state.serverFrames.delete(code);
        state.log.push({ t: shown, code, g2g, wait: srv.wait_ms, compute: srv.compute_ms, server: srv.server_ms });
        if (state.log.length > 5000) state.log.shift();
        send({ type: "displayed", code, g2g_ms: g2g });
      }
    }
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
}

// ---- stats --------------------------------------------------------------------------------------
function percentile(values, p) {
  if (!values.length) return null;
  const a = [...values].sort((x, y) => x - y);
  const k = (a.length - 1) * p / 100, lo = Math.floor(k), hi = Math.ceil(k);
  return a[lo] + (a[hi] - a[lo]) * (k - lo);
}

function displayedFps() {  // the last 30 frames within a minute: slow CPU streams still show their rate
  const t = state.displayedTimes, now = performance.now();
  const recent = t.filter((x) => now - x < 60000).slice(-30);
  return recent.length > 1 ? (recent.length - 1) / ((now - recent[0]) / 1000) : 0;
}

const ms = (v) => (v === null || v === undefined ? "–" : `${Math.round(v)} ms`);

function renderOverlay() {
  const fps = displayedFps(), p50 = percentile(state.g2g, 50), p95 = percentile(state.g2g, 95);
  state.summary = { fps, g2g_p50_ms: p50, g2g_p95_ms: p95, displayed: state.displayed, matched: state.g2g.length };
  $("badge").textContent = state.running ? `${fps.toFixed(1)} fps · g2g p50 ${ms(p50)} p95 ${ms(p95)}` : "";
  const s = state.server;
  const lines = [
    `output ${fps.toFixed(1)} fps displayed (${state.displayed} frames) · glass-to-glass p50 ${ms(p50)} · p95 ${ms(p95)} (${state.g2g.length} frames matched)`,
  ];
  if (s) {
    const lat = s.latency || {}, share = lat.share || {}, st = s.stages || {};
    const pct = (x) => (x === undefined ? "–" : `${Math.round(x * 100)}%`);
    lines.push(`dropped: ${s.dropped_camera} camera + ${s.dropped_guidance} guidance frames (newest kept) · no face: ${s.no_face} · preset ${s.preset}`);
    lines.push(`server p50: wait ${ms(lat.wait && lat.wait.p50_ms)} · track ${ms(lat.track && lat.track.p50_ms)} · maps ${ms(lat.render && lat.render.p50_ms)} · ` +
      `guidance enc ${ms(st.guidance_encode)} · unet ${ms(st.unet)} · decode ${ms(st.decode)} · frame total ${ms(lat.server && lat.server.p50_ms)}`);
    lines.push(`where the latency goes: queueing ${pct(share.wait)} · compute ${pct(share.compute)} · transport ${pct(share.transport)}`);
    if (s.error) lines.push(`server error: ${s.error}`);
  }
  $("overlay").textContent = lines.join("\n");
  send({ type: "client", fps, displayed: state.displayed });
}

// ---- session ------------------------------------------------------------------------------------
function send(message) {
  const ch = state.channel;
  if (ch && ch.readyState === "open") ch.send(JSON.stringify(message));
}

async function waitForIce(pc) {
  if (pc.iceGatheringState === "complete") return;
  await new Promise((resolve) => {
    const done = () => { if (pc.iceGatheringState === "complete") resolve(); };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, 3000);
  });
}

async function start() {
  $("start").disabled = true;
  state.stamps.clear(); state.g2g = []; state.displayed = 0; state.displayedTimes = []; state.server = null;
  state.serverFrames.clear(); state.log = [];
  const useCamera = $("camera").value !== "none";
  try {
    state.running = true;
    setStatus(useCamera ? "opening the camera…" : "starting with the built-in motion…");
    state.camera = useCamera ? await startCamera($("camera").value) : startPlaceholder();
    const pc = new RTCPeerConnection({ iceServers: [] });
    state.pc = pc;
    state.channel = pc.createDataChannel("mprt");
    state.channel.onmessage = (e) => onMessage(JSON.parse(e.data));
    const sender = pc.addTransceiver(state.camera.sender.track, { direction: "sendrecv" }).sender;
    try {  // keep the frame-code cells legible: lower the frame rate, not the resolution, under load
      const params = sender.getParameters();
      params.degradationPreference = "maintain-resolution";
      await sender.setParameters(params);
    } catch (e) { /* not supported: fine */ }
    pc.ontrack = (e) => {
      const stream = new MediaStream([e.track]);
      for (const id of ["guide-view", "output-view"]) { $(id).srcObject = stream; $(id).play().catch(() => {}); }
      watchOutput($("output-view"));
    };
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "connected") setStatus("streaming");
      if (pc.connectionState === "failed") { setStatus("connection failed", true); stop(); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await waitForIce(pc);
    setStatus("connecting…");
    const res = await fetch("/api/offer", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: "offer", preset: $("preset").value,
                             driving: useCamera ? "camera" : "builtin", portrait: state.portrait }),
    });
    const answer = await res.json();
    if (!res.ok) throw new Error(answer.error || `HTTP ${res.status}`);
    state.session = answer.session;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
    $("stop").disabled = false;
    state.timer = setInterval(renderOverlay, 500);
  } catch (err) {
    setStatus(`could not start: ${err.message || err}`, true);
    await stop();
  }
}

async function stop() {
  state.running = false;
  clearInterval(state.timer);
  const sid = state.session;
  state.session = null;
  if (sid) await fetch(`/api/session/${encodeURIComponent(sid)}/close`, { method: "POST" }).catch(() => {});
  if (state.pc) state.pc.close();
  if (state.camera) state.camera.stop();
  state.pc = state.channel = state.camera = null;
  $("start").disabled = false;
  $("stop").disabled = true;
  renderOverlay();
  if (!state.errors.length || state.status === "streaming") setStatus("stopped");
}

function onMessage(m) {
  if (m.type === "stats") {
    // mprt serve --ray: the replica holding this session went away; it restarts on another one
    if (m.notice && m.notice !== state.server?.notice) setStatus(m.notice);
    state.server = m;
  }
  else if (m.type === "frame") {
    state.serverFrames.set(m.code, m);
    if (state.serverFrames.size > 256) state.serverFrames.delete(state.serverFrames.keys().next().value);
  }
  else if (m.type === "error") setStatus(`server: ${m.message}`, true);
  else if (m.type === "closed") {
    setStatus(m.error ? `session ended: ${m.error}` : `session ended (${m.reason})`, !!m.error);
    if (state.running) stop();
  }
}

// ---- portrait -----------------------------------------------------------------------------------
async function upload(file) {
  setStatus(`uploading ${file.name}…`);
  try {
    const res = await fetch("/api/portrait", { method: "POST", body: file });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || `HTTP ${res.status}`);
    state.portrait = body.portrait;
    $("portrait-thumb").src = URL.createObjectURL(file);
    $("portrait-name").textContent = file.name;
    setStatus(`portrait ready (${body.width}x${body.height})`);
  } catch (err) {
    setStatus(`${err.message || err}`, true);
  }
}

function useBuiltin() {
  state.portrait = "builtin";
  $("portrait-thumb").src = "/api/portrait/builtin.png";
  $("portrait-name").textContent = "built-in";
}

async function refreshCameras() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "videoinput" && d.deviceId);
  const select = $("camera"), chosen = select.value;
  for (const d of devices) {
    if ([...select.options].some((o) => o.value === d.deviceId)) continue;
    const option = new Option(d.label || `camera ${select.options.length - 1}`, d.deviceId);
    select.add(option, select.options.length - 1);
  }
  select.value = chosen;
}

async function init() {
  if (new URLSearchParams(location.search).has("token")) history.replaceState(null, "", location.pathname);  // now in a cookie
  if (!navigator.mediaDevices || !window.isSecureContext) {
    $("camera").value = "none";
    $("camera").options[0].disabled = true;
    setStatus("no camera access here (the page is not a secure context): using the built-in motion");
  }
  try {
    const info = await (await fetch("/api/info")).json();
    $("model").textContent = `${info.model} · ${info.size}px · ${info.sessions}/${info.max_sessions} sessions`;
    for (const p of info.presets) $("preset").add(new Option(p, p));
    if (!info.driving.includes("camera")) {
      $("camera").value = "none";
      $("camera").options[0].disabled = true;
      setStatus("the server has no face tracking configured: using the built-in motion");
    }
  } catch (err) {
    setStatus(`server not reachable: ${err.message || err}`, true);
  }
  refreshCameras().catch(() => {});
  $("start").onclick = start;
  $("stop").onclick = stop;
  $("preset").onchange = () => send({ type: "preset", name: $("preset").value });
  $("file").onchange = (e) => { if (e.target.files[0]) upload(e.target.files[0]); };
  $("builtin").onclick = useBuiltin;
  const drop = $("drop");
  drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
  drop.ondragleave = () => drop.classList.remove("over");
  drop.ondrop = (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    if (e.dataTransfer.files[0]) upload(e.dataTransfer.files[0]);
  };
  addEventListener("pagehide", () => { if (state.session) navigator.sendBeacon(`/api/session/${encodeURIComponent(state.session)}/close`); });
}

init();
