package smartsheet

import (
	"context"
	"net/http"
	"sort"
	"sync"
	"testing"
	"time"
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
	if n := len(tc.limiter.locks); n != 0 {
		t.Errorf("sheet locks left = %d, want 0", n)
	}
}
