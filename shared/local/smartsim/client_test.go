package smartsim_test

// These tests drive the real smartsheet.Client against the simulator over
// HTTP: the client's retry classes, retry budget, rate limiter, row chunking,
// partial success and context handling, as the simulator sees them. The
// client's own unit tests use canned httptest answers; these prove the two
// agree.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

// Client-side endpoint names (Stats().Calls keys).
const (
	statsGetSheet = "GET /sheets/{sheetId}"
	statsAddRows  = "POST /sheets/{sheetId}/rows"
)

var simT0 = time.Date(2024, 6, 5, 14, 0, 0, 0, time.UTC)

// simClock is one fake time for the client (Config.Now and Config.Sleep) and
// the simulator: sleeping advances both at once and never waits for real.
type simClock struct {
	mu     sync.Mutex
	t      time.Time
	sim    *smartsim.Server
	sleeps []time.Duration
}

func (c *simClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *simClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.t = c.t.Add(d)
	c.sim.SetClock(c.t)
	return nil
}

// Sleeps returns the durations slept so far.
func (c *simClock) Sleeps() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// Elapsed is the fake time since simT0.
func (c *simClock) Elapsed() time.Duration { return c.Now().Sub(simT0) }

// stampTransport records the fake time at which each request is sent.
type stampTransport struct {
	clock *simClock
	next  http.RoundTripper

	mu   sync.Mutex
	sent []time.Time
}

func (s *stampTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	s.mu.Lock()
	s.sent = append(s.sent, s.clock.Now())
	s.mu.Unlock()
	return s.next.RoundTrip(r)
}

func (s *stampTransport) Sent() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

// simEnv is a simulator with one sheet (Name primary, Done CHECKBOX) and a
// real client of it on a shared fake clock.
type simEnv struct {
	sim       *smartsim.Server
	clock     *simClock
	transport *stampTransport
	client    *smartsheet.Client
	sheetID   int64
	colName   int64
	colDone   int64
}

// mustSimEnv starts a simulator with its clock frozen at simT0 and returns a
// client of it; edit adjusts the client's config.
func mustSimEnv(tb testing.TB, opts smartsim.Options, edit ...func(*smartsheet.Config)) *simEnv {
	tb.Helper()
	sim := smartsimtest.Start(tb, opts)
	sim.SetClock(simT0)
	sh, err := sim.CreateSheet(smartsheet.Sheet{Name: "Client test", Columns: []smartsheet.Column{
		{Title: "Name", Type: smartsheet.TypeTextNumber, Primary: true},
		{Title: "Done", Type: smartsheet.TypeCheckbox},
	}}, 0, 0, smartsim.Edit{})
	if err != nil {
		tb.Fatalf("CreateSheet() error: %v", err)
	}
	clock := &simClock{t: simT0, sim: sim}
	base := http.DefaultTransport.(*http.Transport).Clone()
	tb.Cleanup(base.CloseIdleConnections)
	tr := &stampTransport{clock: clock, next: base}
	cfg := smartsheet.Config{
		BaseURL:    sim.URL(),
		Token:      "test-token",
		HTTPClient: &http.Client{Transport: tr},
		Now:        clock.Now,
		Sleep:      clock.Sleep,
	}
	for _, e := range edit {
		e(&cfg)
	}
	c, err := smartsheet.New(cfg)
	if err != nil {
		tb.Fatalf("smartsheet.New() error: %v", err)
	}
	return &simEnv{sim: sim, clock: clock, transport: tr, client: c, sheetID: sh.ID,
		colName: sh.Columns[0].ID, colDone: sh.Columns[1].ID}
}

// row is a row with a Name and a Done cell.
func (e *simEnv) row(name string, done smartsheet.Value) smartsheet.Row {
	return smartsheet.Row{Cells: []smartsheet.Cell{
		{ColumnID: e.colName, Value: smartsheet.StringValue(name)},
		{ColumnID: e.colDone, Value: done},
	}}
}

// names returns the Name of each row.
func (e *simEnv) names(rows []smartsheet.Row) []string {
	out := make([]string, len(rows))
	for i := range rows {
		if c := rows[i].Cell(e.colName); c != nil {
			out[i] = c.Value.Text()
		}
	}
	return out
}

// sheetNames returns the Names of the sheet's rows as the simulator holds them.
func (e *simEnv) sheetNames(tb testing.TB) []string {
	tb.Helper()
	sh, err := e.sim.Sheet(e.sheetID)
	if err != nil {
		tb.Fatalf("Sheet(%d) error: %v", e.sheetID, err)
	}
	return e.names(sh.Rows)
}

func rowNames(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s %04d", prefix, i)
	}
	return out
}

func TestClientRetryClasses(t *testing.T) {
	const unknownSheet = 999
	tests := []struct {
		name  string
		fault func(s *smartsim.Server)
		sheet int64 // 0: the env's sheet
		// wantStatus and wantCode are the final error's; both 0: success.
		wantStatus, wantCode int
		wantCalls            int64
		// Every backoff sleep lies in [minSleep, maxSleep].
		minSleep, maxSleep time.Duration
	}{
		{
			name:      "4004 twice then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 2, smartsim.FaultUnexpected) },
			wantCalls: 3, minSleep: 750 * time.Millisecond, maxSleep: 2500 * time.Millisecond,
		},
		{
			name:      "4002 server timeout then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 1, smartsim.FaultServerTimeout) },
			wantCalls: 2, minSleep: 750 * time.Millisecond, maxSleep: 1250 * time.Millisecond,
		},
		{
			name:      "bare 502 twice then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 2, smartsim.Fault502) },
			wantCalls: 3, minSleep: 750 * time.Millisecond, maxSleep: 2500 * time.Millisecond,
		},
		{
			name:      "bare 503 twice then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 2, smartsim.Fault503) },
			wantCalls: 3, minSleep: 750 * time.Millisecond, maxSleep: 2500 * time.Millisecond,
		},
		{
			name:      "4001 maintenance waits minutes then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 1, smartsim.FaultMaintenance) },
			wantCalls: 2, minSleep: 45 * time.Second, maxSleep: 75 * time.Second,
		},
		{
			// A read is safe to send again; a write's bare 500 stays final
			// (shared/smartsheet's noreplay tests).
			name:      "bare 500 to a read then success",
			fault:     func(s *smartsim.Server) { s.FailNext(smartsim.EndpointGetSheet, 1, smartsim.Fault500) },
			wantCalls: 2, minSleep: 750 * time.Millisecond, maxSleep: 1250 * time.Millisecond,
		},
		{
			name:       "unknown sheet 404/1006 is final",
			sheet:      unknownSheet,
			wantStatus: http.StatusNotFound, wantCode: smartsheet.CodeNotFound, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := mustSimEnv(t, smartsim.Options{})
			if tt.fault != nil {
				tt.fault(env.sim)
			}
			sheetID := env.sheetID
			if tt.sheet != 0 {
				sheetID = tt.sheet
			}
			sh, _, err := env.client.GetSheet(t.Context(), sheetID, smartsheet.GetSheetOptions{})

			if tt.wantStatus == 0 {
				if err != nil {
					t.Fatalf("GetSheet(%d) error = %v, want nil", sheetID, err)
				}
				if sh.ID != sheetID {
					t.Errorf("GetSheet(%d) = sheet %d, want sheet %d", sheetID, sh.ID, sheetID)
				}
			} else {
				var apiErr *smartsheet.APIError
				if !errors.As(err, &apiErr) {
					t.Fatalf("GetSheet(%d) error = %v, want *APIError", sheetID, err)
				}
				if apiErr.StatusCode != tt.wantStatus || apiErr.ErrorCode != tt.wantCode {
					t.Errorf("GetSheet(%d) error = HTTP %d code %d, want HTTP %d code %d",
						sheetID, apiErr.StatusCode, apiErr.ErrorCode, tt.wantStatus, tt.wantCode)
				}
				var retryErr *smartsheet.RetryError
				if errors.As(err, &retryErr) {
					t.Errorf("GetSheet(%d) error = %v, want a final error, not a *RetryError", sheetID, err)
				}
			}

			if got := env.sim.Counter(smartsim.EndpointGetSheet).Calls; got != tt.wantCalls {
				t.Errorf("simulator Counter(getSheet).Calls = %d, want %d", got, tt.wantCalls)
			}
			st := env.client.Stats()
			if st.Requests != tt.wantCalls || st.Calls[statsGetSheet] != tt.wantCalls || st.Retries != tt.wantCalls-1 {
				t.Errorf("Stats() = requests %d, calls %v, retries %d; want %d requests and calls, %d retries",
					st.Requests, st.Calls, st.Retries, tt.wantCalls, tt.wantCalls-1)
			}
			sleeps := env.clock.Sleeps()
			if int64(len(sleeps)) != tt.wantCalls-1 {
				t.Fatalf("Sleep calls = %v, want %d", sleeps, tt.wantCalls-1)
			}
			for i, d := range sleeps {
				if d < tt.minSleep || d > tt.maxSleep {
					t.Errorf("Sleep #%d = %s, want in [%s, %s]", i+1, d, tt.minSleep, tt.maxSleep)
				}
			}
		})
	}
}

// TestClientBacksOffOnSimulatorRateLimit uses the simulator's own rate
// limiter: the client's budget is looser than the server's, so the server
// answers 429/4003 and the client must wait out the window.
func TestClientBacksOffOnSimulatorRateLimit(t *testing.T) {
	const serverLimit = 5
	env := mustSimEnv(t, smartsim.Options{})
	env.sim.SetLimits(smartsim.Limits{PerMinute: serverLimit})

	for i := range serverLimit + 1 {
		if _, _, err := env.client.GetSheet(t.Context(), env.sheetID, smartsheet.GetSheetOptions{}); err != nil {
			t.Fatalf("GetSheet(%d) call %d error = %v, want nil", env.sheetID, i+1, err)
		}
	}

	c := env.sim.Counter(smartsim.EndpointGetSheet)
	sleeps := env.clock.Sleeps()
	if c.RateLimited == 0 {
		t.Fatalf("simulator Counter(getSheet).RateLimited = 0, want > 0 (the limit of %d was not reached)", serverLimit)
	}
	if int64(len(sleeps)) != c.RateLimited {
		t.Errorf("Sleep calls = %v, want one per 429 (%d)", sleeps, c.RateLimited)
	}
	for i, d := range sleeps {
		if d < 15*time.Second {
			t.Errorf("Sleep #%d = %s, want >= 15s (rate-limit backoff)", i+1, d)
		}
	}
	// The first five calls were at simT0, so a sixth is allowed only a
	// minute later: the sleeps must have moved the simulator's clock.
	if got := env.clock.Elapsed(); got < time.Minute {
		t.Errorf("fake time elapsed = %s, want >= 1m (the server window)", got)
	}
	if want := int64(serverLimit+1) + c.RateLimited; c.Calls != want {
		t.Errorf("simulator Counter(getSheet).Calls = %d, want %d", c.Calls, want)
	}
	st := env.client.Stats()
	if st.Throttled != c.RateLimited || st.Requests != c.Calls {
		t.Errorf("Stats() = throttled %d, requests %d; want %d, %d", st.Throttled, st.Requests, c.RateLimited, c.Calls)
	}
}

func TestClientRetryBudgetExhausted(t *testing.T) {
	const budget = 30 * time.Second
	env := mustSimEnv(t, smartsim.Options{}, func(c *smartsheet.Config) { c.RetryBudget = budget })
	env.sim.SetFault(smartsim.EndpointGetSheet, smartsim.Fault{Kind: smartsim.FaultUnexpected, Rate: 1})

	_, _, err := env.client.GetSheet(t.Context(), env.sheetID, smartsheet.GetSheetOptions{})

	var retryErr *smartsheet.RetryError
	if !errors.As(err, &retryErr) {
		t.Fatalf("GetSheet(%d) error = %v, want *RetryError", env.sheetID, err)
	}
	// The last backoff is cut to what is left of the budget, so the fake
	// clock ends exactly on it.
	if retryErr.Elapsed != budget || retryErr.Budget != budget {
		t.Errorf("RetryError elapsed %s budget %s, want %s and %s", retryErr.Elapsed, retryErr.Budget, budget, budget)
	}
	wantMsg := fmt.Sprintf("gave up after %d attempt(s) over %s (retry budget exhausted", retryErr.Attempts, budget)
	if !strings.Contains(err.Error(), wantMsg) {
		t.Errorf("GetSheet(%d) error = %q, want it to contain %q", env.sheetID, err, wantMsg)
	}
	var apiErr *smartsheet.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != smartsheet.CodeUnexpected || apiErr.StatusCode != http.StatusInternalServerError {
		t.Errorf("errors.As(%v, *APIError) = %+v, want HTTP 500 code 4004", err, apiErr)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("errors.Is(%v, DeadlineExceeded) = true, want false (the budget ran out, not a deadline)", err)
	}

	c := env.sim.Counter(smartsim.EndpointGetSheet)
	if c.Calls != int64(retryErr.Attempts) || c.Faults != c.Calls || retryErr.Attempts < 3 {
		t.Errorf("simulator Counter(getSheet) = %+v, want %d calls, all faults (at least 3)", c, retryErr.Attempts)
	}
	if st := env.client.Stats(); st.Requests != int64(retryErr.Attempts) || st.Retries != int64(retryErr.Attempts-1) {
		t.Errorf("Stats() = requests %d retries %d, want %d and %d", st.Requests, st.Retries, retryErr.Attempts, retryErr.Attempts-1)
	}
}

// TestClientLimiterAgainstSimulator sends a burst of 1,000 reads through a
// client limited to 300/minute at a simulator enforcing the same limit.
func TestClientLimiterAgainstSimulator(t *testing.T) {
	const (
		calls = 1000
		rpm   = 300
	)
	env := mustSimEnv(t, smartsim.Options{Limits: smartsim.Limits{PerMinute: rpm}},
		func(c *smartsheet.Config) { c.RequestsPerMinute = rpm })

	for i := range calls {
		if _, _, err := env.client.GetSheet(t.Context(), env.sheetID, smartsheet.GetSheetOptions{}); err != nil {
			t.Fatalf("GetSheet(%d) call %d error = %v, want nil", env.sheetID, i+1, err)
		}
	}

	sent := env.transport.Sent()
	if len(sent) != calls {
		t.Errorf("requests sent = %d, want %d", len(sent), calls)
	}
	if got := smartsim.MaxInWindow(sent, time.Minute); got > rpm {
		t.Errorf("max requests in a sliding minute = %d, want <= %d", got, rpm)
	}
	if got, want := env.sim.Counter(smartsim.EndpointGetSheet), (smartsim.Counter{Calls: calls}); got != want {
		t.Errorf("simulator Counter(getSheet) = %+v, want %+v (no 429)", got, want)
	}
	// 1,000 calls at 300/minute need three full minutes of waiting, no more.
	if got, want := env.clock.Elapsed(), 3*time.Minute; got != want {
		t.Errorf("fake time elapsed = %s, want %s", got, want)
	}
	st := env.client.Stats()
	if st.Throttled != 0 || st.Retries != 0 || st.RateLimitWaitTime != 3*time.Minute {
		t.Errorf("Stats() = throttled %d retries %d limiter wait %s, want 0, 0, 3m0s", st.Throttled, st.Retries, st.RateLimitWaitTime)
	}
}

func TestClientAddRowsChunks(t *testing.T) {
	const n = 1234
	added := rowNames("new", n)
	pre := []string{"pre 0", "pre 1"}
	tests := []struct {
		name string
		opts smartsheet.AddRowsOptions
		want []string
	}{
		{"to bottom", smartsheet.AddRowsOptions{ToBottom: true}, slices.Concat(pre, added)},
		{"to top keeps the caller's order", smartsheet.AddRowsOptions{ToTop: true}, slices.Concat(added, pre)},
		{"no location adds at the bottom", smartsheet.AddRowsOptions{}, slices.Concat(pre, added)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := mustSimEnv(t, smartsim.Options{})
			var seed []smartsheet.Row
			for _, name := range pre {
				seed = append(seed, env.row(name, smartsheet.BoolValue(false)))
			}
			if _, err := env.sim.AddRows(smartsim.Edit{}, env.sheetID, seed); err != nil {
				t.Fatalf("simulator AddRows() error: %v", err)
			}
			rows := make([]smartsheet.Row, n)
			for i, name := range added {
				rows[i] = env.row(name, smartsheet.BoolValue(i%2 == 0))
			}

			res, err := env.client.AddRows(t.Context(), env.sheetID, rows, tt.opts)
			if err != nil {
				t.Fatalf("AddRows(%d rows, %+v) error = %v, want nil", n, tt.opts, err)
			}

			if got := env.sim.Counter(smartsim.EndpointAddRows).Calls; got != 3 {
				t.Errorf("simulator Counter(addRows).Calls = %d, want 3", got)
			}
			if got := env.client.Stats().Calls[statsAddRows]; got != 3 {
				t.Errorf("Stats().Calls[%q] = %d, want 3", statsAddRows, got)
			}
			if diff := cmp.Diff(added, env.names(res.Rows)); diff != "" {
				t.Errorf("AddRows() result rows (-want +got):\n%s", diff)
			}
			if len(res.Failed) != 0 {
				t.Errorf("AddRows() failed = %+v, want none", res.Failed)
			}
			if diff := cmp.Diff(tt.want, env.sheetNames(t)); diff != "" {
				t.Errorf("sheet rows after AddRows() (-want +got):\n%s", diff)
			}
		})
	}
}

func TestClientAddRowsPartialSuccess(t *testing.T) {
	const n = 900
	env := mustSimEnv(t, smartsim.Options{})
	const unknownColumn = 1
	if unknownColumn == env.colName || unknownColumn == env.colDone {
		t.Fatalf("column id %d exists, pick another", unknownColumn)
	}
	type failure struct{ Index, Code int }
	// Bad rows on both sides of the 500-row chunk boundary.
	bad := map[int]int{
		3:   smartsheet.CodeStrictTypeViolation,
		499: smartsheet.CodeInvalidColumnID,
		500: smartsheet.CodeStrictTypeViolation,
		700: smartsheet.CodeInvalidColumnID,
	}
	names := rowNames("row", n)
	rows := make([]smartsheet.Row, n)
	var wantFailed []failure
	var wantNames []string
	for i, name := range names {
		r := env.row(name, smartsheet.BoolValue(i%3 == 0))
		switch bad[i] {
		case smartsheet.CodeStrictTypeViolation:
			r.Cells[1].Value = smartsheet.StringValue("yes") // not a CHECKBOX value
		case smartsheet.CodeInvalidColumnID:
			r.Cells[1].ColumnID = unknownColumn
		}
		rows[i] = r
		if code, ok := bad[i]; ok {
			wantFailed = append(wantFailed, failure{i, code})
		} else {
			wantNames = append(wantNames, name)
		}
	}

	res, err := env.client.AddRows(t.Context(), env.sheetID, rows, smartsheet.AddRowsOptions{ToBottom: true, AllowPartialSuccess: true})
	if err != nil {
		t.Fatalf("AddRows(%d rows, AllowPartialSuccess) error = %v, want nil", n, err)
	}

	var gotFailed []failure
	for _, f := range res.Failed {
		gotFailed = append(gotFailed, failure{f.Index, f.Error.ErrorCode})
		if f.Error.Message == "" {
			t.Errorf("AddRows() failed item %d has no message", f.Index)
		}
	}
	if diff := cmp.Diff(wantFailed, gotFailed); diff != "" {
		t.Errorf("AddRows() failed items (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantNames, env.names(res.Rows)); diff != "" {
		t.Errorf("AddRows() result rows (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantNames, env.sheetNames(t)); diff != "" {
		t.Errorf("sheet rows after AddRows() (-want +got):\n%s", diff)
	}
	if got, want := env.sim.Counter(smartsim.EndpointAddRows), (smartsim.Counter{Calls: 2}); got != want {
		t.Errorf("simulator Counter(addRows) = %+v, want %+v", got, want)
	}
}

func TestClientContextDone(t *testing.T) {
	const timeout = 150 * time.Millisecond
	// hang holds the next call; its Delay bounds the test if the client
	// ignored its context (the call would then answer 4002 and be retried).
	hang := smartsim.Fault{Kind: smartsim.FaultTimeout, Next: 1, Delay: 3 * time.Second}
	tests := []struct {
		name      string
		setup     func(t *testing.T, env *simEnv)
		edit      func(*smartsheet.Config)
		ctx       func(t *testing.T) context.Context
		wantErr   error
		wantCalls int64
		wantCode  int // errorCode of the last answer, if any
	}{
		{
			name: "hanging request, deadline",
			setup: func(t *testing.T, env *simEnv) {
				env.sim.SetFault(smartsim.EndpointGetSheet, hang)
			},
			ctx:     withTimeout(timeout),
			wantErr: context.DeadlineExceeded, wantCalls: 1,
		},
		{
			name: "hanging request, cancelled",
			setup: func(t *testing.T, env *simEnv) {
				env.sim.SetFault(smartsim.EndpointGetSheet, hang)
			},
			ctx: func(t *testing.T) context.Context {
				ctx, cancel := context.WithCancel(t.Context())
				time.AfterFunc(timeout, cancel)
				t.Cleanup(cancel)
				return ctx
			},
			wantErr: context.Canceled, wantCalls: 1,
		},
		{
			name: "next retry would come after the deadline",
			setup: func(t *testing.T, env *simEnv) {
				env.sim.SetFault(smartsim.EndpointGetSheet, smartsim.Fault{Kind: smartsim.FaultUnexpected, Rate: 1})
			},
			ctx:     withTimeout(timeout),
			wantErr: context.DeadlineExceeded, wantCalls: 1, wantCode: smartsheet.CodeUnexpected,
		},
		{
			name: "next limiter slot after the deadline",
			edit: func(c *smartsheet.Config) { c.RequestsPerMinute = 1 },
			setup: func(t *testing.T, env *simEnv) {
				if _, _, err := env.client.GetSheet(t.Context(), env.sheetID, smartsheet.GetSheetOptions{}); err != nil {
					t.Fatalf("GetSheet(%d) first call error = %v, want nil", env.sheetID, err)
				}
			},
			ctx:     withTimeout(timeout),
			wantErr: context.DeadlineExceeded, wantCalls: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var edits []func(*smartsheet.Config)
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			env := mustSimEnv(t, smartsim.Options{}, edits...)
			if tt.setup != nil {
				tt.setup(t, env)
			}
			ctx := tt.ctx(t)

			start := time.Now()
			_, _, err := env.client.GetSheet(ctx, env.sheetID, smartsheet.GetSheetOptions{})
			took := time.Since(start)

			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("GetSheet(%d) error = %v, want errors.Is %v", env.sheetID, err, tt.wantErr)
			}
			if took > timeout+time.Second {
				t.Errorf("GetSheet(%d) took %s, want it to return promptly after %s", env.sheetID, took, timeout)
			}
			if got := smartsheet.ErrorCode(err); got != tt.wantCode {
				t.Errorf("ErrorCode(%v) = %d, want %d", err, got, tt.wantCode)
			}
			if got := env.sim.Counter(smartsim.EndpointGetSheet).Calls; got != tt.wantCalls {
				t.Errorf("simulator Counter(getSheet).Calls = %d, want %d", got, tt.wantCalls)
			}
			if sleeps := env.clock.Sleeps(); len(sleeps) != 0 {
				t.Errorf("Sleep calls = %v, want none", sleeps)
			}
		})
	}
}

func withTimeout(d time.Duration) func(t *testing.T) context.Context {
	return func(t *testing.T) context.Context {
		ctx, cancel := context.WithTimeout(t.Context(), d)
		t.Cleanup(cancel)
		return ctx
	}
}
