// Guard console: live feed, alarms with sound, current state. Forms work without this file;
// it only keeps the live page current (SSE) and makes alarms audible. An ES module
// (guard_base.html loads it as one): strict, and its names stay in this file.
(function () {
  for (const id of ["print-card", "print-cards"]) {
    const printButton = document.getElementById(id);
    if (printButton) printButton.addEventListener("click", () => window.print());
  }
})();
(function () {
  // Half-typed input (a registration, a manual pass's reason) is asked about before the page
  // is left, by the language link, sign-out, the navigation or a reload: the browser's own
  // "leave this page?", only while a form holds unsent input, never kept anywhere (what the
  // guard typed about a person stays in the page: docs/privacy.md). A form being sent is not
  // asked about; one the server put back after a refusal (data-draft) is unsent as it shows.
  // A search box is no draft.
  const TYPED = /^(text|tel|number|email|search|url|date|time|datetime-local|month|week)$/;
  const sent = new WeakSet();
  document.addEventListener("formdata", (e) => sent.add(e.target));  // form.submit() too
  function unsent(form) {
    if (sent.has(form)) return false;
    const draft = form.hasAttribute("data-draft");
    return [...form.elements].some((el) =>
      (el.tagName === "TEXTAREA" || (el.tagName === "INPUT" && TYPED.test(el.type))) &&
      el.value.trim() !== (draft ? "" : el.defaultValue.trim()));
  }
  window.addEventListener("beforeunload", (e) => {
    if (![...document.querySelectorAll("main form[method=post]:not([role=search])")].some(unsent)) return;
    e.preventDefault();
    e.returnValue = "";  // older Chromium asks only with it set
  });
})();
(function () {
  // The shift's session: warn before it ends, say when it has ended (an action after that
  // goes through the login page and completes after signing in again).
  const body = document.body;
  const banner = document.getElementById("session-warning");
  if (!banner || !body.dataset.sessionLeftS) return;
  // Counted from the page's time left, and from each stream beat's (`session_left_s`): the
  // roster may lengthen the sign-in while the page is open.
  let endsAt = Date.now() + Number(body.dataset.sessionLeftS) * 1000;
  const warnMs = Number(body.dataset.sessionWarnS || 600) * 1000;
  // The banner is an alert, spoken each time its words are written: write them only when
  // they change (the minutes left), never every second.
  function say(words) {
    const text = document.getElementById("session-warning-text");
    if (text.textContent !== words) text.textContent = words;
    banner.hidden = false;
  }
  // Said once the stream ended the sign-in before its time, with its reason (the roster's:
  // the login page's words): kept, never written over by the countdown.
  let ended = "";
  let timer = 0;
  function tick() {
    clearTimeout(timer);
    if (ended) return;
    const left = endsAt - Date.now();
    if (left <= 0) {
      say(banner.dataset.ended);
      window.guardSessionEnded = true;
      return;
    }
    window.guardSessionEnded = false;
    if (left <= warnMs) {
      const m = String(Math.max(1, Math.ceil(left / 60000)));
      say(banner.dataset.soon.replace("{m}", m));
    } else {
      banner.hidden = true;
    }
    timer = setTimeout(tick, Math.min(30000, Math.max(500, left <= warnMs ? 1000 : left - warnMs)));
  }
  tick();
  window.guardSessionExpired = (why) => { ended = why || banner.dataset.ended; say(ended); };
  // The stream's beat: the time left now (lengthened by the roster, or not).
  window.guardSessionLeft = (s) => {
    if (!Number.isFinite(s) || s < 0) return;
    endsAt = Date.now() + s * 1000;
    tick();
  };
})();
(function () {
  // The confirmation step of a destructive action (a revocation, a quarantine ended) as a
  // dialog is worked by keyboard: the focus starts on its question (a screen reader says it;
  // the next Tab is the step's first control, not the header's), and Escape backs out as
  // "No" does — never while an input method is composing (its Escape drops the composition).
  const step = document.getElementById("confirm-step");
  if (!step) return;
  document.getElementById("confirm-text").focus();
  document.addEventListener("keydown", (e) => {
    if (e.key !== "Escape" || e.isComposing || e.keyCode === 229) return;
    e.preventDefault();
    window.location.assign(document.getElementById("confirm-no").href);
  });
})();
(function () {
  // After signing in again: an action cut off by the expired session completes by itself,
  // unless it opens the gate (then the guard presses the button).
  const resume = document.getElementById("resume-form");
  if (resume && resume.dataset.auto === "1") resume.submit();
})();
// The live page, in named pieces: the alarm sound, the alarm board, the feed, the manual
// decision, the kiosk's state and the stream that feeds them, each made by a function
// handed the pieces it calls; `livePage` puts them together.
const $ = (id) => document.getElementById(id);

// --- alarm sound: a two-tone siren every 2.5 s while any alarm is open ---------------
function siren(c) {
  if (!c || c.state !== "running") return;
  [0, 0.3, 0.6].forEach((start, i) => {
    const osc = c.createOscillator();
    const amp = c.createGain();
    osc.type = "sawtooth";
    osc.frequency.value = i % 2 ? 660 : 990;
    amp.gain.setValueAtTime(0.0001, c.currentTime + start);
    amp.gain.exponentialRampToValueAtTime(0.2, c.currentTime + start + 0.03);
    amp.gain.exponentialRampToValueAtTime(0.0001, c.currentTime + start + 0.27);
    osc.connect(amp).connect(c.destination);
    osc.start(c.currentTime + start);
    osc.stop(c.currentTime + start + 0.3);
  });
  window.guardSirens = (window.guardSirens || 0) + 1;  // for tests
}
// `opened(n)`: the alarms open now; more than before rings at once.
function alarmSound() {
  let audio = null;
  let openAlarms = document.querySelectorAll("#alarm-list .alarm").length;
  function ctx() {
    if (!audio) {
      const Ctx = window.AudioContext || window.webkitAudioContext;
      if (Ctx) audio = new Ctx();
    }
    return audio;
  }
  const soundBtn = $("alarm-sound");
  function checkAudio() {
    const c = ctx();
    soundBtn.hidden = !c || c.state === "running";
  }
  soundBtn.addEventListener("click", () => { const c = ctx(); if (c) c.resume().then(checkAudio); });
  document.addEventListener("click", () => { const c = ctx(); if (c && c.state !== "running") c.resume().then(checkAudio); }, { once: true });
  setInterval(() => { if (openAlarms > 0) siren(ctx()); }, 2500);
  checkAudio();
  return {
    opened(n) {
      const before = openAlarms;
      openAlarms = n;
      if (openAlarms > before) siren(ctx());
    },
  };
}

// --- alarms --------------------------------------------------------------------------
// The alarms on the board, by key: a key not among them is a new alarm, said aloud.
function alarmAnnouncer() {
  const known = new Set([...document.querySelectorAll("#alarm-list .alarm")].map((n) => n.dataset.key));
  return function announce(alarms) {
    const news = alarms.filter((a) => !known.has(a.key));
    known.clear();
    for (const a of alarms) known.add(a.key);
    if (!news.length) return;
    const region = $("alarm-news");
    region.textContent = "";  // the same words again are said again
    // A device's card says which device (a gate of the compound: which, and since when).
    const words = (a) => [a.title, a.who, a.kind === "device" ? a.detail : "", a.temp];
    const said = news.map((a) => words(a).filter(Boolean).join(" · ")).join("; ");
    setTimeout(() => { region.textContent = said; }, 50);
  };
}
// Where the guard is in the cards (which alarm, which of its controls), to put them back
// there once the cards are drawn again; an alarm gone (closed elsewhere) leaves them on
// the board.
function placeIn(list) {
  const el = document.activeElement;
  const card = el && list.contains(el) ? el.closest(".alarm") : null;
  if (!card) return null;
  return { key: card.dataset.key, index: [...card.querySelectorAll("input, button, a")].indexOf(el) };
}
function putBack(list, place) {
  if (!place) return;
  const card = [...list.children].find((n) => n.dataset.key === place.key);
  const target = card ? card.querySelectorAll("input, button, a")[place.index] : $("alarms");
  (target || $("alarms")).focus({ preventScroll: true });
}
// Which card is at the top of what the guard sees of the list (a phone scrolls the alarms
// in a box of their own), and where: drawn again, it is put back there, so a new alarm on
// top never slides another person's Done under the guard's thumb.
function seenIn(list) {
  const top = list.getBoundingClientRect().top;
  const card = [...list.children].find((n) => n.getBoundingClientRect().bottom > top);
  return card ? { key: card.dataset.key, y: card.getBoundingClientRect().top } : null;
}
function keepSeen(list, seen) {
  const card = seen && [...list.children].find((n) => n.dataset.key === seen.key);
  if (card) list.scrollTop += card.getBoundingClientRect().top - seen.y;
}
// One alarm's card from the template, ticked as it was (`picked`: each ticked key's value).
function alarmCard(tpl, a, picked) {
  const node = tpl.content.firstElementChild.cloneNode(true);
  node.classList.add("kind-" + a.kind);
  node.dataset.key = a.key;
  const title = node.querySelector(".a-title");
  title.textContent = a.title;
  if (a.times) {
    const times = document.createElement("span");
    times.className = "a-times";
    times.textContent = a.times;
    title.append(" ", times);
  }
  node.querySelector(".a-who").textContent = a.who || "";
  node.querySelector(".a-todo").textContent = a.todo || "";
  const meta = node.querySelector(".a-meta");
  meta.textContent = [a.time, a.detail, a.temp, a.direction].filter(Boolean).join(" · ");
  for (const seq of a.seqs || []) {
    const link = document.createElement("a");
    link.className = "a-link";
    link.href = "/guard/passage/" + seq;
    link.textContent = "#" + seq;
    meta.append(" · ", link);
  }
  // The card as drawn now, its key and what it counts: the tick and the Done button send
  // it, and a close after it counted more (attempts the guard never saw) is refused. A tick
  // made before the card grew keeps the count it was made at (`picked`: key -> value), so
  // "close ticked" is refused with how many more came since, never closing them unseen.
  const drawn = a.key + "@" + String(a.count || 0);
  const pick = node.querySelector(".a-pick");
  pick.value = picked.get(a.key) || drawn;
  pick.checked = picked.has(a.key);
  // Which alarm a tick or a Done is about, said by a screen reader (two fevers: two people).
  const named = [a.title, a.who, a.detail].filter(Boolean).join(" · ");
  pick.setAttribute("aria-label", named);
  node.querySelector("button.ack").value = drawn;
  // A device's card: the incident drawn (its start), so a close after the device failed
  // anew (the one drawn closed on another tablet) closes nothing it never showed.
  const incident = node.querySelector(".a-incident");
  incident.value = a.key + "@" + (a.incident || "");
  incident.disabled = !a.incident;
  node.querySelector("button.ack .sr-only").textContent = ": " + named;
  return node;
}
// The board drawn again from the stream's alarms (`sound`: alarmSound's).
function alarmBoard(sound) {
  const announce = alarmAnnouncer();
  return function renderAlarms(alarms) {
    const list = $("alarm-list");
    const tpl = $("alarm-tpl");
    const ticked = [...list.querySelectorAll(".a-pick:checked")];
    const picked = new Map(ticked.map((c) => [c.closest(".alarm").dataset.key, c.value]));
    const place = placeIn(list);
    const seen = seenIn(list);
    list.replaceChildren();
    for (const a of alarms) list.appendChild(alarmCard(tpl, a, picked));
    $("alarm-tools").hidden = alarms.length === 0;
    $("alarm-count").textContent = String(alarms.length);
    $("no-alarms").hidden = alarms.length > 0;
    $("alarms").classList.toggle("none", alarms.length === 0);
    keepSeen(list, seen);
    putBack(list, place);
    announce(alarms);
    sound.opened(alarms.length);
  };
}

// --- feed ----------------------------------------------------------------------------
function cell(tr, text, cls) {
  const td = document.createElement("td");
  if (cls) td.className = cls;
  td.textContent = text == null ? "" : String(text);
  tr.appendChild(td);
  return td;
}
// A guard scrolled to the feed reads its cards: a new row going in on top, or the cards
// above the feed changing (the person just seen, the gate's state), must not push them down
// the screen (a whole card on a phone). The browser's own scroll anchoring keeps them still
// only when it picked a row as its anchor, not the feed's heading or a card above it: the
// first row on the screen is put back where it was.
function steady(feed, update) {
  const rows = [...feed.tBodies[0].rows];
  const seen = rows.find((tr) => tr.getBoundingClientRect().bottom > 0);
  const before = seen ? seen.getBoundingClientRect().top : null;
  update();
  if (before === null || window.scrollY <= 0 || before >= window.innerHeight) return;
  const moved = seen.isConnected ? seen.getBoundingClientRect().top - before : 0;
  if (moved) window.scrollBy(0, moved);
}
// The site's local day (the server's: a tablet's own clock may be wrong). Once it moves
// on (a row of a later day, a beat saying so), the rows of an earlier one show their date,
// as the server draws them: a page left open past midnight.
function newDay(feed, day) {
  if (!day || day <= (feed.dataset.today || "")) return;
  feed.dataset.today = day;
  for (const tr of feed.tBodies[0].rows) {
    if (tr.dataset.day && tr.dataset.day !== day) tr.cells[1].textContent = tr.dataset.dated;
  }
}
function badge(className, text) {
  const span = document.createElement("span");
  span.className = className;
  span.textContent = text;
  return span;
}
function small(className, text) {
  const mark = document.createElement("small");
  mark.className = className;
  mark.textContent = text;
  return mark;
}
// A streamed row's cells, as the server draws a row of the feed.
function feedRow(feed, r) {
  const tr = document.createElement("tr");
  tr.dataset.seq = r.seq;
  tr.dataset.day = r.day || "";
  tr.dataset.dated = r.dated || "";
  tr.className = "fresh";
  cell(tr, r.seq, "num");
  cell(tr, r.time);
  const td = cell(tr, "");
  td.appendChild(badge("badge " + (r.ok ? "pass" : "deny"), (r.ok ? "✔ " : "✖ ") + r.decision_text));
  if (r.kind_text) td.append(" ", badge("badge kind", r.kind_text));
  // A dwelling the gate did not know, kept as typed: its record was never checked.
  if (r.unknown_dwelling) td.append(" ", badge("badge unchecked", feed.dataset.unknownDwelling));
  const why = [r.reasons];
  if (r.about_seq) why.push(feed.dataset.about.replace("{seq}", r.about_seq));
  const reasonCell = cell(tr, why.join(" · "));
  if (r.note) reasonCell.append(" · ", badge("note", r.note));
  const tempCell = cell(tr, r.temp, "num temp" + (r.fever ? " fever" : ""));
  // A fever in words too, never by its colour alone.
  if (r.fever) tempCell.append(" ", small("fever-mark", feed.dataset.fever));
  if (r.by_hand) tempCell.append(" ", small("by-hand", feed.dataset.byHand));
  cell(tr, r.direction);
  cell(tr, r.who, "who");
  cell(tr, r.operator);
  // Its cells' labels (the cards on a phone) before it goes in, so its height is its own.
  const names = [...feed.tHead.rows[0].cells].map((th) => th.textContent.trim());
  [...tr.cells].forEach((c, i) => { if (names[i]) c.dataset.label = names[i]; });
  return tr;
}
// A row from the stream on top of the feed (one shown already is not shown twice); a
// passage with a subject is handed to `onPassage` (the manual decision's last person).
function addRow(feed, r, onPassage) {
  const body = feed.tBodies[0];
  if (body.querySelector(`tr[data-seq="${r.seq}"]`)) return;
  newDay(feed, r.day);
  // A row saying the gate did not open for a pass drawn earlier: that pass let nobody through.
  const failed = r.not_opened && body.querySelector(`tr[data-seq="${r.not_opened}"] .badge`);
  if (failed) {
    failed.className = "badge deny";
    failed.textContent = "✖ " + r.not_opened_text;
  }
  body.insertBefore(feedRow(feed, r), body.firstChild);
  while (body.rows.length > 200) body.deleteRow(body.rows.length - 1);
  feed.dataset.lastSeq = String(Math.max(Number(feed.dataset.lastSeq || 0), r.seq || 0));
  $("feed-empty").hidden = true;
  if (r.kind === "passage" && r.subject) onPassage(r);
}

// --- manual decision: whom it is about, then a confirmation line ---------------------
// A refused decision comes back to this page with its problem: what the guard typed is put
// back (held in this tab until the next page only), never whom it was about. Put back
// here; the function returned keeps it as the decision is sent. Refused is the server's
// mark on the form (data-refused: nothing was recorded), never any error banner: a decision
// recorded leaves the form empty for the next person.
const TYPED_KEY = "guard-manual-typed";
const TYPED_FIELDS = ["reason", "temp_c", "direction", "household"];
function typedKept(manual) {
  (function restoreTyped() {
    let typed = null;
    try {
      typed = sessionStorage.getItem(TYPED_KEY);
      sessionStorage.removeItem(TYPED_KEY);
    } catch (e) { return; }
    if (!typed || !("refused" in manual.dataset)) return;
    let values = {};
    try { values = JSON.parse(typed); } catch (e) { return; }
    for (const name of TYPED_FIELDS) {
      if (typeof values[name] === "string") manual.elements.namedItem(name).value = values[name];
    }
  })();
  return function keepTyped() {
    const values = {};
    for (const name of TYPED_FIELDS) values[name] = manual.elements.namedItem(name).value;
    try { sessionStorage.setItem(TYPED_KEY, JSON.stringify(values)); } catch (e) { /* no storage */ }
  };
}
// A person without a pass (or a passage naming no household: `who`), as the confirmation
// line names them: with the dwelling typed (its holds are checked), or said to be checked
// for nothing.
function nobodyText(manual, who) {
  const household = manual.elements.namedItem("household").value.trim();
  return who + " · " + (household || manual.dataset.unchecked);
}
// The way the decision is recorded, as the confirmation line says it: the one chosen, else
// the passage's ("auto"), else (a person without a pass) the gate's only way.
function wayText(manual, chosen) {
  const select = manual.elements.namedItem("direction");
  if (select.value) return select.options[select.selectedIndex].text;
  if (chosen.value !== "none") return chosen.dataset.way || "";
  return select.options.length === 2 ? select.options[1].text : "";
}
// A person without a pass has no passage to take the way from: at a gate both ways the
// guard says which ("auto", the select's empty first option, then fails the form's own
// check; the server refuses it too).
function wayAsked(manual) {
  const select = manual.elements.namedItem("direction");
  const ask = () => {
    const chosen = manual.querySelector("input[name=subject]:checked");
    select.required = "wayNeeded" in select.dataset && chosen !== null && chosen.value === "none";
  };
  manual.addEventListener("change", ask);
  ask();
}
// The confirmation line's words for a decision asked (the form's submit event).
function confirmText(manual, e, chosen) {
  const decision = e.submitter ? e.submitter.value : "pass";
  const who = chosen.value === "none" ? nobodyText(manual, manual.dataset.nobody)
    : chosen.dataset.household ? chosen.dataset.who : nobodyText(manual, chosen.dataset.who);
  const reason = manual.querySelector("input[name=reason]").value.trim();
  const text = manual.dataset["confirm" + (decision === "pass" ? "Pass" : "Deny")];
  // One pass over the placeholders, each filled by a function: what the guard typed is
  // shown as typed ($&, $' or "{who}" in a reason are not read as a replacement's own).
  const fill = { who, reason, way: wayText(manual, chosen) };
  return { decision, text: text.replace(/\{(who|reason|way)\}/g, (_, key) => fill[key]) };
}
// The confirmation line: asked by the form's buttons, confirmed (the form sent) or closed.
// `cancel(giveBack)`: closed (Cancel, Escape, another choice, a new passage), the focus
// put back on the button that asked when it was in the line or the guard closed it by
// keyboard, never on the page (where Tab starts from the top again).
function confirmLine(manual) {
  const keepTyped = typedKept(manual);
  wayAsked(manual);
  let pending = null;
  function cancel(giveBack) {
    const line = $("manual-confirm");
    const asker = pending && pending.asker;
    const inside = line.contains(document.activeElement);
    pending = null;
    line.hidden = true;
    if (asker && (giveBack || inside)) asker.focus();
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !$("manual-confirm").hidden) { e.preventDefault(); cancel(true); }
  });
  manual.addEventListener("submit", (e) => {
    if (pending && pending.confirmed) return;
    e.preventDefault();
    const chosen = manual.querySelector("input[name=subject]:checked");
    if (!chosen) return;
    const { decision, text } = confirmText(manual, e, chosen);
    $("manual-confirm-text").textContent = text;
    $("manual-confirm").hidden = false;
    // On a phone the line may start below the screen: brought into view, or the tap seems lost.
    $("manual-confirm").scrollIntoView({ block: "nearest" });
    $("subject-changed").hidden = true;
    pending = { decision, subject: chosen.value, confirmed: false, asker: e.submitter || null };
  });
  $("manual-confirm-no").addEventListener("click", () => cancel(true));
  $("manual-confirm-yes").addEventListener("click", () => {
    const chosen = manual.querySelector("input[name=subject]:checked");
    if (!pending || !chosen || chosen.value !== pending.subject) { cancel(); return; }
    pending.confirmed = true;
    keepTyped();
    const input = document.createElement("input");
    input.type = "hidden";
    input.name = "decision";
    input.value = pending.decision;
    manual.appendChild(input);
    manual.submit();
  });
  manual.addEventListener("change", (e) => { if (e.target.name === "subject") cancel(); });
  return { cancel };
}
// The manual decision: `newSubject(r)`, the newest passage offered as whom it is about;
// `held()`, its buttons a stale page holds back.
function manualDecision() {
  const manual = $("manual-form");
  const lastRadio = $("subject-last");
  const line = confirmLine(manual);
  function newSubject(r) {
    if (String(r.seq) === lastRadio.value) return;
    const wasChosen = lastRadio.checked;
    lastRadio.value = String(r.seq);
    lastRadio.dataset.who = r.subject;
    lastRadio.dataset.household = r.names_household ? "1" : "";
    lastRadio.dataset.way = r.direction || "";
    lastRadio.checked = false;  // a new person: never carry the choice over to them
    $("subject-last-text").textContent = manual.dataset.last.replace("{text}", r.subject);
    $("subject-last-label").hidden = false;
    $("subject-changed").hidden = !wasChosen;
    if (wasChosen) line.cancel();
  }
  const held = () => [...manual.querySelectorAll(".actions button"), $("manual-confirm-yes")];
  return { newSubject, held };
}

// --- current state -------------------------------------------------------------------
function renderState(v) {
  const now = $("now");
  const evac = v.evacuation && v.headline;  // the gate held open for everyone
  now.className = "now " + (evac ? "pass" : v.result ? v.result.kind : "");
  $("now-icon").textContent = evac ? v.headline.icon : v.result ? v.result.icon : "…";
  $("now-text").textContent = evac ? v.headline.word + ": " + (v.prompt || "")
    : v.result ? v.result.word : (v.prompt || "");
  const parts = [];
  if (v.result && v.result.reasons.length) parts.push(v.result.reasons.join("; "));
  if (v.temp) parts.push(v.temp);
  $("now-detail").textContent = parts.join(" · ");
}

// --- the stream, watched (stream.js): its beat every `every_s` says it is alive; two
// beats missed (or an error) and the page says the feed is disconnected since when, greys
// "Now at the gate" and holds back the manual decision (a guard must not act on a stale
// "now"), while a new stream resumes after the last row shown (addRow drops a row shown).
// "Since when" is the site's time (docs/screens.md), never the tablet's clock or zone: the
// server's clock (the page's `data-now-ms`, then each beat's `now_ms`) against the tablet's,
// said in the site's zone (`data-tz`), as the kiosk screen says its clock (kiosk.js).
function feedStatus(held) {
  const lang = document.body.dataset.lang;
  const banner = $("live-stale");
  let serverAheadMs = Number(banner.dataset.nowMs || Date.now()) - Date.now();
  let lastBeatMs = 0;  // the server's time in the last beat: nothing heard since was earlier
  function siteTime(tabletMs) {
    const opts = { hour: "2-digit", minute: "2-digit", hour12: false, timeZone: banner.dataset.tz };
    // The stream notes when it heard the beat a moment before this page reads the beat's
    // time: that moment, on the server's clock, fell a few ms before the beat's own (09:59:59
    // for a beat of 10:00:00, "since 09:59").
    const at = new Date(Math.max(tabletMs + serverAheadMs, lastBeatMs));
    try { return at.toLocaleTimeString(lang, opts); } catch (e) {  // a zone it does not know
      delete opts.timeZone;
      return at.toLocaleTimeString(lang, opts);
    }
  }
  return {
    heard(nowMs) {
      if (!Number.isFinite(nowMs)) return;
      serverAheadMs = nowMs - Date.now();
      lastBeatMs = nowMs;
    },
    stale(since) {
      banner.textContent = "⚠ " + banner.dataset.text.replace("{time}", siteTime(since));
      banner.hidden = false;
      document.body.classList.add("stale");
      for (const button of held()) button.disabled = true;
    },
    live() {
      $("live-stale").hidden = true;
      document.body.classList.remove("stale");
      for (const button of held()) button.disabled = false;
    },
  };
}
// Rows missed (more than the page keeps): said, its link the rows from the first of them
// on (a second gap before the guard went there adds its rows, the link stays on the
// first). The log restored: said, its link a reload.
function showGap(d) {
  const gap = $("feed-gap");
  const link = gap.querySelector("a");
  if (d.restored || !d.from) {
    delete gap.dataset.from;
    gap.dataset.rows = "0";
    gap.firstChild.textContent = d.restored ? gap.dataset.restored : gap.dataset.text.replace("{n}", d.rows);
    link.textContent = gap.dataset.reload;
    link.href = "/guard";
  } else {
    gap.dataset.from = gap.dataset.from || String(d.from);
    gap.dataset.rows = String(Number(gap.dataset.rows || 0) + d.rows);
    gap.firstChild.textContent = gap.dataset.text.replace("{n}", gap.dataset.rows);
    link.textContent = gap.dataset.see;
    link.href = "/guard/rows/" + gap.dataset.from;
  }
  gap.hidden = false;
}
// A stream that failed is reopened by this page, after the last row shown (the browser's
// own retry would ask from the row the page was drawn at). A 401 (session ended): the login
// page. A kiosk standing by (restarted on a failing card) says so: its page tells the
// guard what to do.
function reopen(watched, es) {
  es.close();
  const again = () => setTimeout(() => watched.restartIf(es), 3000);
  fetch("/guard/api/feed", { cache: "no-store" }).then((res) => {
    if (res.status === 401) window.location.href = "/guard/login?next=/guard";
    else if (res.headers.get("X-Kiosk-State") === "standby") window.location.reload();
    else again();
  }).catch(again);
}
// The stream, its events handed to the page's pieces (`page`: addRow, renderAlarms, held).
function liveStream(feed, page) {
  const lang = document.body.dataset.lang;
  let beatMs = 1000 * Number(feed.dataset.beatS || 15);
  const silentMs = () => 2 * beatMs + 5000;
  const status = feedStatus(page.held);
  const json = (handle) => (e) => {
    window.guardStreamEvents = (window.guardStreamEvents || 0) + 1;  // for tests
    steady(feed, () => handle(JSON.parse(e.data)));
  };
  const watched = window.watchedStream({
    url: () => `/guard/events?lang=${encodeURIComponent(lang)}&after=${feed.dataset.lastSeq || "0"}`,
    offlineMs: silentMs,
    restartMs: silentMs,
    onOffline: status.stale,
    onOnline: status.live,
    on: {
      row: json(page.addRow),
      alarms: json(page.renderAlarms),
      state: json(renderState),
      gap: json(showGap),
      beat: (e) => {
        const beat = JSON.parse(e.data);
        beatMs = 1000 * (Number(beat.every_s) || 15);
        status.heard(Number(beat.now_ms));
        newDay(feed, beat.today);
        if (beat.session_left_s != null && window.guardSessionLeft) {
          window.guardSessionLeft(Number(beat.session_left_s));
        }
      },
      expired: (e) => {
        watched.stop();
        let why = "";  // the roster's reason, in the login page's words; else the page's own
        try { why = String(JSON.parse(e.data).reason || ""); } catch (err) { /* none sent */ }
        if (window.guardSessionExpired) window.guardSessionExpired(why);
      },
    },
    onError: (es) => reopen(watched, es),
  });
}

// The manual form's dwellings, fetched once per list into its datalist (the browser keeps
// it and asks again: a 304 while it holds), not inline in every load of the page (20,000
// dwellings are half a megabyte). Without it the field takes a typed dwelling all the same.
async function householdList() {
  const list = $("manual-households");
  if (!list || !list.dataset.src) return;
  try {
    const r = await fetch(list.dataset.src, { headers: { Accept: "application/json" } });
    if (!r.ok) return;
    const { offered } = await r.json();
    const options = document.createDocumentFragment();
    for (const h of offered) {
      const option = document.createElement("option");
      option.value = h;
      options.append(option);
    }
    list.replaceChildren(options);
  } catch (e) {
    // offline, or signed out meanwhile: the list stays empty
  }
}

function livePage(feed) {
  householdList();
  const sound = alarmSound();
  const manual = manualDecision();
  liveStream(feed, {
    addRow: (r) => addRow(feed, r, manual.newSubject),
    renderAlarms: alarmBoard(sound),
    held: manual.held,
  });
}
const feed = $("feed");
if (feed) livePage(feed);  // only the live page streams
(function () {
  // Registration: fill the form from an earlier visitor, check a plate against the
  // resident-vehicle list, show one more passenger row. The forms work without this.
  const person = document.getElementById("person-form");
  if (!person) return;
  for (const button of document.querySelectorAll(".use-visitor")) {
    button.addEventListener("click", () => {
      for (const field of ["name", "unit", "reason"]) person.elements[field].value = button.dataset[field] || "";
      person.elements.phone.value = "";
      person.elements.id_number.value = "";
      person.elements.copy_from.value = button.dataset.seq;
      const copied = document.getElementById("copied-note");
      copied.textContent = copied.dataset.text.replace("{when}", button.dataset.when);
      copied.hidden = false;
      person.elements.temp_c.focus();
    });
  }
  const unitCheck = document.getElementById("unit-check");
  async function checkUnit() {
    // The dwelling's list status, as the plate check below: a quarantined one is named.
    const unit = person.elements.unit.value.trim();
    unitCheck.textContent = "";
    unitCheck.className = "hint plate-check unit-check";
    if (!unit) return;
    // A POST with the form's CSRF token: a dwelling and its quarantine are never in a URL.
    const body = new URLSearchParams({ csrf: person.elements.csrf.value, unit });
    const r = await fetch("/guard/api/household", { method: "POST", body, headers: { accept: "application/json" } });
    if (!r.ok) return;
    const found = await r.json();
    if (found.quarantined) {
      unitCheck.textContent = unitCheck.dataset.quarantined;
      unitCheck.classList.add("unknown");
    } else if (found.near && found.near.length) {
      // D404 typed for the listed D-404: asked, each listed one a button (never taken alone).
      const said = found.near.map((n) =>
        n.quarantined ? unitCheck.dataset.nearQuarantined.replace("{near}", n.household) : n.household);
      unitCheck.textContent = unitCheck.dataset.near.replace("{unit}", unit).replace("{near}", said.join(" / "));
      unitCheck.classList.add("unknown");
      for (const n of found.near) {
        const use = document.createElement("button");
        use.type = "button";
        use.className = "ghost";
        use.textContent = unitCheck.dataset.use.replace("{near}", n.household);
        use.addEventListener("click", () => {
          person.elements.unit.value = n.household;
          checkUnit();
        });
        unitCheck.append(" ", use);
      }
    }
  }
  person.elements.unit.addEventListener("change", checkUnit);
  if (person.elements.unit.value) checkUnit();
  const vehicle = document.getElementById("vehicle-form");
  const check = document.getElementById("plate-check");
  async function checkPlate() {
    const plate = vehicle.elements.plate.value.trim();
    check.textContent = "";
    check.className = "hint plate-check";
    if (plate.length < 4) return;
    // A POST with the form's CSRF token: the plate is never in a URL (history, access logs).
    const body = new URLSearchParams({ csrf: vehicle.elements.csrf.value, plate });
    const r = await fetch("/guard/community/plate", { method: "POST", body, headers: { accept: "application/json" } });
    if (r.status === 400) { check.textContent = "⚠ " + check.dataset.unknown; check.classList.add("unknown"); return; }
    if (!r.ok) return;
    const s = await r.json();
    if (!s.listed) { check.textContent = check.dataset.noList; return; }
    check.textContent = s.known ? check.dataset.resident.replace("{h}", s.household) : "⚠ " + check.dataset.unknown;
    check.classList.add(s.known ? "known" : "unknown");
  }
  vehicle.elements.plate.addEventListener("change", checkPlate);
  if (vehicle.elements.plate.value) checkPlate();
  document.getElementById("add-passenger").addEventListener("click", (e) => {
    const next = document.querySelector("#passengers .passenger[hidden]");
    if (next) { next.hidden = false; next.querySelector("input").focus(); }
    if (!document.querySelector("#passengers .passenger[hidden]")) e.currentTarget.hidden = true;
  });
})();
(function () {
  // Tables that become cards on a phone: every cell carries its column's name
  // (data-label, shown by the phone stylesheet), rows streamed in later too.
  function label(table) {
    const names = [...table.querySelectorAll("thead th")].map((th) => th.textContent.trim());
    for (const tr of table.tBodies[0] ? table.tBodies[0].rows : []) {
      [...tr.cells].forEach((td, i) => { if (names[i] && !td.dataset.label) td.dataset.label = names[i]; });
    }
  }
  for (const table of document.querySelectorAll("table.cards-on-phone")) {
    label(table);
    if (table.tBodies[0]) new MutationObserver(() => label(table)).observe(table.tBodies[0], { childList: true });
  }
})();
