"""A cheap accessibility and small-screen check run on every page the suite visits."""

from __future__ import annotations

AUDIT = """
() => {
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const named = (el) => {
    if (el.getAttribute("aria-label") || el.getAttribute("aria-labelledby")) return true;
    return !!(el.labels && Array.from(el.labels).some((label) => label.textContent.trim()));
  };
  const controls = Array.from(document.querySelectorAll("input, select, textarea"))
    .filter((el) => el.type !== "hidden");
  return {
    h1: document.querySelectorAll("h1").length,
    lang: document.documentElement.lang,
    title: document.title.trim(),
    unlabelled: controls.filter((el) => !named(el)).map((el) => el.outerHTML),
    unnamedButtons: Array.from(document.querySelectorAll("button, a[href]"))
      .filter((el) => visible(el) && !(el.textContent.trim() || el.getAttribute("aria-label")))
      .map((el) => el.outerHTML),
    imagesWithoutAlt: Array.from(document.querySelectorAll("img:not([alt])")).map((el) => el.outerHTML),
    scrollWidth: Math.max(document.documentElement.scrollWidth, document.body ? document.body.scrollWidth : 0),
    innerWidth: window.innerWidth,
    liveRegions: Array.from(document.querySelectorAll("[aria-live]")).map((el) => [el.id, el.getAttribute("aria-live")]),
  };
}
"""


async def audit(page) -> dict:
    return await page.evaluate(AUDIT)


async def assert_accessible(page, width: int = 360) -> dict:
    """One h1, a lang and a title, every control labelled, nothing wider than a 360 px phone."""
    found = await audit(page)
    where = page.url
    assert found["h1"] == 1, f"{where}: {found['h1']} h1 elements"
    assert found["lang"] in ("en", "zh-Hans"), f"{where}: lang={found['lang']!r}"
    assert found["title"], f"{where}: no <title>"
    assert not found["unlabelled"], f"{where}: controls without a label: {found['unlabelled']}"
    assert not found["unnamedButtons"], f"{where}: buttons or links without a name: {found['unnamedButtons']}"
    assert not found["imagesWithoutAlt"], f"{where}: images without alt: {found['imagesWithoutAlt']}"
    if found["innerWidth"] <= width:
        assert found["scrollWidth"] <= width, f"{where}: scrolls sideways ({found['scrollWidth']} px wide)"
    return found


async def assert_in_view(page, selector: str) -> dict:
    """The element is entirely on screen without scrolling (what a customer holding the phone sees)."""
    box = await page.locator(selector).evaluate(
        "el => { const r = el.getBoundingClientRect(); return {top: r.top, bottom: r.bottom, height: window.innerHeight}; }"
    )
    assert box["top"] >= 0 and box["bottom"] <= box["height"], f"{selector} is off screen: {box}"
    return box
