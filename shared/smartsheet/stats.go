package smartsheet

import (
	"maps"
	"sync"
	"time"
)

// Stats is a snapshot of a client's API usage.
type Stats struct {
	// Requests is the number of HTTP requests sent, retries included.
	Requests int64
	// Calls counts HTTP requests per endpoint ("GET /sheets/{sheetId}").
	Calls map[string]int64
	// Retries is the number of retries (requests after a failed attempt).
	Retries int64
	// BackoffTime is the total time slept before retries.
	BackoffTime time.Duration
	// Throttled counts rate-limit answers from the server (429/4003).
	Throttled int64
	// RateLimitWaits counts calls the client-side limiter delayed.
	RateLimitWaits int64
	// RateLimitWaitTime is the total delay imposed by the client-side limiter.
	RateLimitWaitTime time.Duration
	// CellHistoryCalls counts cell-history requests (30/minute budget).
	CellHistoryCalls int64
}

type statsRecorder struct {
	mu sync.Mutex
	s  Stats
}

func (r *statsRecorder) request(endpoint string, class limitClass) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Requests++
	if r.s.Calls == nil {
		r.s.Calls = map[string]int64{}
	}
	r.s.Calls[endpoint]++
	if class == limitHistory {
		r.s.CellHistoryCalls++
	}
}

func (r *statsRecorder) retry(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Retries++
	r.s.BackoffTime += d
}

func (r *statsRecorder) throttled() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.Throttled++
}

func (r *statsRecorder) limiterWait(d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s.RateLimitWaits++
	r.s.RateLimitWaitTime += d
}

// Stats returns a snapshot of the client's usage counters.
func (c *Client) Stats() Stats {
	c.stats.mu.Lock()
	defer c.stats.mu.Unlock()
	s := c.stats.s
	s.Calls = maps.Clone(s.Calls)
	if s.Calls == nil {
		s.Calls = map[string]int64{}
	}
	return s
}
