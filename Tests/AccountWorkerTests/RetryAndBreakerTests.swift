import AccountWorker
import Testing
import UseAPI

@Suite("Retry classification, backoff and the circuit breaker")
struct RetryAndBreakerTests {
    func api(_ status: Int, retryAfter: Duration? = nil) -> UseAPIFailure {
        .api(UseAPIResponseError(statusCode: status, error: "x", retryAfter: retryAfter))
    }

    @Test("final codes are never retried", arguments: [400, 401, 402, 403, 404, 409, 410, 422, 451, 596])
    func finalCodes(status: Int) {
        #expect(RetryPolicy.disposition(of: api(status)) == .final)
        #expect(!RetryPolicy.countsAsOutage(api(status)))
    }

    @Test("408, 429, other 5xx and transport failures are retried", arguments: [408, 429, 500, 502, 503, 504, 599])
    func retriedCodes(status: Int) {
        #expect(RetryPolicy.disposition(of: api(status, retryAfter: .seconds(3))) == .retry(retryAfter: .seconds(3)))
        #expect(RetryPolicy.countsAsOutage(api(status)) == (status >= 500))
    }

    @Test(
        "transport failures are retried and count as an outage",
        arguments: [UseAPITransportError.Kind.timeout, .connection, .tls, .invalidResponse]
    )
    func transport(kind: UseAPITransportError.Kind) {
        let failure = UseAPIFailure.transport(UseAPITransportError(kind: kind, message: "x"))
        #expect(RetryPolicy.disposition(of: failure) == .retry(retryAfter: nil))
        #expect(RetryPolicy.countsAsOutage(failure))
    }

    @Test("backoff: full jitter under an exponential ceiling, capped; Retry-After honoured and capped")
    func backoff() {
        let policy = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(500), maxDelay: .seconds(60))
        #expect(policy.delay(afterAttempt: 1, retryAfter: nil, random: { 0.999999 }) <= .milliseconds(500))
        #expect(policy.delay(afterAttempt: 3, retryAfter: nil, random: { 0.5 }) == .seconds(1))
        #expect(policy.delay(afterAttempt: 3, retryAfter: nil, random: { 0 }) == .zero)
        #expect(policy.delay(afterAttempt: 20, retryAfter: nil, random: { 0.999999 }) <= .seconds(60))
        #expect(policy.delay(afterAttempt: 20, retryAfter: nil, random: { 0.5 }) == .seconds(30))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(7)) == .seconds(7))
        #expect(policy.delay(afterAttempt: 1, retryAfter: .seconds(3600)) == .seconds(60))
        // A lower backoff cap does not shorten the wait useapi asked for.
        let fast = RetryPolicy(maxAttempts: 5, baseDelay: .milliseconds(10), maxDelay: .milliseconds(100))
        #expect(fast.delay(afterAttempt: 1, retryAfter: .seconds(2)) == .seconds(2))
        #expect(fast.delay(afterAttempt: 1, retryAfter: .seconds(3600)) == .seconds(60))
        for attempt in 1...10 {
            let delay = policy.delay(afterAttempt: attempt, retryAfter: nil)
            #expect(delay >= .zero && delay <= .seconds(60))
        }
    }

    @Test("the circuit opens after failures for N different accounts, with no other answer in between")
    func opens() {
        var breaker = CircuitBreaker(threshold: 3)
        let now = ContinuousClock.now
        breaker.record(email: "a", outage: true, wasProbe: false, now: now)
        breaker.record(email: "a", outage: true, wasProbe: false, now: now)
        breaker.record(email: "b", outage: true, wasProbe: false, now: now)
        #expect(breaker.state == .closed, "two distinct accounts are not three")
        // Any other answer resets the count.
        breaker.record(email: "z", outage: false, wasProbe: false, now: now)
        breaker.record(email: "c", outage: true, wasProbe: false, now: now)
        breaker.record(email: "d", outage: true, wasProbe: false, now: now)
        #expect(breaker.state == .closed)
        do { let changed = breaker.record(email: "e", outage: true, wasProbe: false, now: now); #expect(changed) }
        #expect(breaker.state == .open)
        #expect(breaker.openings == 1)
    }

    @Test("while open: one probe at a time, backing off 250 ms doubling to 10 s; a good answer closes it")
    func probes() {
        var breaker = CircuitBreaker(threshold: 1)
        var now = ContinuousClock.now
        breaker.record(email: "a", outage: true, wasProbe: false, now: now)
        do { let permission = breaker.permission(now: now); #expect(permission == .wait(.milliseconds(250))) }
        now += .milliseconds(250)
        do { let permission = breaker.permission(now: now); #expect(permission == .call(isProbe: true)) }
        if case .wait = breaker.permission(now: now) {} else { Issue.record("a second probe was allowed") }
        // The contract's sequence, as literal values: 250 ms (above), then
        // doubling after each failed probe up to 10 s, and staying there.
        let expectedDelays: [Duration] = [
            .milliseconds(500), .seconds(1), .seconds(2), .seconds(4), .seconds(8), .seconds(10), .seconds(10), .seconds(10),
        ]
        for expected in expectedDelays {
            breaker.record(email: "a", outage: true, wasProbe: true, now: now)
            do { let permission = breaker.permission(now: now); #expect(permission == .wait(expected)) }
            now += expected
            do { let permission = breaker.permission(now: now); #expect(permission == .call(isProbe: true)) }
        }
        do { let changed = breaker.record(email: "a", outage: false, wasProbe: true, now: now); #expect(changed) }
        #expect(breaker.state == .closed)
        do { let permission = breaker.permission(now: now); #expect(permission == .call(isProbe: false)) }
    }
}
