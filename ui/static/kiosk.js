// The unattended kiosk screen: follows /kiosk/events (SSE) and shows each view.
// Views arrive fully translated from the server; this file holds no user-facing text.
"use strict";
(function () {
  const body = document.body;
  const lang = body.dataset.lang;
  const $ = (id) => document.getElementById(id);
  let gateTimer = null;
  let previewTimer = null;
  let previewOn = false;
  let lastSpoken = "";
  let lastResult = null;

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
  function setPreview(on) {
    if (body.dataset.hasPreview !== "yes") on = false;
    if (on === previewOn) return;
    previewOn = on;
    clearTimeout(previewTimer);
    if (on) fetchFrame(); else showStandby();
  }
  function showStandby() {
    $("k-preview-img").hidden = true;
    $("k-standby").hidden = false;
  }
  async function fetchFrame() {
    if (!previewOn) return;
    try {
      const res = await fetch("/kiosk/preview.jpg", { cache: "no-store" });
      if (res.status === 200) {
        const url = URL.createObjectURL(await res.blob());
        const img = $("k-preview-img");
        const old = img.src;
        img.src = url;
        img.hidden = false;
        $("k-standby").hidden = true;
        if (old && old.startsWith("blob:")) URL.revokeObjectURL(old);
      } else {
        showStandby();
      }
    } catch (e) {
      showStandby();
    }
    previewTimer = setTimeout(fetchFrame, 500);
  }

  // --- views -------------------------------------------------------------------------------
  function setText(id, text) {
    const el = $(id);
    el.textContent = text || "";
    el.hidden = !text;
  }
  function startGate(seconds) {
    clearInterval(gateTimer);
    const gate = $("k-gate");
    if (!seconds) { gate.hidden = true; return; }
    const total = seconds;
    let left = seconds;
    const fmt = body.dataset.closes;
    const draw = () => {
      $("k-gate-count").textContent = fmt.replace("{s}", String(Math.max(0, left)));
      $("k-gate-bar").style.width = (100 * Math.max(0, left) / total) + "%";
    };
    gate.hidden = false;
    draw();
    gateTimer = setInterval(() => {
      left -= 1;
      draw();
      if (left <= 0) { clearInterval(gateTimer); gate.hidden = true; }
    }, 1000);
  }
  function render(view) {
    body.className = "kiosk phase-" + view.phase + (view.result ? " result-" + view.result.kind : "");
    const result = view.result;
    $("k-result").hidden = !result;
    $("k-icon").textContent = result ? result.icon : "";
    $("k-word").textContent = result ? result.word : "";
    $("k-prompt").textContent = view.prompt || "";
    const list = $("k-reasons");
    list.replaceChildren();
    if (result) {
      for (const r of result.reasons) {
        const li = document.createElement("li");
        li.textContent = r;
        list.appendChild(li);
      }
    }
    setText("k-next", result ? result.next : "");
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
    startGate(result && result.kind === "pass" ? view.gate_closes_in_s : 0);
    if (view.sound && view.result_id !== lastResult) play(view.sound);
    lastResult = view.result_id;
    if (view.speak) speak(view.speak); else lastSpoken = "";
    setPreview(!!view.preview);
    window.kioskView = view;  // for tests
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

  function clock() {
    const now = new Date();
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
  setInterval(clock, 10000);

  // --- two-way kiosk: the person says which way they go -----------------------------------
  for (const btn of document.querySelectorAll(".k-dir-btn")) {
    btn.addEventListener("click", async () => {
      const res = await fetch("/kiosk/direction", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ direction: btn.dataset.dir }),
      });
      if (!res.ok) return;
      for (const other of document.querySelectorAll(".k-dir-btn")) {
        const on = other === btn;
        other.classList.toggle("on", on);
        other.setAttribute("aria-pressed", on ? "true" : "false");
      }
    });
  }

  function connect() {
    const es = new EventSource("/kiosk/events?lang=" + encodeURIComponent(lang));
    es.addEventListener("view", (e) => { $("k-offline").hidden = true; render(JSON.parse(e.data)); });
    es.addEventListener("banner", (e) => renderBanner(JSON.parse(e.data)));
    es.onopen = () => { $("k-offline").hidden = true; };
    es.onerror = () => { $("k-offline").hidden = false; };  // EventSource reconnects by itself
  }
  connect();
  checkAudio();
  setInterval(checkAudio, 5000);
  if ("speechSynthesis" in window) window.speechSynthesis.getVoices();
})();
