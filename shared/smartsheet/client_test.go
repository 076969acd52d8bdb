package smartsheet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const meBody = `{"id":1,"email":"auditor@example.com","firstName":"Audit","lastName":"Bot"}`

func apiErr(code int, msg string) string {
	return fmt.Sprintf(`{"errorCode":%d,"message":%q,"refId":"ref-%d"}`, code, msg, code)
}

func TestRetryClasses(t *testing.T) {
	ok := reply{200, meBody, nil}
	tests := []struct {
		name       string
		replies    []reply
		wantCalls  int
		wantSleeps []time.Duration
		wantCode   int // 0: success
	}{
		{name: "4004 twice then success", replies: []reply{{500, apiErr(4004, "Unexpected error"), nil}, {500, apiErr(4004, "Unexpected error"), nil}, ok},
			wantCalls: 3, wantSleeps: []time.Duration{1 * time.Second, 2 * time.Second}},
		{name: "4002 server timeout", replies: []reply{{500, apiErr(4002, "Server timeout exceeded"), nil}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{1 * time.Second}},
		{name: "1006 not found is final", replies: []reply{{404, apiErr(1006, "Not Found"), nil}},
			wantCalls: 1, wantCode: 1006},
		{name: "1042 strict type violation is final", replies: []reply{{400, apiErr(1042, "The cell value is not valid"), nil}},
			wantCalls: 1, wantCode: 1042},
		{name: "1002 invalid token is final", replies: []reply{{401, apiErr(1002, "Your Access Token is invalid."), nil}},
			wantCalls: 1, wantCode: 1002},
		{name: "500 without retryable code is final", replies: []reply{{500, apiErr(1119, "Failed to complete copy"), nil}},
			wantCalls: 1, wantCode: 1119},
		{name: "bare 500 to a read is retried", replies: []reply{{500, "Internal Server Error", nil}, {500, "", nil}, ok},
			wantCalls: 3, wantSleeps: []time.Duration{1 * time.Second, 2 * time.Second}},
		{name: "4003 backs off long", replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}, {429, apiErr(4003, "Rate limit exceeded."), nil}, ok},
			wantCalls: 3, wantSleeps: []time.Duration{20 * time.Second, 40 * time.Second}},
		{name: "bare 429 backs off long", replies: []reply{{429, "Too Many Requests", nil}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{20 * time.Second}},
		{name: "4001 maintenance waits minutes", replies: []reply{{503, apiErr(4001, "Smartsheet.com is currently offline for system maintenance."), nil}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{time.Minute}},
		{name: "bare 502 from a proxy", replies: []reply{{502, "<html>Bad Gateway</html>", nil}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "bare 504", replies: []reply{{504, "", nil}, {504, "", nil}, ok},
			wantCalls: 3, wantSleeps: []time.Duration{time.Second, 2 * time.Second}},
		{name: "dropped connection", replies: []reply{{-1, "", nil}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{time.Second}},
		{name: "Retry-After seconds", replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), map[string]string{"Retry-After": "7"}}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{7 * time.Second}},
		{name: "Retry-After HTTP date", replies: []reply{{503, "", map[string]string{"Retry-After": "Wed, 05 Jun 2024 14:01:30 GMT"}}, ok},
			wantCalls: 2, wantSleeps: []time.Duration{90 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{replies: tt.replies}
			tc := mustTestClient(t, srv)
			_, err := tc.Me(context.Background())
			if got := len(srv.requests()); got != tt.wantCalls {
				t.Errorf("Me() made %d calls, want %d", got, tt.wantCalls)
			}
			if diff := cmp.Diff(tt.wantSleeps, tc.clock.Sleeps()); diff != "" {
				t.Errorf("Me() sleeps (-want +got):\n%s", diff)
			}
			if got := ErrorCode(err); got != tt.wantCode {
				t.Errorf("ErrorCode(Me()) = %d, want %d (err %v)", got, tt.wantCode, err)
			}
			if tt.wantCode == 0 && err != nil {
				t.Errorf("Me() = %v, want success", err)
			}
			st := tc.Stats()
			if st.Retries != int64(tt.wantCalls-1) || st.Calls["GET /users/me"] != int64(tt.wantCalls) {
				t.Errorf("Stats() = retries %d calls %v, want %d retries, %d calls", st.Retries, st.Calls, tt.wantCalls-1, tt.wantCalls)
			}
		})
	}
}

func TestJitterSpreadsBackoff(t *testing.T) {
	tests := []struct {
		name     string
		class    retryClass
		attempt  int
		jitter   float64
		min, max time.Duration
	}{
		{"server first", retryServer, 1, 0, 750 * time.Millisecond, 750 * time.Millisecond},
		{"server first high", retryServer, 1, 0.999, 1249 * time.Millisecond, 1250 * time.Millisecond},
		{"rate limit first low", retryRateLimit, 1, 0, 15 * time.Second, 15 * time.Second},
		{"rate limit first high", retryRateLimit, 1, 0.999, 24 * time.Second, 25 * time.Second},
		{"server capped", retryServer, 20, 0.5, 30 * time.Second, 30 * time.Second},
		{"rate limit capped", retryRateLimit, 10, 0.5, 2 * time.Minute, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := backoffFor(tt.class, tt.attempt, tt.jitter)
			if got < tt.min || got > tt.max {
				t.Errorf("backoffFor(%d, %d, %v) = %s, want in [%s, %s]", tt.class, tt.attempt, tt.jitter, got, tt.min, tt.max)
			}
		})
	}
}

func TestRetryBudgetExhausted(t *testing.T) {
	srv := &scripted{replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}}}
	tc := mustTestClient(t, srv, func(c *Config) { c.RetryBudget = 2 * time.Minute })
	_, err := tc.Me(context.Background())
	var re *RetryError
	if !errors.As(err, &re) {
		t.Fatalf("Me() = %v, want a *RetryError", err)
	}
	// 20s + 40s, then the 80s back-off is cut to the 60s left; then no budget.
	if diff := cmp.Diff([]time.Duration{20 * time.Second, 40 * time.Second, 60 * time.Second}, tc.clock.Sleeps()); diff != "" {
		t.Errorf("sleeps (-want +got):\n%s", diff)
	}
	if re.Attempts != 4 || len(srv.requests()) != 4 {
		t.Errorf("Attempts = %d (%d requests), want 4", re.Attempts, len(srv.requests()))
	}
	msg := err.Error()
	for _, want := range []string{"gave up after 4 attempt(s) over 2m0s", "retry budget exhausted", "errorCode 4003", "GET /users/me"} {
		if !strings.Contains(msg, want) {
			t.Errorf("Me() error = %q, want it to contain %q", msg, want)
		}
	}
	if !IsRateLimited(err) {
		t.Errorf("IsRateLimited(%v) = false, want true", err)
	}
	if got := tc.Stats().Throttled; got != 4 {
		t.Errorf("Stats().Throttled = %d, want 4", got)
	}
}

func TestRetryAfterBeyondBudgetGivesUp(t *testing.T) {
	srv := &scripted{replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), map[string]string{"Retry-After": "600"}}}}
	tc := mustTestClient(t, srv, func(c *Config) { c.RetryBudget = 2 * time.Minute })
	_, err := tc.Me(context.Background())
	var re *RetryError
	if !errors.As(err, &re) || len(tc.clock.Sleeps()) != 0 || len(srv.requests()) != 1 {
		t.Errorf("Me() = %v after %d requests and sleeps %v, want a RetryError at once", err, len(srv.requests()), tc.clock.Sleeps())
	}
}

func TestCancellationStopsRetries(t *testing.T) {
	t.Run("cancelled during back-off", func(t *testing.T) {
		srv := &scripted{replies: []reply{{500, apiErr(4004, "Unexpected error"), nil}}}
		tc := mustTestClient(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		tc.clock.onSleep = func(time.Duration) { cancel() }
		_, err := tc.Me(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Me() = %v, want context.Canceled", err)
		}
		if ErrorCode(err) != 4004 {
			t.Errorf("ErrorCode(Me()) = %d, want the last error 4004 kept", ErrorCode(err))
		}
		if got := len(srv.requests()); got != 1 {
			t.Errorf("Me() made %d calls, want 1", got)
		}
	})
	t.Run("real sleep cancelled", func(t *testing.T) {
		srv := &scripted{replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}}}
		tc := mustTestClient(t, srv, func(c *Config) { c.Sleep = nil; c.Now = nil })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		_, err := tc.Me(ctx)
		if !errors.Is(err, context.Canceled) || time.Since(start) > 5*time.Second {
			t.Errorf("Me() = %v after %s, want context.Canceled quickly", err, time.Since(start))
		}
	})
	t.Run("deadline before next attempt", func(t *testing.T) {
		srv := &scripted{replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}}}
		tc := mustTestClient(t, srv)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err := tc.Me(ctx)
		if !errors.Is(err, context.DeadlineExceeded) || !IsRateLimited(err) {
			t.Errorf("Me() = %v, want DeadlineExceeded wrapping the 4003", err)
		}
		if len(tc.clock.Sleeps()) != 0 || len(srv.requests()) != 1 {
			t.Errorf("Me() slept %v over %d calls, want no sleep and 1 call", tc.clock.Sleeps(), len(srv.requests()))
		}
	})
	t.Run("already cancelled", func(t *testing.T) {
		srv := &scripted{replies: []reply{{200, meBody, nil}}}
		tc := mustTestClient(t, srv)
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := tc.Me(ctx); !errors.Is(err, context.Canceled) || len(srv.requests()) != 0 {
			t.Errorf("Me(cancelled) = %v with %d calls, want context.Canceled and no call", err, len(srv.requests()))
		}
	})
}

func TestRetryReplaysBody(t *testing.T) {
	srv := &scripted{replies: []reply{{500, apiErr(4004, "Sheet is being updated by another request"), nil},
		{200, `{"message":"SUCCESS","resultCode":0,"result":[{"id":7}],"version":2}`, nil}}}
	tc := mustTestClient(t, srv)
	rows := []Row{{Cells: []Cell{{ColumnID: 1, Value: NumberValue("1234.50")}}}}
	if _, err := tc.AddRows(context.Background(), 9, rows, AddRowsOptions{ToBottom: true}); err != nil {
		t.Fatalf("AddRows() error: %v", err)
	}
	reqs := srv.requests()
	if len(reqs) != 2 || len(reqs[0].body) == 0 || string(reqs[0].body) != string(reqs[1].body) {
		t.Fatalf("AddRows() bodies = %q, want the same non-empty body twice", bodies(reqs))
	}
	if want := `[{"cells":[{"columnId":1,"value":1234.50}],"toBottom":true}]`; string(reqs[1].body) != want {
		t.Errorf("AddRows() body = %s, want %s", reqs[1].body, want)
	}
}

func bodies(reqs []recorded) []string {
	var out []string
	for _, r := range reqs {
		out = append(out, string(r.body))
	}
	return out
}

func TestHeaders(t *testing.T) {
	srv := &scripted{replies: []reply{{200, `{"message":"SUCCESS","resultCode":0,"result":{"id":1,"name":"S"}}`, nil}}}
	tc := mustTestClient(t, srv)
	ctx := context.Background()
	if _, err := tc.CreateSheet(ctx, "S", []Column{{Title: "A", Type: TypeTextNumber, Primary: true}}); err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Me(ctx); err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	tests := []struct {
		name, header, want string
		req                int
	}{
		{"write has change agent", "Smartsheet-Change-Agent", "billing-audit-test", 0},
		{"write has JSON content type", "Content-Type", "application/json", 0},
		{"bearer token", "Authorization", "Bearer " + testToken, 0},
		{"read has no change agent", "Smartsheet-Change-Agent", "", 1},
		{"read has bearer token", "Authorization", "Bearer " + testToken, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := reqs[tt.req].header.Get(tt.header); got != tt.want {
				t.Errorf("request %d header %s = %q, want %q", tt.req, tt.header, got, tt.want)
			}
		})
	}
	if reqs[0].path != "/2.0/sheets" {
		t.Errorf("CreateSheet path = %q, want /2.0/sheets", reqs[0].path)
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		replies []reply
		edit    func(*Config)
	}{
		{name: "404", replies: []reply{{404, apiErr(1006, "Not Found"), nil}}},
		{name: "budget exhausted", replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}}},
		{name: "transport error", replies: []reply{{-1, "", nil}}, edit: func(c *Config) { c.RetryBudget = 3 * time.Second }},
		{name: "bad JSON", replies: []reply{{200, `{"id":"x"`, nil}}},
		{name: "html error", replies: []reply{{502, "<html>bad gateway</html>", nil}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			edits := []func(*Config){}
			if tt.edit != nil {
				edits = append(edits, tt.edit)
			}
			tc := mustTestClient(t, &scripted{replies: tt.replies}, edits...)
			_, err := tc.Me(ctx)
			if err == nil {
				t.Fatal("Me() = nil error, want an error")
			}
			for _, s := range []string{err.Error(), fmt.Sprintf("%v|%+v|%#v", err, err, err), tc.logs.String()} {
				if strings.Contains(s, testToken) {
					t.Errorf("token leaked in %q", s)
				}
			}
		})
	}
	t.Run("config and client printing", func(t *testing.T) {
		tc := mustTestClient(t, &scripted{replies: []reply{{200, meBody, nil}}})
		cfg := Config{BaseURL: "https://api.smartsheet.eu/2.0", Token: testToken, ChangeAgent: "x"}
		var logs syncBuffer
		l := slog.New(slog.NewJSONHandler(&logs, nil))
		l.Info("config", "cfg", cfg, "client", tc.Client)
		l.Info("config", slog.Any("cfg", &cfg))
		printed := []string{
			fmt.Sprintf("%v %+v %#v %s %d %q %x", cfg, cfg, cfg, cfg, cfg, cfg, cfg),
			fmt.Sprintf("%v %+v %#v %s %d", &cfg, tc.Client, tc.Client, tc.Client, tc.Client),
			fmt.Sprint(cfg, tc.Client), cfg.String(), logs.String(),
		}
		for _, s := range printed {
			if strings.Contains(s, testToken) || strings.Contains(s, "SECRET") {
				t.Errorf("token leaked in %q", s)
			}
		}
		if !strings.Contains(printed[0], "REDACTED") {
			t.Errorf("Config printed as %q, want the token shown as [REDACTED]", printed[0])
		}
	})
}

func TestNewValidatesConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no token", Config{BaseURL: "https://api.smartsheet.com/2.0"}, "Token is required"},
		{"bad base URL", Config{Token: "t", BaseURL: "api.smartsheet.com"}, "BaseURL"},
		{"defaults", Config{Token: "t"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.cfg)
			if tt.wantErr == "" {
				if err != nil || c.baseURL != DefaultBaseURL || c.budget < 2*time.Minute {
					t.Errorf("New(%v) = %v, %v, want defaults", tt.cfg, c, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("New(%v) error = %v, want %q", tt.cfg, err, tt.wantErr)
			}
		})
	}
}

func TestErrorHelpers(t *testing.T) {
	tests := []struct {
		name string
		err  error
		is   func(error) bool
		want bool
	}{
		{"404 code", &APIError{StatusCode: 404, ErrorCode: 1006}, IsNotFound, true},
		{"wrapped 404", fmt.Errorf("get sheet 1: %w", &APIError{StatusCode: 404, ErrorCode: 1006}), IsNotFound, true},
		{"bare 404", &APIError{StatusCode: 404}, IsNotFound, true},
		{"403 is not 404", &APIError{StatusCode: 403, ErrorCode: 1004}, IsNotFound, false},
		{"expired token", &APIError{StatusCode: 401, ErrorCode: 1003}, IsUnauthorized, true},
		{"forbidden", &APIError{StatusCode: 403, ErrorCode: 1004}, IsForbidden, true},
		{"rate limited", &APIError{StatusCode: 429, ErrorCode: 4003}, IsRateLimited, true},
		{"bad request", &APIError{StatusCode: 400, ErrorCode: 1042}, IsBadRequest, true},
		{"404 is not bad request", &APIError{StatusCode: 404, ErrorCode: 1006}, IsBadRequest, false},
		{"plain error", errors.New("x"), IsNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.is(tt.err); got != tt.want {
				t.Errorf("helper(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2024, 6, 5, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name, in string
		want     time.Duration
	}{
		{"absent", "", 0},
		{"seconds", "30", 30 * time.Second},
		{"negative", "-3", 0},
		{"date", now.Add(2 * time.Minute).Format(http.TimeFormat), 2 * time.Minute},
		{"past date", now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{"garbage", "soon", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("parseRetryAfter(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
