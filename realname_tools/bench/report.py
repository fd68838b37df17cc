"""The bench report as text."""

from __future__ import annotations

from typing import Any

# -- rendering ------------------------------------------------------------------------------------


def fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_report(report: dict[str, Any]) -> str:
    stream = report["stream"]
    totals = report["totals"]
    lines = [
        f"Realname bench: {report['sessions']} session(s) x {report['seconds']:g} s, {report['video']} "
        f"({stream['width']}x{stream['height']} @ {stream['fps']:g} fps), challenges {','.join(report['challenges'])}",
        f"sender: {stream['sender']}",
        f"server {report['server']['url']} ({'started by the bench' if report['server']['managed'] else 'external'}), "
        f"{report['machine']['cores']} cores, load average at start {report['machine']['loadavg_at_start']}",
        "",
        f"{'#':>3} {'recv':>6} {'anal':>6} {'lat p50':>8} {'p95':>6} {'max':>6} {'thirds p50':>16} {'dropped':>8} "
        f"{'lag p95':>8} {'sent':>6} {'late95':>7}  note",
    ]
    for r in report["per_session"]:
        lat = r.get("latency_ms") or {}
        lag = r.get("arrival_lag_ms") or {}
        late = r.get("send_late_ms") or {}
        thirds = "/".join(fmt(v, 0) for v in (r.get("latency_p50_ms_by_third") or []))
        note = r.get("error") or ("ended before bye: " + str(r.get("failure_reason")) if r.get("ended_before_bye") else "")
        lines.append(
            f"{r['index']:>3} {fmt(r.get('received_fps')):>6} {fmt(r.get('analysed_fps')):>6} {fmt(lat.get('p50')):>8} "
            f"{fmt(lat.get('p95')):>6} {fmt(lat.get('max'), 0):>6} {thirds:>16} {fmt(r.get('frames_dropped')):>8} "
            f"{fmt(lag.get('p95')):>8} {fmt(r.get('sent_fps')):>6} {fmt(late.get('p95')):>7}  {note}"
        )
    lines += [
        "  (fps: received / analysed by the server; latency: frame arrival -> analysis result, ms, and its median in",
        "   the first/middle/last third; lag: arrival delay beyond the stream's best frame; sent/late95: the bench's sender)",
        "",
        f"analysed fps: sum {fmt(totals['analysed_fps_sum'])}, lowest session {fmt(totals['min_session_analysed_fps'])}; "
        f"p95 latency: worst session {fmt(totals['p95_latency_ms_max'])} ms, median session {fmt(totals['p95_latency_ms_median'])} ms",
        f"server CPU {fmt(totals['server_cpu_percent'])} % of all cores; bench client CPU {fmt(totals['client_cpu_percent'])} %; "
        f"whole machine {fmt(totals['machine_cpu_percent'])} % (other processes {fmt(totals['other_cpu_percent'])} %)",
        f"server memory: idle {fmt(totals['server_rss_idle_mb'])} MB, peak {fmt(totals['server_rss_peak_mb'])} MB, "
        f"{fmt(totals['rss_per_session_mb'])} MB per session; threads idle {fmt(totals.get('server_threads_idle'))}, "
        f"live {fmt(totals.get('server_threads_live'))}",
    ]
    lines.append(
        f"admitted {fmt(totals.get('admitted'))}, queued {fmt(totals.get('queued'))} (admitted once places freed: "
        f"{fmt(totals.get('queued_admitted_later'))}); lowest admitted session {fmt(totals.get('min_admitted_analysed_fps'))} fps; "
        f"server capacity {fmt(totals.get('capacity_sessions'))} checks at {fmt((report.get('server_capacity') or {}).get('required_fps'))} fps "
        f"({fmt(totals.get('server_cpu_ms_per_frame'), 2)} CPU ms per analysed frame)"
    )
    lines.append(
        f"bare landmarker {fmt(totals.get('bare_landmarker_ms'), 2)} ms/frame per core with every core busy "
        f"({fmt(totals.get('bare_landmarker_one_core_ms'), 2)} ms alone) -> {fmt(totals.get('bare_bound_fps'))} fps on the "
        f"{report['machine']['cores']} cores less the bench's own customers; efficiency {fmt(totals.get('efficiency'), 3)} "
        f"(analysed fps sum / that bound; over all cores: {fmt(totals.get('efficiency_all_cores'), 3)}; "
        f"against MediaPipe's graph alone, {fmt(totals.get('bare_graph_ms'), 2)} ms: {fmt(totals.get('efficiency_graph_only'), 3)})"
    )
    lines.append(
        f"capacity against the bound (0.8 x {report['machine']['cores']} cores x 1000 / {fmt(totals.get('bare_graph_ms'), 2)} ms / 10 fps = "
        f"{fmt(totals.get('capacity_bound'), 2)} checks): {fmt(totals.get('capacity_vs_bound'), 3)}; the measured checks' step needs "
        f"{fmt(totals.get('step_fps_needed'))} fps"
    )
    decision = report.get("decision") or {}
    if decision.get("decision_ms") is not None:
        parts = ", ".join(f"{k} {v}" for k, v in (decision.get("decision_parts_ms") or {}).items())
        lines.append(f"last challenge -> decision: {decision['decision_ms']} ms ({decision.get('status')}, one session, idle server)"
                     + (f": {parts} ms" if parts else ""))
    else:
        lines.append(f"last challenge -> decision: not measured ({decision.get('error')})")
    t = report["targets_met"]
    mark = {True: "met", False: "NOT met", None: "n/a"}
    lines.append(
        f"targets: >= {t['analysed_fps_at_least']:g} fps each: {mark[t['fps']]}; p95 < {t['p95_latency_below_ms']:g} ms: "
        f"{mark[t['latency']]}; < {t['rss_per_session_below_mb']:g} MB/session: {mark[t['memory']]}; "
        f"no growing backlog: {mark[t['no_growing_backlog']]}"
    )
    profile = report.get("profile")
    if profile:
        lines.append("")
        if profile.get("error"):
            lines.append(f"profile: {profile['error']}")
        if profile.get("stages"):
            lines.append(
                f"server profile (py-spy, {profile['samples_working']} working samples over {profile['seconds']} s at "
                f"{profile['rate_hz']} Hz; cores = threads busy there on average):"
            )
            for row in profile["stages"]:
                lines.append(f"  {row['name']:<45} {row['percent_of_working']:>5.1f} %  {row['cores']:>5.2f} cores")
        gil = profile.get("gil") or {}
        if gil.get("gil_held_percent") is not None:
            holders = ", ".join(f"{row['name']} {row['percent_of_time']} %" for row in gil["by_thread"][:4])
            lines.append(f"GIL held {gil['gil_held_percent']} % of the time ({holders})")
        lines.append("server CPU by thread (from /proc, exact):")
        for row in profile.get("threads", []):
            lines.append(f"  {row['name']:<56} x{row['threads']:<3} {row['cores']:>5.2f} cores")
    return "\n".join(lines)


