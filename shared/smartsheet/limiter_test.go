package smartsheet

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// checkWindow fails if more than n of the sorted times fall in any interval
// of length per.
func checkWindow(t *testing.T, times []time.Time, n int, per time.Duration) {
	t.Helper()
	for i := n; i < len(times); i++ {
		if gap := times[i].Sub(times[i-n]); gap < per {
			t.Fatalf("grants %d and %d are %s apart, want >= %s (at most %d per %s)", i-n, i, gap, per, n, per)
		}
	}
}

func TestLimiterBurstThroughClient(t *testing.T) {
	var mu sync.Mutex
	var times []time.Time
	var tc *testClient
	tc = mustTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		times = append(times, tc.clock.Now())
		mu.Unlock()
		_, _ = w.Write([]byte(meBody))
	}))
	ctx := context.Background()
	for i := range 1000 {
		if _, err := tc.Me(ctx); err != nil {
			t.Fatalf("Me() #%d error: %v", i, err)
		}
	}
	checkWindow(t, times, 300, time.Minute)
	if got, want := times[len(times)-1].Sub(times[0]), 3*time.Minute; got != want {
		t.Errorf("1000 calls took %s of fake time, want %s (300 per minute)", got, want)
	}
	st := tc.Stats()
	if st.RateLimitWaits != 3 || st.RateLimitWaitTime != 3*time.Minute {
		t.Errorf("Stats() waits = %d / %s, want 3 / 3m0s", st.RateLimitWaits, st.RateLimitWaitTime)
	}
}

func TestLimiterConcurrentReservations(t *testing.T) {
	l := NewLimiter(300, 30)
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var all, hist []time.Time
	var wg sync.WaitGroup
	for g := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 100 {
				class := limitGeneral
				if (g+i)%5 == 0 {
					class = limitHistory
				}
				at := now.Add(time.Duration(i) * time.Millisecond)
				for {
					wait, ok, err := l.reserve(class, at, time.Time{})
					if err != nil {
						t.Error(err)
						return
					}
					at = at.Add(wait)
					if ok {
						break
					}
				}
				mu.Lock()
				all = append(all, at)
				if class == limitHistory {
					hist = append(hist, at)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	sort.Slice(all, func(i, j int) bool { return all[i].Before(all[j]) })
	sort.Slice(hist, func(i, j int) bool { return hist[i].Before(hist[j]) })
	checkWindow(t, all, 300, time.Minute)
	checkWindow(t, hist, 30, time.Minute)
	if len(hist) != 200 {
		t.Fatalf("history grants = %d, want 200", len(hist))
	}
}

func TestLimiterHistoryBudget(t *testing.T) {
	tests := []struct {
		name          string
		history, want int
	}{
		{"default 30 per minute", 30, 30},
		{"configured 10 per minute", 10, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLimiter(300, tt.history)
			now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
			immediate := 0
			for range 100 {
				if wait, ok, _ := l.reserve(limitHistory, now, time.Time{}); ok && wait == 0 {
					immediate++
				}
			}
			if immediate != tt.want {
				t.Errorf("immediate history grants = %d, want %d", immediate, tt.want)
			}
			// General calls still flow: the history calls used 100 of 300 slots.
			if wait, _, _ := l.reserve(limitGeneral, now, time.Time{}); wait != 0 {
				t.Errorf("general reserve wait = %s, want 0", wait)
			}
		})
	}
}

func TestLimiterDeadline(t *testing.T) {
	l := NewLimiter(1, 1)
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	if _, _, err := l.reserve(limitGeneral, now, now.Add(time.Second)); err != nil {
		t.Fatalf("first reserve error: %v", err)
	}
	if _, _, err := l.reserve(limitGeneral, now, now.Add(time.Second)); err == nil {
		t.Fatal("reserve past the deadline = nil error, want one")
	}
	// The refused reservation took no slot.
	if wait, _, _ := l.reserve(limitGeneral, now, time.Time{}); wait != time.Minute {
		t.Errorf("reserve wait = %s, want 1m0s", wait)
	}
}

func TestSharedLimiterAcrossClients(t *testing.T) {
	shared := NewLimiter(2, 1)
	srv := &scripted{replies: []reply{{200, meBody, nil}}}
	a := mustTestClient(t, srv, func(c *Config) { c.Limiter = shared })
	b := mustTestClient(t, srv, func(c *Config) { c.Limiter = shared; c.Now = a.clock.Now; c.Sleep = a.clock.Sleep })
	ctx := context.Background()
	for _, c := range []*testClient{a, b, a} {
		if _, err := c.Me(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := a.Stats().RateLimitWaits; got != 1 {
		t.Errorf("client a waits = %d, want 1 (third call of the shared budget of 2/min)", got)
	}
}

func TestSheetWritesSerialised(t *testing.T) {
	var mu sync.Mutex
	inFlight, maxInFlight := 0, 0
	release := make(chan struct{})
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
		_, _ = w.Write([]byte(`{"message":"SUCCESS","resultCode":0,"result":[]}`))
	})
	tc := mustTestClient(t, h)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = tc.AddRows(context.Background(), 42, []Row{{}}, AddRowsOptions{})
		}()
	}
	for range 4 {
		time.Sleep(20 * time.Millisecond)
		release <- struct{}{}
	}
	wg.Wait()
	if maxInFlight != 1 {
		t.Errorf("concurrent writes to one sheet = %d, want 1", maxInFlight)
	}
	if n := len(tc.locks.locks); n != 0 {
		t.Errorf("sheet locks left = %d, want 0", n)
	}
}

// fakeLimiter is a RateLimiter whose answers come from a function field; it
// records every reservation asked.
type fakeLimiter struct {
	mu      sync.Mutex
	asked   []Reservation
	reserve func(n int, r Reservation) (time.Duration, bool, error) // n counts from 0
}

func (f *fakeLimiter) Reserve(_ context.Context, r Reservation) (time.Duration, bool, error) {
	f.mu.Lock()
	n := len(f.asked)
	f.asked = append(f.asked, r)
	f.mu.Unlock()
	return f.reserve(n, r)
}

// The client asks its RateLimiter before every request (retries included),
// sleeps the wait it is given, asks again when nothing was reserved, and
// sends nothing when the limiter fails.
func TestClientAsksRateLimiter(t *testing.T) {
	errStore := errors.New("budget store unavailable")
	const historyBody = `{"pageNumber":1,"totalPages":1,"data":[]}`
	tests := []struct {
		name        string
		replies     []reply
		history     bool
		reserve     func(n int, r Reservation) (time.Duration, bool, error)
		wantAsked   int
		wantSent    int
		wantSleeps  []time.Duration
		wantErr     error
		wantHistory bool
	}{
		{name: "reserved now", replies: []reply{{200, meBody, nil}},
			reserve:   func(int, Reservation) (time.Duration, bool, error) { return 0, true, nil },
			wantAsked: 1, wantSent: 1},
		{name: "reserved in the future: sleep, then send", replies: []reply{{200, meBody, nil}},
			reserve:   func(int, Reservation) (time.Duration, bool, error) { return 3 * time.Second, true, nil },
			wantAsked: 1, wantSent: 1, wantSleeps: []time.Duration{3 * time.Second}},
		{name: "refused twice: sleep and ask again", replies: []reply{{200, meBody, nil}},
			reserve: func(n int, _ Reservation) (time.Duration, bool, error) {
				return time.Second, n == 2, nil
			},
			wantAsked: 3, wantSent: 1, wantSleeps: []time.Duration{time.Second, time.Second, time.Second}},
		{name: "a retry asks again", replies: []reply{{500, apiErr(4002, "timeout"), nil}, {200, meBody, nil}},
			reserve:   func(int, Reservation) (time.Duration, bool, error) { return 0, true, nil },
			wantAsked: 2, wantSent: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "cell history is marked", replies: []reply{{200, historyBody, nil}}, history: true,
			reserve:   func(int, Reservation) (time.Duration, bool, error) { return 0, true, nil },
			wantAsked: 1, wantSent: 1, wantHistory: true},
		{name: "limiter error: nothing sent", replies: []reply{{200, meBody, nil}},
			reserve:   func(int, Reservation) (time.Duration, bool, error) { return 0, false, errStore },
			wantAsked: 1, wantSent: 0, wantErr: errStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lim := &fakeLimiter{reserve: tt.reserve}
			srv := &scripted{replies: tt.replies}
			tc := mustTestClient(t, srv, func(c *Config) { c.Limiter = lim })
			start := tc.clock.Now()
			var err error
			if tt.history {
				_, err = tc.CellHistory(context.Background(), 1, 2, 3)
			} else {
				_, err = tc.Me(context.Background())
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("call error = %v, want %v", err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "GET /") {
				t.Errorf("call error = %q, want it to name the endpoint", err)
			}
			if got := len(lim.asked); got != tt.wantAsked {
				t.Errorf("Reserve calls = %d, want %d", got, tt.wantAsked)
			}
			if got := len(srv.requests()); got != tt.wantSent {
				t.Errorf("requests sent = %d, want %d", got, tt.wantSent)
			}
			if diff := cmp.Diff(tt.wantSleeps, tc.clock.Sleeps()); diff != "" {
				t.Errorf("sleeps (-want +got):\n%s", diff)
			}
			for i, r := range lim.asked {
				if r.History != tt.wantHistory {
					t.Errorf("Reserve #%d History = %t, want %t", i, r.History, tt.wantHistory)
				}
				if r.Now.Before(start) || !r.Deadline.IsZero() {
					t.Errorf("Reserve #%d = %+v, want Now on the client's clock and no deadline", i, r)
				}
			}
		})
	}
}

// A deadline reaches the limiter on the client's clock.
func TestClientPassesDeadline(t *testing.T) {
	var got Reservation
	lim := &fakeLimiter{reserve: func(_ int, r Reservation) (time.Duration, bool, error) { got = r; return 0, true, nil }}
	tc := mustTestClient(t, &scripted{replies: []reply{{200, meBody, nil}}}, func(c *Config) { c.Limiter = lim })
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := tc.Me(ctx); err != nil {
		t.Fatal(err)
	}
	if d := got.Deadline.Sub(got.Now); d <= 59*time.Minute || d > time.Hour {
		t.Errorf("Reserve deadline - now = %s, want about 1h", d)
	}
}
