package smartsheet

import (
	"errors"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// retryClass is how a failure is retried.
type retryClass uint8

const (
	retryNone        retryClass = iota // never retried
	retryServer                        // 4002, 4004, 502/503/504: short exponential backoff
	retryTransport                     // no HTTP answer: short exponential backoff
	retryRateLimit                     // 4003, 429: long backoff
	retryMaintenance                   // 4001: minutes
)

// backoff is the schedule of one retry class: base doubles per attempt up to max.
type backoff struct{ base, max time.Duration }

// backoffs is the classification table's schedule. Jitter spreads each delay
// over ±25%.
var backoffs = map[retryClass]backoff{
	retryServer:      {base: 1 * time.Second, max: 30 * time.Second},
	retryTransport:   {base: 1 * time.Second, max: 30 * time.Second},
	retryRateLimit:   {base: 20 * time.Second, max: 2 * time.Minute},
	retryMaintenance: {base: 1 * time.Minute, max: 5 * time.Minute},
}

// retryCodes are the Smartsheet errorCodes worth retrying.
var retryCodes = map[int]retryClass{
	CodeMaintenance:   retryMaintenance, // 503 maintenance
	CodeServerTimeout: retryServer,      // 500 server timeout
	CodeRateLimited:   retryRateLimit,   // 429 rate limit
	CodeUnexpected:    retryServer,      // 500 unexpected, or sheet busy with another request
}

// retryStatuses are bare HTTP statuses worth retrying whatever the body.
var retryStatuses = map[int]retryClass{
	http.StatusTooManyRequests:    retryRateLimit,
	http.StatusBadGateway:         retryServer,
	http.StatusServiceUnavailable: retryServer,
	http.StatusGatewayTimeout:     retryServer,
}

// classify applies the table: errorCode first, then the bare status. Every
// other answer (all other 4xx, 500 without a retryable code) is final, but
// for a bare 500 to a read, which the client retries (see Client.attempt).
func classify(e *APIError) retryClass {
	if c, ok := retryCodes[e.ErrorCode]; ok {
		return c
	}
	if c, ok := retryStatuses[e.StatusCode]; ok {
		return c
	}
	return retryNone
}

// mayHaveApplied reports whether a failed attempt leaves open that
// Smartsheet applied the request, which decides whether a NoReplay write may
// be sent again. Only answers that prove the request was refused before any
// change (429/4003 rate limit, 4001 maintenance, any 4xx, a 5xx with another
// Smartsheet errorCode) and transport errors raised before a connection
// existed are excluded; everything else (a 500/502/503/504 with errorCode
// 4002, 4004 or none, a timeout, a connection lost mid-request, an
// unreadable 2xx body) may come after the change was saved.
func mayHaveApplied(err error) bool {
	var apiErr *APIError
	if errors.As(err, &apiErr) {
		switch apiErr.StatusCode {
		case http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return apiErr.ErrorCode == 0 || apiErr.ErrorCode == CodeServerTimeout || apiErr.ErrorCode == CodeUnexpected
		}
		return false
	}
	var de *decodeError
	if errors.As(err, &de) {
		return true
	}
	var te *TransportError
	if errors.As(err, &te) {
		return !neverSent(te.Err)
	}
	return false
}

// neverSent reports a transport error raised while connecting (dial or DNS
// failure): the server cannot have seen the request, so resending is safe.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// backoffFor is the delay before retry number attempt (1-based) with jitter
// j in [0,1): j=0.5 gives the nominal delay.
func backoffFor(class retryClass, attempt int, j float64) time.Duration {
	b, ok := backoffs[class]
	if !ok {
		return 0
	}
	d := float64(b.base) * math.Pow(2, float64(min(attempt-1, 30)))
	d = min(d, float64(b.max))
	return time.Duration(d * (0.75 + 0.5*j))
}

// parseRetryAfter reads a Retry-After header: delay seconds or an HTTP date.
// It returns 0 when absent or unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}
