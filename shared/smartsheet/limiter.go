package smartsheet

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limitClass says which budgets a call draws on.
type limitClass uint8

const (
	limitGeneral limitClass = iota // counts against requests per minute
	limitHistory                   // also counts against cell history per minute
)

// Limiter is the client-side rate limiter: at most N requests in any sliding
// minute overall and at most M cell-history calls in any sliding minute. It
// also serialises writes to one sheet. Share one Limiter between all clients
// of a process that use the same token (Config.Limiter).
//
// It keeps the times of the last N grants, so a burst may use the whole
// minute's budget at once and the next call waits until the oldest grant is a
// minute old. Times come from the caller, so tests use a fake clock.
type Limiter struct {
	mu      sync.Mutex
	general window
	history window

	locksMu sync.Mutex
	locks   map[int64]*sheetLock
}

// NewLimiter returns a limiter of requestsPerMinute overall and
// historyPerMinute cell-history calls. A value <= 0 means unlimited.
func NewLimiter(requestsPerMinute, historyPerMinute int) *Limiter {
	return &Limiter{
		general: newWindow(requestsPerMinute, time.Minute),
		history: newWindow(historyPerMinute, time.Minute),
		locks:   map[int64]*sheetLock{},
	}
}

// window remembers the last n grant times (a ring, oldest at next).
type window struct {
	n     int
	per   time.Duration
	times []time.Time
	next  int
	full  bool
	last  time.Time
}

func newWindow(n int, per time.Duration) window {
	if n <= 0 {
		return window{}
	}
	return window{n: n, per: per, times: make([]time.Time, n)}
}

// earliest is the first time >= now at which one more grant keeps at most n
// grants in any interval of length per. Grants are kept in time order.
func (w *window) earliest(now time.Time) time.Time {
	if w.n == 0 {
		return now
	}
	t := now
	if w.last.After(t) {
		t = w.last
	}
	if w.full {
		if free := w.times[w.next].Add(w.per); free.After(t) {
			t = free
		}
	}
	return t
}

func (w *window) record(t time.Time) {
	if w.n == 0 {
		return
	}
	w.times[w.next] = t
	w.next++
	if w.next == w.n {
		w.next, w.full = 0, true
	}
	w.last = t
}

// errLimiterDeadline is returned when the slot would come after the deadline.
type errLimiterDeadline struct{ wait time.Duration }

func (e errLimiterDeadline) Error() string {
	return fmt.Sprintf("rate limiter: next slot in %s is after the context deadline", e.wait)
}

func (e errLimiterDeadline) Unwrap() error { return context.DeadlineExceeded }

// reserve asks for a slot for a call of class at now. A general call always
// gets one, possibly in the future (FIFO): it must wait the returned time and
// then go. A cell-history call only gets a slot that is free now; otherwise
// reserved is false and the caller waits the returned time and asks again, so
// history calls queued behind their small budget never hold general slots in
// the future. If deadline is set and the slot comes after it, nothing is
// taken and the error wraps context.DeadlineExceeded.
func (l *Limiter) reserve(class limitClass, now, deadline time.Time) (wait time.Duration, reserved bool, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.general.earliest(now)
	if class == limitHistory {
		if h := l.history.earliest(now); h.After(t) {
			t = h
		}
	}
	wait = t.Sub(now)
	if !deadline.IsZero() && t.After(deadline) {
		return 0, false, errLimiterDeadline{wait}
	}
	if class == limitHistory {
		if wait > 0 {
			return wait, false, nil
		}
		l.history.record(t)
	}
	l.general.record(t)
	return wait, true, nil
}

// sheetLock is a context-aware mutex with a reference count.
type sheetLock struct {
	ch   chan struct{}
	refs int
}

// lockSheet serialises writes to one sheet (Smartsheet answers 4004 to
// concurrent writes). It honours ctx while waiting.
func (l *Limiter) lockSheet(ctx context.Context, sheetID int64) (func(), error) {
	l.locksMu.Lock()
	sl := l.locks[sheetID]
	if sl == nil {
		sl = &sheetLock{ch: make(chan struct{}, 1)}
		l.locks[sheetID] = sl
	}
	sl.refs++
	l.locksMu.Unlock()

	release := func() {
		l.locksMu.Lock()
		sl.refs--
		if sl.refs == 0 {
			delete(l.locks, sheetID)
		}
		l.locksMu.Unlock()
	}
	select {
	case sl.ch <- struct{}{}:
		return func() { <-sl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
