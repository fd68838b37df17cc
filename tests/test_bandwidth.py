"""The bitrate the server's SDP answer asks for (server/rtc/bandwidth.py)."""

from __future__ import annotations

from aiortc.sdp import SessionDescription

from server.rtc.bandwidth import RECEIVE_KBPS, limit_video_bitrate

ANSWER = (
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 97\r\nc=IN IP4 0.0.0.0\r\na=recvonly\r\na=mid:0\r\na=rtpmap:97 VP8/90000\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 AA:BB\r\na=setup:active\r\n"
    "m=application 9 DTLS/SCTP 5000\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sctpmap:5000 webrtc-datachannel 65535\r\n"
    "a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuv\r\na=fingerprint:sha-256 AA:BB\r\na=setup:active\r\n"
)


def sections(sdp: str) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for line in sdp.splitlines():
        if line.startswith("m="):
            parts.append([])
        parts[-1].append(line)
    return parts


def test_the_video_section_asks_for_the_cap_after_its_connection_line():
    session, video, data = sections(limit_video_bitrate(ANSWER))
    assert video[1:3] == ["c=IN IP4 0.0.0.0", f"b=AS:{RECEIVE_KBPS}"]
    assert not any(line.startswith("b=") for line in session + data)
    assert limit_video_bitrate(ANSWER).endswith("\r\n")


def test_a_bandwidth_line_already_there_is_replaced_not_repeated():
    once = limit_video_bitrate(ANSWER, 2000)
    twice = limit_video_bitrate(once, 300)
    video = sections(twice)[1]
    assert [line for line in video if line.startswith("b=")] == ["b=AS:300"]


def test_aiortc_still_reads_the_answer():
    parsed = SessionDescription.parse(limit_video_bitrate(ANSWER))
    assert [m.kind for m in parsed.media] == ["video", "application"]
    assert parsed.media[0].rtp.codecs[0].name == "VP8"


def test_each_video_codec_is_asked_to_start_at_the_cap_and_retransmission_is_left_alone():
    answer = ANSWER.replace("a=rtpmap:97 VP8/90000\r\n", "a=rtpmap:97 VP8/90000\r\na=rtpmap:98 rtx/90000\r\na=fmtp:98 apt=97\r\n"
                            "a=rtpmap:99 H264/90000\r\na=fmtp:99 packetization-mode=1;x-google-start-bitrate=100\r\n")
    video = sections(limit_video_bitrate(limit_video_bitrate(answer)))[1]
    fmtp = [line for line in video if line.startswith("a=fmtp:")]
    assert fmtp == [f"a=fmtp:97 x-google-start-bitrate={RECEIVE_KBPS}", "a=fmtp:98 apt=97",
                    f"a=fmtp:99 packetization-mode=1;x-google-start-bitrate={RECEIVE_KBPS}"]
    assert video.index(fmtp[0]) == video.index("a=rtpmap:97 VP8/90000") + 1
    parsed = SessionDescription.parse(limit_video_bitrate(answer))
    assert parsed.media[0].rtp.codecs[0].parameters == {"x-google-start-bitrate": str(RECEIVE_KBPS)}
