from server.ratelimit import FailureLimiter, RateLimiter


def test_token_bucket():
    limiter = RateLimiter(per_minute=60, burst=2)
    assert limiter.check("a", now=0) == 0 and limiter.check("a", now=0) == 0
    assert limiter.check("a", now=0) > 0
    assert limiter.check("b", now=0) == 0  # per key
    assert limiter.check("a", now=1.01) == 0  # one token per second comes back


def test_failure_pause():
    limiter = FailureLimiter(limit=3, window_s=180, pause_s=1800)
    for t in (0, 10, 20):
        assert limiter.paused_for("ip", now=t) == 0
        limiter.record("ip", now=t)
    assert limiter.paused_for("ip", now=21) > 1700
    assert limiter.paused_for("ip", now=1821) == 0


def test_failures_outside_the_window_do_not_add_up():
    limiter = FailureLimiter(limit=3, window_s=180, pause_s=1800)
    for t in (0, 200, 400):
        limiter.record("ip", now=t)
    assert limiter.paused_for("ip", now=401) == 0
