package smartsim

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

func TestLatencyDelay(t *testing.T) {
	tests := []struct {
		name    string
		lat     Latency
		rows    int
		refused bool
		want    time.Duration
	}{
		{name: "zero value", rows: 500},
		{name: "zero value refused", refused: true},
		{name: "base only", lat: Latency{Base: 400 * time.Millisecond}, rows: 500, want: 400 * time.Millisecond},
		{name: "base and per row", lat: Latency{Base: 50 * time.Millisecond, PerRow: time.Millisecond}, rows: 500, want: 550 * time.Millisecond},
		{name: "per row only", lat: Latency{PerRow: 2 * time.Millisecond}, rows: 3, want: 6 * time.Millisecond},
		{name: "no rows", lat: Latency{Base: 50 * time.Millisecond, PerRow: time.Millisecond}, want: 50 * time.Millisecond},
		{name: "negative clamps to zero", lat: Latency{Base: -time.Second, PerRow: -time.Millisecond}, rows: 10},
		{name: "refused default", lat: Latency{Base: 400 * time.Millisecond}, rows: 500, refused: true, want: DefaultRejectedLatency},
		{name: "refused explicit", lat: Latency{Base: 400 * time.Millisecond, Rejected: 5 * time.Millisecond}, refused: true, want: 5 * time.Millisecond},
		{name: "refused explicit without base", lat: Latency{Rejected: 5 * time.Millisecond}, refused: true, want: 5 * time.Millisecond},
		{name: "refused none", lat: Latency{Base: 400 * time.Millisecond, Rejected: -1}, refused: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newLatencyModel(tt.lat, 1)
			if got := m.delay(tt.rows, tt.refused); got != tt.want {
				t.Errorf("delay(%d, %v) = %v, want %v", tt.rows, tt.refused, got, tt.want)
			}
		})
	}
}

func TestLatencyJitter(t *testing.T) {
	lat := Latency{Base: 100 * time.Millisecond, Jitter: 0.5}
	draw := func(m *latencyModel) []time.Duration {
		out := make([]time.Duration, 200)
		for i := range out {
			out[i] = m.delay(0, false)
		}
		return out
	}
	m := newLatencyModel(lat, 7)
	first := draw(m)
	lo, hi := first[0], first[0]
	for _, d := range first {
		if d < 50*time.Millisecond || d > 150*time.Millisecond {
			t.Fatalf("delay = %v, want within [50ms, 150ms]", d)
		}
		lo, hi = min(lo, d), max(hi, d)
	}
	if hi-lo < 50*time.Millisecond {
		t.Errorf("spread of 200 draws = %v, want at least 50ms", hi-lo)
	}
	if diff := cmp.Diff(first, draw(newLatencyModel(lat, 7))); diff != "" {
		t.Errorf("same seed, different delays (-first +second):\n%s", diff)
	}
	m.set(lat)
	if diff := cmp.Diff(first, draw(m)); diff != "" {
		t.Errorf("set did not reseed (-first +after set):\n%s", diff)
	}
	if got := newLatencyModel(Latency{Base: time.Second, Jitter: 3}, 1).get().Jitter; got != 1 {
		t.Errorf("Jitter 3 normalized = %v, want 1", got)
	}
}

// timed sends a request and returns its response and wall-clock duration.
func timed(t *testing.T, s *Server, method, path string, body any) (resp, time.Duration) {
	t.Helper()
	start := time.Now()
	r := call(t, s, method, path, body)
	return r, time.Since(start)
}

func TestLatencyServed(t *testing.T) {
	ms := time.Millisecond
	rowsBody := func(f fixture, n int) any {
		var rows []smartsheet.Row
		for _, id := range f.rows[:n] {
			rows = append(rows, smartsheet.Row{ID: id, Cells: []smartsheet.Cell{{ColumnID: f.colAmt, Value: smartsheet.IntValue(7)}}})
		}
		return rows
	}
	tests := []struct {
		name     string
		lat      Latency
		method   string
		path     func(f fixture) string
		body     func(f fixture) any
		min, max time.Duration
	}{
		{
			name: "page of 500 rows", lat: Latency{Base: 50 * ms, PerRow: ms}, method: "GET",
			path: func(f fixture) string { return "/sheets/" + id(f.sheetID) + "?page=1&pageSize=500" },
			min:  550 * ms, max: 1500 * ms,
		},
		{
			name: "page of 20 rows", lat: Latency{Base: 50 * ms, PerRow: ms}, method: "GET",
			path: func(f fixture) string { return "/sheets/" + id(f.sheetID) + "?page=2&pageSize=20" },
			min:  70 * ms, max: 400 * ms,
		},
		{
			name: "no rows: base only", lat: Latency{Base: 50 * ms, PerRow: ms}, method: "GET",
			path: func(f fixture) string { return "/sheets/" + id(f.sheetID) + "/version" },
			min:  50 * ms, max: 400 * ms,
		},
		{
			name: "update of 100 rows", lat: Latency{Base: 20 * ms, PerRow: 2 * ms}, method: "PUT",
			path: func(f fixture) string { return "/sheets/" + id(f.sheetID) + "/rows" },
			body: func(f fixture) any { return rowsBody(f, 100) },
			min:  220 * ms, max: 800 * ms,
		},
		{
			name: "delete of 50 rows", lat: Latency{Base: 20 * ms, PerRow: 2 * ms}, method: "DELETE",
			path: func(f fixture) string {
				ids := id(f.rows[0])
				for _, r := range f.rows[1:50] {
					ids += "," + id(r)
				}
				return "/sheets/" + id(f.sheetID) + "/rows?ids=" + ids
			},
			min: 120 * ms, max: 600 * ms,
		},
		{
			name: "not found pays base", lat: Latency{Base: 50 * ms, PerRow: ms}, method: "GET",
			path: func(fixture) string { return "/sheets/42" },
			min:  50 * ms, max: 400 * ms,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{Latency: tt.lat})
			f := newFixture(t, s, 500)
			var body any
			if tt.body != nil {
				body = tt.body(f)
			}
			r, got := timed(t, s, tt.method, tt.path(f), body)
			if r.status >= 500 {
				t.Fatalf("%s = %d %s", tt.method, r.status, r.body)
			}
			if got < tt.min || got >= tt.max {
				t.Errorf("%s %s took %v, want [%v, %v)", tt.method, tt.path(f), got, tt.min, tt.max)
			}
		})
	}
}

// TestLatencyZeroConfig checks that the default adds no delay: the fastest of
// three cheap requests stays under the smallest base latency tested here (20ms)
// (the exact zero is TestLatencyDelay's).
func TestLatencyZeroConfig(t *testing.T) {
	s := newTestServer(t, Options{})
	f := newFixture(t, s, 10)
	path := "/sheets/" + id(f.sheetID) + "/version"
	fastest := time.Hour
	for range 3 {
		r, d := timed(t, s, "GET", path, nil)
		if r.status != 200 {
			t.Fatalf("GET %s = %d %s, want 200", path, r.status, r.body)
		}
		fastest = min(fastest, d)
	}
	if fastest >= 20*time.Millisecond {
		t.Errorf("fastest of 3 GET %s took %v, want < 20ms", path, fastest)
	}
}

func TestLatencyConcurrentRequestsOverlap(t *testing.T) {
	const lat = 200 * time.Millisecond
	s := newTestServer(t, Options{Latency: Latency{Base: lat}})
	f := newFixture(t, s, 10)
	requests := []struct{ method, path, body string }{
		{"GET", "/sheets/" + id(f.sheetID), ""},
		{"PUT", "/sheets/" + id(f.sheetID) + "/rows", fmt.Sprintf(`{"id":%d,"cells":[{"columnId":%d,"value":5}]}`, f.rows[0], f.colAmt)},
	}
	start := time.Now()
	var wg sync.WaitGroup
	got := make([]resp, len(requests))
	for i, rq := range requests {
		wg.Go(func() {
			var body any
			if rq.body != "" {
				body = rq.body
			}
			got[i] = call(t, s, rq.method, rq.path, body)
		})
	}
	wg.Wait()
	total := time.Since(start)
	for i, r := range got {
		if r.status != 200 {
			t.Errorf("%s %s = %d %s, want 200", requests[i].method, requests[i].path, r.status, r.body)
		}
	}
	if total < lat || total >= lat*7/4 {
		t.Errorf("two concurrent requests of %v took %v, want [%v, %v)", lat, total, lat, lat*7/4)
	}
}

func TestLatencyStopsEarly(t *testing.T) {
	tests := []struct {
		name      string
		stop      func(cancel context.CancelFunc, s *Server)
		wantWrite bool
	}{
		{name: "client gone", stop: func(cancel context.CancelFunc, _ *Server) { cancel() }},
		{name: "server closing", stop: func(_ context.CancelFunc, s *Server) { _ = s.Close() }, wantWrite: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewServer(Options{Latency: Latency{Base: 10 * time.Second}})
			t.Cleanup(func() { _ = s.Close() })
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			req := httptest.NewRequestWithContext(ctx, "GET", "/2.0/sheets", nil)
			req.Header.Set("Authorization", "Bearer test-token")
			rec := httptest.NewRecorder()
			time.AfterFunc(50*time.Millisecond, func() { tt.stop(cancel, s) })
			start := time.Now()
			s.Handler().ServeHTTP(rec, req)
			if got := time.Since(start); got >= time.Second {
				t.Errorf("ServeHTTP took %v, want < 1s", got)
			}
			if got := rec.Body.Len() > 0; got != tt.wantWrite {
				t.Errorf("answer written = %v (%d %s), want %v", got, rec.Code, rec.Body, tt.wantWrite)
			}
		})
	}
}

func TestLatencyRefused(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name       string
		lat        Latency
		token      string
		wantStatus int
		wantCode   int
		min, max   time.Duration
	}{
		{name: "429 default", lat: Latency{Base: 400 * ms}, token: "test-token", wantStatus: 429, wantCode: 4003, min: DefaultRejectedLatency, max: 200 * ms},
		{name: "429 explicit", lat: Latency{Base: 400 * ms, Rejected: 60 * ms}, token: "test-token", wantStatus: 429, wantCode: 4003, min: 60 * ms, max: 250 * ms},
		{name: "429 none", lat: Latency{Base: 400 * ms, Rejected: -1}, token: "test-token", wantStatus: 429, wantCode: 4003, max: 150 * ms},
		{name: "401 bad token", lat: Latency{Base: 400 * ms}, token: "wrong", wantStatus: 401, wantCode: 1002, min: DefaultRejectedLatency, max: 200 * ms},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestServer(t, Options{
				Tokens: map[string]smartsheet.User{"test-token": DefaultUser},
				Limits: Limits{PerMinute: 1},
			})
			if r := call(t, s, "GET", "/sheets", nil); r.status != 200 {
				t.Fatalf("first GET /sheets = %d, want 200", r.status)
			}
			s.SetLatency(tt.lat)
			start := time.Now()
			r := call(t, s, "GET", "/sheets", nil, "Authorization", "Bearer "+tt.token)
			got := time.Since(start)
			if r.status != tt.wantStatus || r.errBody(t).ErrorCode != tt.wantCode {
				t.Errorf("GET /sheets = %d %s, want %d errorCode %d", r.status, r.body, tt.wantStatus, tt.wantCode)
			}
			if got < tt.min || got >= tt.max {
				t.Errorf("refused GET /sheets took %v, want [%v, %v)", got, tt.min, tt.max)
			}
		})
	}
}

func TestLatencyFault(t *testing.T) {
	s := newTestServer(t, Options{Latency: Latency{Base: 80 * time.Millisecond}})
	s.FailNext(EndpointListSheets, 1, Fault503)
	r, got := timed(t, s, "GET", "/sheets", nil)
	if r.status != http.StatusServiceUnavailable {
		t.Errorf("faulted GET /sheets = %d, want 503", r.status)
	}
	if got < 80*time.Millisecond || got >= 500*time.Millisecond {
		t.Errorf("faulted GET /sheets took %v, want [80ms, 500ms)", got)
	}
}

func TestAdminLatency(t *testing.T) {
	s := newTestServer(t, Options{})
	var got Latency
	admin(t, s, "PUT", "/latency", `{"base":"400ms","perRow":"1ms","jitter":0.2,"rejected":5000000}`).decode(t, &got)
	want := Latency{Base: 400 * time.Millisecond, PerRow: time.Millisecond, Jitter: 0.2, Rejected: 5 * time.Millisecond}
	if got != want {
		t.Errorf("PUT /admin/latency = %+v, want %+v", got, want)
	}
	if got := s.CurrentLatency(); got != want {
		t.Errorf("CurrentLatency() = %+v, want %+v", got, want)
	}
	admin(t, s, "GET", "/latency", "").decode(t, &got)
	if got != want {
		t.Errorf("GET /admin/latency = %+v, want %+v", got, want)
	}
	admin(t, s, "PUT", "/latency", `{}`)
	if got := s.CurrentLatency(); got != (Latency{}) {
		t.Errorf("after PUT {}: CurrentLatency() = %+v, want zero", got)
	}
}
