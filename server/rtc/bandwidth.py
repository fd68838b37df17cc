"""The video bitrate a live check receives: what the analysis needs, asked of the browser twice.

The page caps its encoder (`maxBitrate`, from the page config) and the server's SDP answer says the same
(`b=AS` in the video section, RFC 8866: the bandwidth the answerer wants to receive), for a browser that
ignores the first. Left alone, a browser's encoder rises with its bandwidth estimate; every extra bit
is decoded and every extra packet goes through aiortc's Python. Through VP8 at this cap the 18 shared
clip cases and passive anti-spoofing keep their verdicts, and at half of it too; at 200 kbps one
verdict changed (docs/benchmarks.md, "The bitrate the page sends").
"""

from __future__ import annotations

RECEIVE_KBPS = 600


def limit_video_bitrate(sdp: str, kbps: int = RECEIVE_KBPS) -> str:
    """The SDP with `b=AS:kbps` in its video section, after the section's `c=` line (where the bandwidth
    line goes), replacing any `b=AS` there."""
    out: list[str] = []
    in_video = added = False
    for line in sdp.splitlines():
        if line.startswith("m="):
            in_video, added = line.startswith("m=video"), False
        elif in_video and line.startswith("b=AS:"):
            continue
        out.append(line)
        if in_video and not added and line.startswith("c="):
            out.append(f"b=AS:{kbps}")
            added = True
    return "\r\n".join(out) + "\r\n"
