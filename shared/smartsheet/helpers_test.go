package smartsheet

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const testToken = "tok-SECRET-1234567890abcdef"

// fakeClock is the Now/Sleep pair of a test client: sleeping advances the
// clock at once and is recorded.
type fakeClock struct {
	mu     sync.Mutex
	t      time.Time
	sleeps []time.Duration
	// onSleep, if set, runs before each sleep (e.g. to cancel a context).
	onSleep func(d time.Duration)
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2024, 6, 5, 14, 0, 0, 0, time.UTC)}
}

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if f.onSleep != nil {
		f.onSleep(d)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sleeps = append(f.sleeps, d)
	f.t = f.t.Add(d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// testClient is a client on a fake clock talking to an httptest server.
type testClient struct {
	*Client
	clock *fakeClock
	srv   *httptest.Server
	logs  *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}

// mustTestClient starts a server for h and returns a client of it with a fake
// clock, no jitter and a JSON logger capturing everything.
func mustTestClient(tb testing.TB, h http.Handler, edit ...func(*Config)) *testClient {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	clock := newFakeClock()
	logs := &syncBuffer{}
	cfg := Config{
		BaseURL:     srv.URL + "/2.0",
		Token:       testToken,
		ChangeAgent: "billing-audit-test",
		HTTPClient:  srv.Client(),
		Now:         clock.Now,
		Sleep:       clock.Sleep,
		Logger:      slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		tb.Fatalf("New() error: %v", err)
	}
	c.jitter = func() float64 { return 0.5 }
	return &testClient{Client: c, clock: clock, srv: srv, logs: logs}
}

// reply is one canned answer.
type reply struct {
	status int
	body   string
	header map[string]string
}

// scripted answers requests with replies in order (the last one repeats) and
// records the requests.
type scripted struct {
	mu      sync.Mutex
	replies []reply
	reqs    []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	n := len(s.reqs)
	s.reqs = append(s.reqs, recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
	rep := s.replies[min(n, len(s.replies)-1)]
	s.mu.Unlock()
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if rep.status == -1 { // drop the connection
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close()
		return
	}
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (s *scripted) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}
