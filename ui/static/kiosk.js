// The unattended kiosk screen: follows /kiosk/events (SSE) and shows each view.
// Views arrive fully translated from the server; this file holds no user-facing text.
// An ES module (kiosk.html loads it as one): strict, and its names stay in this file. The
// screen's parts share its state (the view shown, the lease, the stream) at its top level.
const body = document.body;
const lang = body.dataset.lang;
const $ = (id) => document.getElementById(id);
let gateTimer = null;
let previewTimer = null;
let previewOn = false;
let lastSpoken = "";
let lastResult = null;
// The page's own intervals (silences, holds) run on a monotonic clock: the wall clock
// steps (NTP setting a Pi's clock after a boot), and a step back of an hour made an hour
// of silence from the daemon unseen. Date.now() is for the kiosk's clock on the screen.
const mono = () => performance.now();
// Every request the page makes has a deadline: one that never got an answer (the daemon
// busy or restarting, a connection half open) held one of Chromium's six connections to
// the daemon for good, and what waited for it (the preview, the language link) with it.
// ``read`` reads the answer within the same deadline; it is given up past ``ms``.
const REQUEST_MS = 5000;
async function ask(url, options, read, ms) {
  const stop = new AbortController();
  const timer = setTimeout(() => stop.abort(), ms || REQUEST_MS);
  try {
    const res = await fetch(url, Object.assign({ cache: "no-store" }, options,
      { signal: stop.signal }));
    return await read(res);
  } finally {
    clearTimeout(timer);
  }
}

// --- fingers only tap: a long press (a right click) opens no browser menu over the kiosk
// (back, reload, print, save as...), nothing is selected or dragged away to be opened.
// A middle click (auxclick) on the language link opened it in a new window over the kiosk:
// no button but the first does anything here, nor a middle press's autoscroll.
function fingersOnly() {
  for (const kind of ["contextmenu", "selectstart", "dragstart", "drop", "auxclick"]) {
    document.addEventListener(kind, (e) => e.preventDefault(), { capture: true });
  }
  document.addEventListener("mousedown", (e) => { if (e.button !== 0) e.preventDefault(); },
    { capture: true });
  document.addEventListener("dragover", (e) => e.preventDefault());
}
fingersOnly();
// No key does anything here: a USB keyboard plugged in would reload (F5), print (Ctrl+P),
// open a file (Ctrl+O), zoom for good (Ctrl+plus: Chromium keeps it for the site), go back
// (Alt+Left) or open the developer tools (F12); a code reader left in USB keyboard mode
// types every code it reads. The page handles a key first, so refusing it here keeps it
// from the browser: in an app window (the unit's --app) Chromium reserves no key, Ctrl+W
// and Ctrl+N too. Only where this page does not run (loading, Chromium's error page) do
// they reach it: see the lease below, and the unit starts a closed screen again at once.
function noKeys() {
  window.addEventListener("keydown", (e) => e.preventDefault(), { capture: true });
  window.addEventListener("wheel", (e) => { if (e.ctrlKey) e.preventDefault(); },
    { capture: true, passive: false });
}
noKeys();

// --- one page of the screen owns the chime, the voice and the beat -----------------------
// Chromium opens a second window on the kiosk page (Ctrl+N where the page does not refuse
// it first: while a page loads, on Chromium's error page): both chimed each result and
// spoke, and the live one beat for the one hidden behind it. The newest page (the one on
// top) takes the lease from the one before, which waits for it back (the newer one closed
// with Ctrl+W). Without Web Locks (a screen on another machine over plain http) each page
// is its own, as before.
const LEASE = "kiosk-screen-owner";
let owner = !(navigator.locks && navigator.locks.request);
function lease(steal) {
  navigator.locks.request(LEASE, { steal: steal }, () => {
    owner = true;
    return new Promise(() => {});  // held as long as this page lives
  }).catch(() => { owner = false; lease(false); });  // a newer page took it: wait for it
}
if (!owner) lease(true);

// --- sound: generated with WebAudio, no audio files -----------------------------------
let audio = null;
function audioContext() {
  if (!audio) {
    const Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return null;
    audio = new Ctx();
  }
  return audio;
}
function tone(ctx, freq, start, dur, type, gain) {
  const osc = ctx.createOscillator();
  const amp = ctx.createGain();
  osc.type = type;
  osc.frequency.value = freq;
  amp.gain.setValueAtTime(0.0001, ctx.currentTime + start);
  amp.gain.exponentialRampToValueAtTime(gain, ctx.currentTime + start + 0.02);
  amp.gain.exponentialRampToValueAtTime(0.0001, ctx.currentTime + start + dur);
  osc.connect(amp).connect(ctx.destination);
  osc.start(ctx.currentTime + start);
  osc.stop(ctx.currentTime + start + dur + 0.05);
}
function play(kind) {
  const ctx = audioContext();
  if (!ctx) return;
  if (ctx.state === "suspended") { ctx.resume(); }
  if (kind === "pass") {           // two rising, bright notes
    tone(ctx, 880, 0, 0.18, "sine", 0.4);
    tone(ctx, 1320, 0.2, 0.28, "sine", 0.4);
  } else if (kind === "deny") {    // two low, rough buzzes: different in pitch and timbre
    tone(ctx, 220, 0, 0.35, "square", 0.25);
    tone(ctx, 180, 0.45, 0.45, "square", 0.25);
  } else if (kind === "remeasure") {  // one soft mid tone: hold the wrist again
    tone(ctx, 660, 0, 0.4, "triangle", 0.35);
  } else if (kind === "guard") {  // a three-note call, high-low-high: go to the guard
    tone(ctx, 784, 0, 0.22, "triangle", 0.35);
    tone(ctx, 523, 0.26, 0.22, "triangle", 0.35);
    tone(ctx, 784, 0.52, 0.3, "triangle", 0.35);
  }
  window.kioskSounds = (window.kioskSounds || 0) + 1;  // for tests
}
function speak(text) {
  if (!text || text === lastSpoken || !("speechSynthesis" in window)) return;
  lastSpoken = text;
  const voices = window.speechSynthesis.getVoices();
  const want = lang === "zh-CN" ? "zh" : "en";
  const voice = voices.find((v) => v.lang && v.lang.toLowerCase().startsWith(want));
  if (!voice) return;              // no voice for this language: the words are on screen
  const u = new SpeechSynthesisUtterance(text);
  u.voice = voice;
  u.lang = voice.lang;
  window.speechSynthesis.cancel();
  window.speechSynthesis.speak(u);
}
const soundBtn = $("k-sound");
function checkAudio() {
  const ctx = audioContext();
  soundBtn.hidden = !ctx || ctx.state !== "suspended";
}
soundBtn.addEventListener("click", () => {
  const ctx = audioContext();
  if (ctx) ctx.resume().then(checkAudio);
});

// --- preview: a JPEG every 500 ms while someone is at the gate ------------------------
// Each time the preview is turned on starts one polling run; a frame or a poll of an
// earlier run that comes back late does nothing: shown after the person left, it stayed
// over the standby panel, and its poll ran on beside the new run's (they multiplied).
let previewRun = 0;
function setPreview(on) {
  if (body.dataset.hasPreview !== "yes") on = false;
  if (on === previewOn) return;
  previewOn = on;
  previewRun += 1;
  clearTimeout(previewTimer);
  if (on) fetchFrame(previewRun); else showStandby();
}
function showStandby() {
  const img = $("k-preview-img");
  img.hidden = true;
  $("k-standby").hidden = false;
  if (img.src.startsWith("blob:")) {  // the last frame is not kept either
    URL.revokeObjectURL(img.src);
    img.removeAttribute("src");
  }
}
async function fetchFrame(run) {
  if (!previewOn || run !== previewRun) return;
  let blob = null;
  try {
    blob = await ask("/kiosk/preview.jpg", {},
      (res) => (res.status === 200 ? res.blob() : null));
  } catch (e) { /* no frame this time */ }
  if (run !== previewRun) return;  // the person left (or the next came) meanwhile
  if (blob) {
    const url = URL.createObjectURL(blob);
    const img = $("k-preview-img");
    const old = img.src;
    img.src = url;
    img.hidden = false;
    $("k-standby").hidden = true;
    if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
  } else {
    showStandby();
  }
  previewTimer = setTimeout(() => fetchFrame(run), 500);
}

// --- views -------------------------------------------------------------------------------
const ACTIVE = ["scan", "measure", "hold", "checking"];
const denyHoldMs = 1000 * Number(body.dataset.denyHoldS || 6);
let shown = null;        // the view on screen
let holdUntil = 0;       // a non-pass result stays at least until then...
let pending = null;      // ...and the idle view that waits for it
let pendingTimer = null;
let sawResult = false;   // a passage ended on this page (the language then reverts)
let resultBefore = null; // the result already on screen when the page loaded: not this page's

function setText(id, text) {
  const el = $(id);
  el.textContent = text || "";
  el.hidden = !text;
}
// The countdown runs to the gate's lock: ``seconds`` is what is left of the pulse when the
// view was made (a page loaded mid-pulse gets less than the pulse); the bar is of the pulse.
function startGate(seconds) {
  clearInterval(gateTimer);
  const gate = $("k-gate");
  if (!seconds) { gate.hidden = true; return; }
  const ends = mono() + 1000 * seconds;
  const pulseMs = 1000 * Math.max(seconds, Number(body.dataset.pulseS) || 0);
  const fmt = body.dataset.closes;
  const draw = () => {
    const left = Math.max(0, ends - mono());
    $("k-gate-count").textContent = fmt.replace("{s}", String(Math.ceil(left / 1000)));
    $("k-gate-bar").style.width = (100 * left / pulseMs) + "%";
    if (left <= 0) { clearInterval(gateTimer); gate.hidden = true; }
  };
  gate.hidden = false;
  draw();
  gateTimer = setInterval(draw, 250);
}
function bodyClass(view) {
  return "kiosk phase-" + view.phase + " look-" + view.look +
    (view.result ? " result-" + view.result.kind : "") +
    (body.classList.contains("offline") ? " offline" : "");
}
function renderSide(view) {
  $("k-wrist").hidden = !view.wrist;
  $("k-standby").hidden = !!view.wrist;
  $("k-aim").hidden = !!view.wrist;
  setText("k-hint", view.hint);
  setPreview(!!view.preview && !view.wrist);
}
function render(view) {
  body.className = bodyClass(view);
  const head = view.headline;
  const result = view.result;
  $("k-result").hidden = !head;
  $("k-icon").textContent = head ? head.icon : "";
  $("k-word").textContent = head ? head.word : "";
  $("k-prompt").textContent = view.prompt || "";
  const list = $("k-reasons");
  list.replaceChildren();
  for (const r of (result ? result.reasons : [])) {
    const li = document.createElement("li");
    li.textContent = r;
    list.appendChild(li);
  }
  list.hidden = list.childElementCount === 0;
  const temp = $("k-temp");
  temp.hidden = !view.temp;
  temp.classList.toggle("fever", !!view.temp_fever);
  $("k-temp-value").textContent = view.temp || "";
  setText("k-hello", view.hello);
  setText("k-dir", view.direction);
  const buttons = document.querySelectorAll(".k-dir-btn");
  if (buttons.length && !result) {
    $("k-dir").hidden = true;  // the buttons show the direction themselves
    for (const b of buttons) {
      const on = b.dataset.dir === view.direction_code;
      b.classList.toggle("on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    }
  }
  for (const b of buttons) b.disabled = !view.dirs_live;
  startGate(result && result.kind === "pass" ? view.gate_closes_in_s : 0);
  const fresh = result && view.result_id !== (shown && shown.result_id);
  // A result the page before held, given again in this language: the rest of its hold.
  const holdMs = view.hold_s ? 1000 * view.hold_s : denyHoldMs;
  if (fresh && result.kind !== "pass") holdUntil = mono() + holdMs;
  if (result && shown === null && !view.hold_s) resultBefore = view.result_id;
  if (result && view.result_id !== resultBefore) sawResult = true;
  if (owner && view.sound && view.result_id !== lastResult) play(view.sound);
  lastResult = view.result_id;
  if (owner && view.speak) speak(view.speak); else lastSpoken = "";
  renderSide(view);
  shown = view;
  window.kioskView = view;  // for tests
  if (view.phase === "idle" && sawResult) revertLanguage();
}
// A deny, a fault or a re-measure stays until the next person starts or for at least
// denyHoldMs: the engine's own hold may be shorter than a slow reader needs.
function show(view) {
  const holding = shown && shown.result && shown.result.kind !== "pass" && mono() < holdUntil;
  const next = ACTIVE.includes(view.phase) || view.phase === "out_of_order" ||
    (view.result && view.result_id !== (shown && shown.result_id));
  clearTimeout(pendingTimer);
  pending = null;
  if (holding && !next) {
    pending = view;
    pendingTimer = setTimeout(() => { const v = pending; pending = null; if (v) render(v); },
      holdUntil - mono());
    return;
  }
  render(view);
}
// What the offline screen says is handed over while online: where to call when no guard
// is on duty (the daemon knows the hours), or the guard.
function renderOffline(view) {
  if (view.offline_next) $("k-offline-next").textContent = view.offline_next;
}
function renderBanner(notes) {
  const banner = $("k-banner");
  banner.replaceChildren();
  for (const n of notes) {
    const span = document.createElement("span");
    span.textContent = "⚠ " + n;
    banner.appendChild(span);
  }
  banner.hidden = notes.length === 0;
}

// --- language: a visitor's choice lasts one passage -------------------------------------
const siteLang = body.dataset.siteLang;
const switchedAt = mono();
const LANG_IDLE_MS = 60000;  // chose a language and walked away: back after a minute
// Another page of the kiosk is loaded only once the daemon answers for it: a load that
// fails leaves Chromium's error page, which has none of this page's reconnecting (the
// unattended screen stayed on it after the daemon was back). Not now: asked again later.
let leaving = false;
async function go(url) {
  if (leaving || body.classList.contains("offline")) return;
  leaving = true;
  try {
    const ok = await ask(url, { headers: { Accept: "text/html" } }, (res) => res.ok);
    if (ok) { window.location.replace(url); return; }
  } catch (e) { /* the daemon is away, or did not answer in time: stay */ }
  leaving = false;
}
// A deny held on screen goes with the page to the other language, for the rest of its hold:
// the resident taps the other language to read it (the engine's own hold may be over).
function heldQuery() {
  const holding = shown && shown.result && shown.result.kind !== "pass" && mono() < holdUntil;
  return holding ? "&held=" + encodeURIComponent(shown.result_id) : "";
}
$("k-lang").addEventListener("click", (e) => {
  e.preventDefault();
  go(e.currentTarget.href + heldQuery());
});
// ...and this page, loaded for it, asks its first stream for that result.
let heldAsked = new URLSearchParams(window.location.search).get("held");
function heldOnce() {
  const held = heldAsked;
  heldAsked = null;
  return held ? "&held=" + encodeURIComponent(held) : "";
}
function revertLanguage() {
  if (lang !== siteLang) go("/kiosk");
}
// The daemon restarted with another config or release (its stream names another edition
// than this page's): the page loads itself again, once nobody is at the gate. It never
// reloaded by itself, and showed the old site name, language, buttons and code for weeks.
let stale = false;
const idle = () => !shown || (shown.phase === "idle" && !pending);
setInterval(() => {
  if (stale && idle()) go("/kiosk");
  else if (lang !== siteLang && mono() - switchedAt > LANG_IDLE_MS && idle()) revertLanguage();
}, 5000);

// --- an LCD panel holding one still picture for hours keeps its ghost (image retention):
// all the screen shows moves round a small square, 2 px a step, every few minutes.
const ORBIT_MS = 5 * 60 * 1000;
const ORBIT = [[0, 0], [2, 0], [2, 2], [0, 2], [-2, 2], [-2, 0], [-2, -2], [0, -2], [2, -2]];
function orbitScreen() {
  let orbit = 0;
  setInterval(() => {
    orbit = (orbit + 1) % ORBIT.length;
    body.style.setProperty("--k-orbit-x", ORBIT[orbit][0] + "px");
    body.style.setProperty("--k-orbit-y", ORBIT[orbit][1] + "px");
  }, ORBIT_MS);
}
orbitScreen();

// --- the kiosk's clock (the demo's scenario clock), not the browser's -------------------
let clockOffsetMs = Number(body.dataset.nowMs || Date.now()) - Date.now();
function clock() {
  const now = new Date(Date.now() + clockOffsetMs);
  const opts = { hour: "2-digit", minute: "2-digit", hour12: false };
  try {
    opts.timeZone = body.dataset.tz;  // the site's zone, whatever the browser's
    $("k-clock").textContent = now.toLocaleTimeString(lang, opts);
  } catch (e) {
    delete opts.timeZone;
    $("k-clock").textContent = now.toLocaleTimeString(lang, opts);
  }
}
clock();
setInterval(clock, 5000);

// --- two-way kiosk: the person says which way they go -----------------------------------
function directionButtons() {
  for (const btn of document.querySelectorAll(".k-dir-btn")) {
    btn.addEventListener("click", async () => {
      let ok = false;
      try {
        ok = await ask("/kiosk/direction", {
          method: "POST",
          headers: { "Content-Type": "application/json" },
          body: JSON.stringify({ direction: btn.dataset.dir }),
        }, (res) => res.ok);
      } catch (e) { /* not answered in time: the buttons show the daemon's next view */ }
      if (!ok) return;
      for (const other of document.querySelectorAll(".k-dir-btn")) {
        const on = other === btn;
        other.classList.toggle("on", on);
        other.setAttribute("aria-pressed", on ? "true" : "false");
      }
    });
  }
}
directionButtons();

// --- the stream (stream.js): a tick at least every 2 s; silence for 4 s means the link
// is gone; after 8 s of it the page drops the stream and opens a new one (a link that
// went dead without a word never fails an EventSource), and again while it stays silent.
const OFFLINE_AFTER_MS = 4000;
const RESTART_AFTER_MS = 8000;
const RECONNECT_MS = 2000;  // as the stream's own "retry: 2000"
function goOffline() {
  clearTimeout(pendingTimer);
  // A view waiting for a deny's hold is what the kiosk shows now: the offline screen hides
  // the deny anyway, and a link that comes back with only ticks must not bring it back.
  const waiting = pending;
  pending = null;
  if (waiting) render(waiting);
  clearInterval(gateTimer);
  setPreview(false);
  body.classList.add("offline");  // the last result is gone: it could be a stale pass
  window.kioskOfflineAt = Date.now();  // for tests
}
// --- the page says it runs: a page stuck in a loop (or a hung renderer) keeps its stream
// open, so the daemon cannot tell it from a live one by the stream. Beats come from this
// page's own timers, which a frozen main thread never runs; the screen unit's watcher asks
// /kiosk/watch, which goes stale when they stop, and restarts the screen. A hung
// compositor leaves the main thread and its timers running under a picture frozen on the
// screen: a beat is sent from a frame's callback only, which no frame drawn never calls.
const screenId = Array.from(crypto.getRandomValues(new Uint8Array(12)),
  (b) => b.toString(16).padStart(2, "0")).join("");
const beatMs = 1000 * Number(body.dataset.beatS || 10);
// One beat at a time, given up by the next one's time: beats that hung piled up.
let beating = false;
function beat() {
  if (beating || !owner) return;
  beating = true;
  ask("/kiosk/beat?screen=" + screenId, { method: "POST" }, () => null, beatMs)
    .catch(() => {})  // the daemon away: the stream says so
    .finally(() => { beating = false; });
}
let frameAsked = false;
setInterval(() => {
  if (frameAsked) return;  // still no frame since the last ask: no beat, and no pile
  frameAsked = true;
  window.requestAnimationFrame(() => { frameAsked = false; beat(); });
}, beatMs);

function watch() {
  const watched = window.watchedStream({
    url: () => "/kiosk/events?lang=" + encodeURIComponent(lang) + "&screen=" + screenId +
      heldOnce(),
    offlineMs: () => OFFLINE_AFTER_MS,
    restartMs: () => RESTART_AFTER_MS,
    onOffline: goOffline,  // the first view clears it
    onOnline: () => body.classList.remove("offline"),
    on: {
      view: (e) => {
        const view = JSON.parse(e.data);
        renderOffline(view);
        show(view);
      },
      banner: (e) => renderBanner(JSON.parse(e.data)),
      edition: (e) => { stale = JSON.parse(e.data).edition !== body.dataset.edition; },
      tick: (e) => {
        clockOffsetMs = JSON.parse(e.data).now_ms - Date.now();
        clock();
      },
    },
    onError: (es) => {
      // EventSource reconnects by itself after a lost connection, but an answer that is
      // not a stream (an HTTP error: a restarting proxy, a 5xx, a 429) closes it for good:
      // the unattended screen would stay offline until someone reloads it. Open a new one
      // (not if the watch did meanwhile).
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(() => watched.restartIf(es), RECONNECT_MS);
      }
    },
  });
}
watch();
checkAudio();
setInterval(checkAudio, 5000);
if ("speechSynthesis" in window) window.speechSynthesis.getVoices();
