"""Accessibility checks for the guard console, run in Chromium on a page a test has open.

Each check returns a list of problems (short strings naming the element), empty when the page
keeps the rule, so one test can walk every page and report every problem at once. Names and
roles are Chromium's own (its accessibility tree over the DevTools protocol); colours, boxes
and animations are read from the page as drawn (``getComputedStyle``, ``getBoundingClientRect``,
``document.getAnimations``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Roles a person operates, which must each have a name a screen reader says.
NAMED_ROLES = {
    "button", "link", "textbox", "searchbox", "combobox", "listbox", "checkbox", "radio",
    "spinbutton", "slider", "switch", "menuitem", "tab", "img", "image", "figure",
}  # fmt: skip

#: The smallest target a gloved finger hits on the phone layout (CSS px).
TOUCH_PX = 44


#: An element's own markup, shortened, to name it in a problem.
OUTER_HTML = "function () { return (this.outerHTML || this.textContent || '').slice(0, 120) }"


def _value(prop: dict[str, Any] | None) -> Any:
    return (prop or {}).get("value")


def ax_nodes(page: Any) -> list[dict[str, Any]]:
    """Chromium's accessibility tree of the page, the nodes a screen reader meets."""
    cdp = page.context.new_cdp_session(page)
    try:
        nodes = cdp.send("Accessibility.getFullAXTree")["nodes"]
        for node in nodes:
            node["html"] = ""
            if node.get("backendDOMNodeId") and not node.get("ignored"):
                node["cdp"] = node["backendDOMNodeId"]
        for node in nodes:
            if "cdp" in node and _value(node.get("role")) in NAMED_ROLES | {"heading"}:
                try:
                    obj = cdp.send("DOM.resolveNode", {"backendNodeId": node["cdp"]})["object"]
                    html = cdp.send(
                        "Runtime.callFunctionOn",
                        {
                            "objectId": obj["objectId"],
                            "functionDeclaration": OUTER_HTML,
                            "returnByValue": True,
                        },
                    )
                    node["html"] = html["result"].get("value", "")
                except Exception:  # noqa: BLE001 (a node gone meanwhile: named by role only)
                    node["html"] = ""
        return nodes
    finally:
        cdp.detach()


def unnamed_controls(page: Any) -> list[str]:
    """Every control, link and image has an accessible name (a label, its text, alt, aria-label)."""
    problems = []
    for node in ax_nodes(page):
        role = _value(node.get("role"))
        if node.get("ignored") or role not in NAMED_ROLES:
            continue
        if not str(_value(node.get("name")) or "").strip():
            problems.append(f"{role} without a name: {node['html']}")
    return problems


def structure(page: Any, lang: str) -> list[str]:
    """The page's language, a title that starts with what the page is (its h1), one h1 and
    then headings in order, one main landmark, navigation landmarks told apart by name, and
    the navigation's entry for this page marked as the current one."""
    problems = []
    html_lang = page.evaluate("document.documentElement.lang")
    if html_lang != lang:
        problems.append(f"html lang is {html_lang!r}, not {lang!r}")
    nodes = [n for n in ax_nodes(page) if not n.get("ignored")]
    headings = []
    for n in nodes:
        if _value(n.get("role")) == "heading":
            props = {p["name"]: _value(p["value"]) for p in n.get("properties", [])}
            headings.append((int(props.get("level", 0)), str(_value(n.get("name")) or "").strip()))
    levels = [level for level, _ in headings]
    if levels.count(1) != 1 or levels[0] != 1:
        problems.append(f"headings {levels}: not one h1 first")
    for before, after in zip(levels, levels[1:], strict=False):
        if after > before + 1:
            problems.append(f"heading level jumps from {before} to {after}")
    h1 = next((name for level, name in headings if level == 1), "")
    # A heading's personal part (a household's dwelling, ``data-personal``) is kept out of the
    # title, which the browser's history keeps: the title starts with the rest of it.
    kept = page.evaluate(
        """() => { const h = document.querySelector('h1');
            if (!h || !h.querySelector('[data-personal]')) return null;
            const c = h.cloneNode(true);
            c.querySelectorAll('[data-personal]').forEach(n => n.remove());
            return c.textContent.replace(/\\s+/g, ' ').trim(); }"""
    )
    h1 = kept if kept else h1
    title = page.title()
    if not h1 or not title.startswith(h1):
        problems.append(f"title {title!r} does not start with the page's h1 {h1!r}")
    roles = [_value(n.get("role")) for n in nodes]
    if roles.count("main") != 1:
        problems.append(f"{roles.count('main')} main landmarks")
    navs = [
        str(_value(n.get("name")) or "") for n in nodes if _value(n.get("role")) == "navigation"
    ]
    if len(navs) > 1 and (not all(navs) or len(set(navs)) != len(navs)):
        problems.append(f"navigation landmarks not told apart by name: {navs}")
    current = page.evaluate(
        """() => [...document.querySelectorAll('nav a')].filter(a => a.classList.contains('on'))
                 .map(a => [a.textContent.trim(), a.getAttribute('aria-current')])"""
    )
    problems += [
        f"nav entry {t!r} is drawn as this page but not aria-current"
        for t, c in current
        if c != "page"
    ]
    return problems


#: The checks that run in the page (``A11Y`` in ``a11y_checks.js`` beside this file).
CHECKS = (Path(__file__).parent / "a11y_checks.js").read_text(encoding="utf-8")


def in_page(page: Any, call: str, arg: Any = None) -> Any:
    """``A11Y.<call>`` run in the page with ``arg``; what it returns."""
    return page.evaluate(f"(arg) => {{ {CHECKS}; return A11Y.{call}; }}", arg)


def low_contrast(page: Any) -> list[str]:
    return list(in_page(page, "contrast()"))


def reflow(page: Any) -> list[str]:
    return list(in_page(page, "reflow()"))


def small_targets(page: Any, minimum: float = TOUCH_PX) -> list[str]:
    return list(in_page(page, "targets(arg)", minimum))


def colour_only(page: Any) -> list[str]:
    return list(in_page(page, "colourOnly()"))


def same_names(page: Any) -> list[str]:
    return list(in_page(page, "sameNames()"))


def running_animations(page: Any) -> list[str]:
    return list(in_page(page, "animations()"))


#: Tab starts from the top of the page: a stop put first, focused, and marked as reached,
#: so that coming round to it again ends the walk; it is taken away after. What a mouse can
#: use is marked present then: a live page that redraws a part while the walk goes (an alarm
#: card) makes new elements the walk had no chance to reach, and ``unreached`` judges only
#: those present from the start.
START = (
    "() => { "
    + CHECKS
    + """;
    for (const el of document.querySelectorAll('[data-a11y-reached]'))
        delete el.dataset.a11yReached;
    for (const el of document.querySelectorAll(A11Y.USABLE)) el.dataset.a11yPresent = '1';
    const a = document.createElement('a'); a.id = 'a11y-start'; a.href = '#';
    a.textContent = 'start'; a.dataset.a11yReached = '1';
    document.body.prepend(a); a.focus(); }"""
)


def tab_walk(page: Any, limit: int = 200) -> tuple[list[dict[str, Any]], list[str]]:
    """Tab from the top of the page through it once: what got the focus, in order, every stop
    whose focus is not drawn (a ring of 2 px or more, 3:1 against what is around it), and
    what a mouse can use that Tab never reached."""
    page.evaluate(START)
    stops: list[dict[str, Any]] = []
    problems = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = in_page(page, "focus()")
        if stop is None or stop["what"] == "a#a11y-start":  # round to the start again
            break
        if stop["again"]:  # the parts of one field (a date's day, month and year)
            continue
        stops.append(stop)
        where = f"{stop['what']}[{stop['name']}] {stop['text']!r}"
        if stop["style"] in ("none", "") or stop["width"] < 2:
            problems.append(f"no focus ring on {where}: {stop['style']} {stop['width']}px")
        elif stop["style"] != "auto" and stop["contrast"] < 3:
            problems.append(f"focus ring at {stop['contrast']:.2f}:1 < 3:1 on {where}")
    page.evaluate("() => document.getElementById('a11y-start').remove()")
    problems += [f"not reached by Tab: {what}" for what in in_page(page, "unreached()")]
    return stops, problems
