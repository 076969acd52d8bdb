package smartsheet

import (
	"math"
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
// other answer (all other 4xx, 500 without a retryable code) is final.
func classify(e *APIError) retryClass {
	if c, ok := retryCodes[e.ErrorCode]; ok {
		return c
	}
	if c, ok := retryStatuses[e.StatusCode]; ok {
		return c
	}
	return retryNone
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
