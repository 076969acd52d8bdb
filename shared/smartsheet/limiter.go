package smartsheet

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// RateLimiter is what the client asks before sending each request, retries
// included: a slot in the token's rate budgets. Smartsheet counts its limits
// per token, so every client of one token must draw on one budget: the
// in-memory *Limiter does that within a process (the default, and the CLI's),
// a budget kept outside the process (dynamo.RateBudget, the Lambda
// functions') across processes. Writes to one sheet are serialised by the
// client itself, not by the RateLimiter.
type RateLimiter interface {
	// Reserve asks for one request's slot. reserved true: the request may go
	// once wait has passed (0: now). reserved false: nothing was taken; the
	// client waits and asks again. A slot that would come after r.Deadline is
	// refused with an error wrapping context.DeadlineExceeded; any other
	// error fails the request (a limiter that cannot tell must never let a
	// request through).
	Reserve(ctx context.Context, r Reservation) (wait time.Duration, reserved bool, err error)
}

// Reservation describes the request a slot is asked for.
type Reservation struct {
	// History marks a cell-history request: it draws on the cell-history
	// budget as well as the overall one.
	History bool
	// Now is the client's clock (Config.Now).
	Now time.Time
	// Deadline is the context's deadline on the client's clock; zero: none.
	Deadline time.Time
}

// limitClass says which budgets a call draws on.
type limitClass uint8

const (
	limitGeneral limitClass = iota // counts against requests per minute
	limitHistory                   // also counts against cell history per minute
)

// Limiter is the in-memory RateLimiter: at most N requests in any sliding
// minute overall and at most M cell-history calls in any sliding minute.
// Share one Limiter between all clients of a process that use the same token
// (Config.Limiter); processes that share a token need a shared budget instead
// (see RateLimiter).
//
// It keeps the times of the last N grants, so a burst may use the whole
// minute's budget at once and the next call waits until the oldest grant is a
// minute old. Times come from the caller, so tests use a fake clock.
type Limiter struct {
	mu      sync.Mutex
	general window
	history window
}

var _ RateLimiter = (*Limiter)(nil)

// NewLimiter returns a limiter of requestsPerMinute overall and
// historyPerMinute cell-history calls. A value <= 0 means unlimited.
func NewLimiter(requestsPerMinute, historyPerMinute int) *Limiter {
	return &Limiter{
		general: newWindow(requestsPerMinute, time.Minute),
		history: newWindow(historyPerMinute, time.Minute),
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

// Reserve implements RateLimiter (see reserve).
func (l *Limiter) Reserve(_ context.Context, r Reservation) (time.Duration, bool, error) {
	class := limitGeneral
	if r.History {
		class = limitHistory
	}
	return l.reserve(class, r.Now, r.Deadline)
}

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

// sheetLocks serialise a client's writes to each sheet (Smartsheet answers
// 4004 to concurrent writes). They stay in the client whatever RateLimiter it
// uses: across processes the pipeline's leases keep the writers of a sheet
// apart (the audit-log lease), and a 4004 is retried anyway.
type sheetLocks struct {
	mu    sync.Mutex
	locks map[int64]*sheetLock
}

func newSheetLocks() *sheetLocks { return &sheetLocks{locks: map[int64]*sheetLock{}} }

// sheetLock is a context-aware mutex with a reference count.
type sheetLock struct {
	ch   chan struct{}
	refs int
}

// lock serialises writes to one sheet. It honours ctx while waiting.
func (l *sheetLocks) lock(ctx context.Context, sheetID int64) (func(), error) {
	l.mu.Lock()
	sl := l.locks[sheetID]
	if sl == nil {
		sl = &sheetLock{ch: make(chan struct{}, 1)}
		l.locks[sheetID] = sl
	}
	sl.refs++
	l.mu.Unlock()

	release := func() {
		l.mu.Lock()
		sl.refs--
		if sl.refs == 0 {
			delete(l.locks, sheetID)
		}
		l.mu.Unlock()
	}
	select {
	case sl.ch <- struct{}{}:
		return func() { <-sl.ch; release() }, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}
