// The guard console's accessibility checks, run in the page by tests/a11y_support.py.
// Each returns a list of problems (short strings naming the element), or plain data.
"use strict";
const A11Y = {
  // What a mouse can use (and so Tab must reach).
  USABLE: "a[href], button, input:not([type=hidden]), select, textarea, [tabindex]",
  rgba(c) {
    const m = c.match(/rgba?\(([^)]+)\)/);
    if (!m) return null;
    const p = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  },
  over(top, under) {
    const a = top[3];
    return [0, 1, 2].map((i) => top[i] * a + under[i] * (1 - a)).concat([1]);
  },
  luminance(c) {
    const f = (v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
  },
  ratio(a, b) {
    const x = A11Y.luminance(a), y = A11Y.luminance(b);
    return (Math.max(x, y) + 0.05) / (Math.min(x, y) + 0.05);
  },
  describe(el) {
    const cls = String(el.className.baseVal ?? el.className).trim().replace(/ +/g, ".");
    return el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + (cls ? "." + cls : "");
  },

  // Every opaque colour the text of el could be drawn on: the backgrounds up the tree
  // composed, a background image (a gradient) by each of its colour stops.
  backgrounds(el) {
    const layers = [];
    for (let node = el; node && node.nodeType === 1; node = node.parentElement) {
      const s = getComputedStyle(node);
      if (s.backgroundImage && s.backgroundImage !== "none") {
        const stops = (s.backgroundImage.match(/rgba?\([^)]+\)/g) || []).map(A11Y.rgba);
        if (stops.length) { layers.push(stops); break; }
      }
      const bg = A11Y.rgba(s.backgroundColor);
      if (bg && bg[3] > 0) { layers.push([bg]); if (bg[3] >= 1) break; }
    }
    let out = [[255, 255, 255, 1]];
    for (const stops of layers.reverse()) {
      const next = [];
      for (const s of stops) for (const o of out) next.push(s[3] >= 1 ? s : A11Y.over(s, o));
      out = next;
    }
    return out;
  },

  // Text kept for screen readers only: in a box of a pixel that hides what overflows it.
  clipped(el) {
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
      const hides = getComputedStyle(n).overflow === "hidden";
      if (hides && (n.clientWidth <= 1 || n.clientHeight <= 1)) return true;
    }
    return false;
  },

  // WCAG 1.4.3: every visible text at 4.5:1 against what is drawn behind it (3:1 for large
  // text: 24 px, or 18.66 px bold); its colour's alpha and every ancestor's opacity count.
  contrast() {
    const problems = [], seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      const text = t.textContent.trim();
      const el = t.parentElement;
      if (!text || !el || seen.has(el)) continue;
      seen.add(el);
      if (el.closest("[hidden], template, title, script, style, option")) continue;
      const range = document.createRange();
      range.selectNodeContents(t);
      const box = range.getBoundingClientRect();
      if (box.width < 2 || box.height < 2 || A11Y.clipped(el)) continue;
      const s = getComputedStyle(el);
      if (s.visibility === "hidden" || el.closest(":disabled")) continue;
      const fg = A11Y.rgba(el instanceof SVGElement ? s.fill : s.color);
      if (!fg) continue;
      let alpha = fg[3];
      for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
        alpha *= Number(getComputedStyle(n).opacity);
      }
      const size = parseFloat(s.fontSize), bold = Number(s.fontWeight) >= 700;
      const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
      let worst = 99, under = null;
      for (const bg of A11Y.backgrounds(el)) {
        const r = A11Y.ratio(A11Y.over([fg[0], fg[1], fg[2], alpha], bg), bg);
        if (r < worst) { worst = r; under = bg; }
      }
      if (worst < need) {
        problems.push(`${worst.toFixed(2)}:1 < ${need}:1 "${text.slice(0, 30)}" ` +
          `(${A11Y.describe(el)}: rgb(${fg.slice(0, 3)}) a${alpha.toFixed(2)} ` +
          `on rgb(${under.slice(0, 3).map(Math.round)}))`);
      }
    }
    return problems;
  },

  // WCAG 1.4.10: the whole page scrolls sideways, or an element reaches past the screen's
  // edge outside a box that scrolls by itself (a table's own box may).
  reflow() {
    const problems = [], doc = document.documentElement, W = doc.clientWidth;
    if (doc.scrollWidth > W + 1) problems.push(`page ${doc.scrollWidth}px wide on ${W}px`);
    const scrolls = (el) => {
      for (let n = el.parentElement; n; n = n.parentElement) {
        const o = getComputedStyle(n).overflowX;
        if (o === "auto" || o === "scroll") return true;
      }
      return false;
    };
    for (const el of document.body.querySelectorAll("*")) {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || el.closest("[hidden]")) continue;
      const out = r.right > W + 1 || r.left < -1;
      if (out && !scrolls(el) && getComputedStyle(el).position !== "fixed") {
        problems.push(`${A11Y.describe(el)} spans ${Math.round(r.left)}..${Math.round(r.right)}`);
      }
    }
    return problems.slice(0, 20);
  },

  // WCAG 2.5.5: what a finger must hit is min × min CSS px: a button, a field, a select, a
  // link standing on its own (a link inside a sentence is exempt); a checkbox or a radio
  // button inside its label by the label's box.
  targets(min) {
    const problems = [];
    const inSentence = (a) => {
      const p = a.parentElement;
      if (!p || p.matches("li, td, dd")) return false;
      return [...p.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    };
    const sel = "button, a[href], input:not([type=hidden]), select, textarea, summary";
    for (const el of document.querySelectorAll(sel)) {
      if (el.closest("[hidden], template") || el.disabled) continue;
      let r = el.getBoundingClientRect();
      if (!r.width || !r.height || (el.matches("a") && inSentence(el))) continue;
      const label = el.closest("label");
      if (el.matches("input[type=checkbox], input[type=radio]") && label) {
        r = label.getBoundingClientRect();
      }
      if (r.width < min - 0.5 || r.height < min - 0.5) {
        const words = (el.textContent || el.name || "").trim().slice(0, 20);
        problems.push(`${Math.round(r.width)}x${Math.round(r.height)} ${A11Y.describe(el)} "${words}"`);
      }
    }
    return problems;
  },

  // The element that has the focus, how its ring is drawn, and the contrast of the ring
  // against the colour around the element.
  focus() {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const again = Boolean(el.dataset.a11yReached);
    el.dataset.a11yReached = "1";
    const s = getComputedStyle(el), r = el.getBoundingClientRect();
    let around = [255, 255, 255, 1];
    for (let n = el.parentElement; n; n = n.parentElement) {
      const b = A11Y.rgba(getComputedStyle(n).backgroundColor);
      if (b && b[3] > 0) { around = b; break; }
    }
    const ring = A11Y.rgba(s.outlineColor);
    return {
      again, what: A11Y.describe(el), name: el.getAttribute("name"),
      text: (el.textContent || el.value || "").trim().slice(0, 20),
      style: s.outlineStyle, width: parseFloat(s.outlineWidth),
      contrast: ring ? A11Y.ratio(ring, around) : 0, shown: r.width > 0 && r.height > 0,
    };
  },

  // What a mouse can use that Tab did not reach (after a walk of focus() calls); of a
  // group of radio buttons one is reached by Tab, the others by the arrow keys.
  unreached() {
    const reached = (el) => el.dataset.a11yReached || (el.matches("input[type=radio]") &&
      document.querySelector(`input[type=radio][name="${el.name}"][data-a11y-reached]`));
    return [...document.querySelectorAll(A11Y.USABLE)].filter((el) => {
      const r = el.getBoundingClientRect();
      return r.width && r.height && !el.disabled && el.tabIndex >= 0 && !reached(el) &&
        el.dataset.a11yPresent;
    }).map((el) => `${A11Y.describe(el)} "${(el.textContent || el.name || "").trim().slice(0, 20)}"`);
  },

  // WCAG 1.4.1: a status drawn in its colour (a fever, a pass, a deny, a fault) says it
  // in words or a sign too, not by a bare number or nothing at all.
  colourOnly() {
    const sel = ".fever, .pass, .deny, .warn, .ok, .fault, .degraded, .absent, .unknown, " +
      "[class*='st-']";
    return [...document.querySelectorAll(sel)].filter((el) => {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || el.matches("button, form, body, tr, section")) return false;
      return !/[^\d\s.,:°C%+\-–—·#]/.test(el.textContent);
    }).map((el) => `${A11Y.describe(el)} says only "${el.textContent.trim().slice(0, 20)}"`);
  },

  // WCAG 2.4.6: two controls that do different things (another link, another form or
  // value) have different names, so a guard who lists the buttons or hears one knows which
  // is which; a control in a table row has its row to tell it apart.
  sameNames() {
    const seen = new Map(), problems = [];
    for (const el of document.querySelectorAll("button, a[href]")) {
      const r = el.getBoundingClientRect();
      if (!r.width || !r.height || el.closest("tr, template, [hidden]")) continue;
      const name = (el.getAttribute("aria-label") || el.textContent).replace(/\s+/g, " ").trim();
      const link = el.matches("a");  // a link and a button are listed apart
      const key = (link ? "link " : "button ") + name;
      const does = link ? el.getAttribute("href")
        : `${el.form ? el.form.getAttribute("action") : ""} ${el.name}=${el.value}`;
      if (seen.has(key) && seen.get(key) !== does) {
        problems.push(`two "${name}": ${seen.get(key)} and ${does}`);
      }
      seen.set(key, does);
    }
    return problems;
  },

  // Animations running now: none when the system asks for reduced motion.
  animations() {
    return document.getAnimations().filter((a) => a.playState === "running")
      .map((a) => `${a.animationName || a.transitionProperty || "animation"} on ` +
        (a.effect && a.effect.target ? A11Y.describe(a.effect.target) : "?"));
  },
};
