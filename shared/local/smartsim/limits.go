package smartsim

import (
	"slices"
	"sync"
	"time"
)

// Limits are per-token request budgets over a sliding one-minute window.
type Limits struct {
	// PerMinute is the overall budget (default 300; negative: unlimited).
	PerMinute int `json:"perMinute"`
	// HistoryPerMinute is the separate cell-history budget (default 30;
	// negative: unlimited).
	HistoryPerMinute int `json:"historyPerMinute"`
	// Disabled turns rate limiting off.
	Disabled bool `json:"disabled"`
}

func (l Limits) withDefaults() Limits {
	if l.PerMinute == 0 {
		l.PerMinute = 300
	}
	if l.HistoryPerMinute == 0 {
		l.HistoryPerMinute = 30
	}
	return l
}

// limiter keeps, per token and budget, the times of the calls of the last minute.
type limiter struct {
	mu     sync.Mutex
	limits Limits
	calls  map[string][]time.Time // key: budget + token
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: l.withDefaults(), calls: map[string][]time.Time{}}
}

// allow records a call at now if the budget has room.
func (l *limiter) allow(token string, history bool, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.limits.Disabled {
		return true
	}
	max, key := l.limits.PerMinute, "all:"+token
	if history {
		max, key = l.limits.HistoryPerMinute, "history:"+token
	}
	if max < 0 {
		return true
	}
	window := now.Add(-time.Minute)
	ts := l.calls[key]
	drop := 0
	for drop < len(ts) && !ts[drop].After(window) {
		drop++
	}
	ts = ts[drop:]
	if len(ts) >= max {
		l.calls[key] = ts
		return false
	}
	l.calls[key] = append(ts, now)
	return true
}

func (l *limiter) set(lim Limits) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.limits = lim.withDefaults()
	l.calls = map[string][]time.Time{}
}

func (l *limiter) get() Limits {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.limits
}

// SetLimits replaces the rate limits and forgets past calls.
func (s *Server) SetLimits(l Limits) { s.limits.set(l) }

// CurrentLimits returns the rate limits in force.
func (s *Server) CurrentLimits() Limits { return s.limits.get() }

// MaxInWindow is the most of times (in any order) that fall within one window
// of length w, half-open as the simulator counts its per-minute limits: what
// a test of a rate budget compares with the limit.
func MaxInWindow(times []time.Time, w time.Duration) int {
	times = slices.Clone(times)
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range times {
		for j < len(times) && times[j].Before(times[i].Add(w)) {
			j++
		}
		best = max(best, j-i)
	}
	return best
}
