"""The operator console's dashboard: the funnel by day, drop-off per step, failure reasons, median time
to complete and webhook health for the operator's merchant, drawn as SVG on the server, and as CSV."""

from __future__ import annotations

import time
from html import escape

from aiohttp import web

from ..http.services import SERVICES
from ..operators.dashboard import STEP_NAMES, Dashboard, build, to_csv
from ..storage.face_data import FaceDataRecords
from .console_pages import render_console, signed_in
from .i18n import Translator
from .rendering import translator_for

routes = web.RouteTableDef()

DEFAULT_DAYS = 14
MAX_DAYS = 366


def period(request: web.Request) -> tuple[int, float, float]:
    try:
        days = min(MAX_DAYS, max(1, int(request.query.get("days", DEFAULT_DAYS))))
    except ValueError:
        days = DEFAULT_DAYS
    until = time.time() + 1
    return days, until - days * 86400, until


def dashboard_for(request: web.Request, merchant_id: int, since: float, until: float) -> Dashboard:
    operators = request.app[SERVICES].operators
    return build(operators.funnel_events(merchant_id, since, until), operators.outcomes(merchant_id, since, until), operators.webhook_events(merchant_id, since, until))


@routes.get("/console/dashboard")
async def dashboard_page(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, token = signed_in(request)
    days, since, until = period(request)
    dashboard = dashboard_for(request, operator.merchant_id, since, until)
    services.store.audit(operator.actor, "console.dashboard_viewed", detail={"days": days})
    t = translator_for(request)
    merchant = services.store.merchant(operator.merchant_id)
    return render_console(
        request,
        "console_dashboard.html",
        operator,
        token,
        days=days,
        dashboard=dashboard,
        steps=STEP_NAMES,
        funnel_svg=funnel_chart(dashboard, t),
        daily_svg=daily_chart(dashboard, t),
        merchant=merchant,
        census=FaceDataRecords(services.store).census(services.settings.face_data_filing_threshold),
        retention_days=int(services.settings.retention_days),
    )


@routes.get("/console/dashboard.csv")
async def dashboard_csv(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    operator, _ = signed_in(request)
    days, since, until = period(request)
    services.store.audit(operator.actor, "console.dashboard_exported", detail={"days": days})
    body = to_csv(dashboard_for(request, operator.merchant_id, since, until))
    return web.Response(
        text=body,
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="realname-funnel-{days}d.csv"', "Cache-Control": "no-store"},
    )


# -- charts (inline SVG: no script, allowed by the CSP, readable by a screen reader through its title) --


def funnel_chart(dashboard: Dashboard, t: Translator) -> str:
    """Horizontal bars, one per step, with the count and the share of sessions created."""
    width, bar_h, gap, label_w = 560, 22, 8, 170
    top = max(1, dashboard.totals["created"])
    rows = []
    for index, name in enumerate(STEP_NAMES):
        count = dashboard.totals[name]
        y = index * (bar_h + gap)
        length = round((width - label_w - 70) * count / top)
        rows.append(
            f'<text x="0" y="{y + 16}" class="label">{escape(t(f"console.step.{name}"))}</text>'
            f'<rect x="{label_w}" y="{y}" width="{length}" height="{bar_h}" class="bar"/>'
            f'<text x="{label_w + length + 6}" y="{y + 16}" class="value">{count} ({round(100 * count / top)}%)</text>'
        )
    height = len(STEP_NAMES) * (bar_h + gap)
    title = escape(t("console.dashboard.funnel"))
    return f'<svg role="img" aria-labelledby="funnel-title" viewBox="0 0 {width} {height}" class="chart"><title id="funnel-title">{title}</title>{"".join(rows)}</svg>'


def daily_chart(dashboard: Dashboard, t: Translator) -> str:
    """Per day: sessions created (light) and approved (dark) as paired columns, under a legend."""
    width, height, bottom, legend_h = 560, 200, 20, 22
    days = dashboard.days or []
    peak = max([1, *(d.counts["created"] for d in days)])
    slot = (width - 10) / max(1, len(days))
    parts = []
    for index, day in enumerate(days):
        x = 5 + index * slot
        for offset, name, css in ((0.1, "created", "bar light"), (0.5, "approved", "bar")):
            value = day.counts[name]
            h = round((height - bottom - legend_h - 10) * value / peak)
            parts.append(f'<rect x="{x + slot * offset:.1f}" y="{height - bottom - h}" width="{slot * 0.38:.1f}" height="{h}" class="{css}"><title>{day.day} {escape(t(f"console.step.{name}"))}: {value}</title></rect>')
        parts.append(f'<text x="{x + slot / 2:.1f}" y="{height - 5}" class="tick" text-anchor="middle">{day.day[5:]}</text>')
    for index, (name, css) in enumerate((("created", "bar light"), ("approved", "bar"))):
        x = 5 + index * 150
        parts.append(
            f'<g class="legend" data-legend="{name}"><rect x="{x}" y="2" width="14" height="14" class="{css}"/>'
            f'<text x="{x + 20}" y="14" class="label">{escape(t(f"console.step.{name}"))}</text></g>'
        )
    title = escape(t("console.dashboard.daily"))
    return f'<svg role="img" aria-labelledby="daily-title" viewBox="0 0 {width} {height}" class="chart"><title id="daily-title">{title}</title>{"".join(parts)}</svg>'
