package smartsim

import (
	"context"
	"crypto/hmac"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// hookCall is one request received by a test callback endpoint.
type hookCall struct {
	header http.Header
	body   []byte
	at     time.Time
}

func (c hookCall) challenge() bool { return c.header.Get(headerChallenge) != "" }

func (c hookCall) callback(tb testing.TB) wireCallback {
	tb.Helper()
	var cb wireCallback
	if err := json.Unmarshal(c.body, &cb); err != nil {
		tb.Fatalf("callback body %s: %v", c.body, err)
	}
	return cb
}

// hookEndpoint is a callback URL for tests: it answers challenges (echo
// "header", "body", "wrong" or "none") and callbacks with status(n), n
// counting callbacks from 1, after an optional delay.
type hookEndpoint struct {
	*httptest.Server
	mu          sync.Mutex
	calls       []hookCall
	echo        string
	status      func(n int) int
	delay       time.Duration
	inflight    int
	maxInflight int
}

func newHookEndpoint(tb testing.TB) *hookEndpoint {
	tb.Helper()
	h := &hookEndpoint{echo: "header", status: func(int) int { return 200 }}
	h.Server = httptest.NewServer(http.HandlerFunc(h.serve))
	tb.Cleanup(h.Close)
	return h
}

func (h *hookEndpoint) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	h.calls = append(h.calls, hookCall{header: r.Header.Clone(), body: body, at: time.Now()})
	h.inflight++
	h.maxInflight = max(h.maxInflight, h.inflight)
	n := 0
	for _, c := range h.calls {
		if !c.challenge() {
			n++
		}
	}
	echo, status, delay := h.echo, h.status, h.delay
	h.mu.Unlock()
	defer func() { h.mu.Lock(); h.inflight--; h.mu.Unlock() }()
	if ch := r.Header.Get(headerChallenge); ch != "" {
		switch echo {
		case "header":
			w.Header().Set(headerResponse, ch)
		case "body":
			fmt.Fprintf(w, `{"smartsheetHookResponse":%q}`, ch)
		case "wrong":
			w.Header().Set(headerResponse, "not-"+ch)
		}
		return
	}
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.WriteHeader(status(n))
}

func (h *hookEndpoint) set(fn func(h *hookEndpoint)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	fn(h)
}

// received returns the calls so far: challenges and callbacks apart.
func (h *hookEndpoint) received() (challenges, callbacks []hookCall) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range h.calls {
		if c.challenge() {
			challenges = append(challenges, c)
		} else {
			callbacks = append(callbacks, c)
		}
	}
	return challenges, callbacks
}

// fastHooks are delivery options for tests.
var fastHooks = WebhookOptions{Debounce: 20 * time.Millisecond,
	RetryDelays: []time.Duration{5 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}, Timeout: 200 * time.Millisecond}

// createHook creates a webhook on the sheet through the API and returns it.
func createHook(tb testing.TB, s *Server, sheetID int64, callbackURL string, columns ...int64) smartsheet.Webhook {
	tb.Helper()
	in := map[string]any{"name": "audit", "callbackUrl": callbackURL, "scope": "sheet", "scopeObjectId": sheetID, "events": []string{"*.*"}, "version": 1}
	if len(columns) > 0 {
		in["subscope"] = map[string]any{"columnIds": columns}
	}
	var created smartsheet.Result[smartsheet.Webhook]
	call(tb, s, "POST", "/webhooks", in).decode(tb, &created)
	return created.Result
}

// enableHook enables a webhook through the API and returns the answer.
func enableHook(tb testing.TB, s *Server, webhookID int64) smartsheet.Webhook {
	tb.Helper()
	var upd smartsheet.Result[smartsheet.Webhook]
	call(tb, s, "PUT", "/webhooks/"+id(webhookID), `{"enabled":true}`).decode(tb, &upd)
	return upd.Result
}

func getHook(tb testing.TB, s *Server, webhookID int64) smartsheet.Webhook {
	tb.Helper()
	var w smartsheet.Webhook
	call(tb, s, "GET", "/webhooks/"+id(webhookID), nil).decode(tb, &w)
	return w
}

func flush(tb testing.TB, s *Server) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.FlushWebhooks(ctx); err != nil {
		tb.Fatal(err)
	}
}

func checkSignature(tb testing.TB, c hookCall, secret string) {
	tb.Helper()
	if got, want := c.header.Get(headerSignature), sign(c.body, secret); !hmac.Equal([]byte(got), []byte(want)) {
		tb.Errorf("callback %s = %q, want HMAC-SHA256 %q", headerSignature, got, want)
	}
}

func TestWebhookVerification(t *testing.T) {
	tests := []struct {
		name   string
		echo   string
		url    func(h *hookEndpoint) string
		status string
	}{
		{"echo in header", "header", nil, smartsheet.WebhookEnabled},
		{"echo in body", "body", nil, smartsheet.WebhookEnabled},
		{"wrong echo", "wrong", nil, smartsheet.WebhookDisabledVerificationFailed},
		{"no echo", "none", nil, smartsheet.WebhookDisabledVerificationFailed},
		{"endpoint down", "header", func(h *hookEndpoint) string { return "http://127.0.0.1:1/hook" }, smartsheet.WebhookDisabledVerificationFailed},
		{"not loopback", "header", func(h *hookEndpoint) string { return "https://hooks.example.com/hook" }, smartsheet.WebhookDisabledVerificationFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{Webhooks: fastHooks})
			f := newFixture(t, s, 1)
			h := newHookEndpoint(t)
			h.echo = tt.echo
			u := h.URL + "/hook"
			if tt.url != nil {
				u = tt.url(h)
			}
			w := createHook(t, s, f.sheetID, u)
			got := enableHook(t, s, w.ID)
			if got.Status != tt.status || *got.Enabled != (tt.status == smartsheet.WebhookEnabled) {
				t.Errorf("PUT enabled (%s) = %s enabled %v, want %s", tt.name, got.Status, *got.Enabled, tt.status)
			}
			if st := getHook(t, s, w.ID).Status; st != tt.status {
				t.Errorf("GET after enable (%s) = %s, want %s", tt.name, st, tt.status)
			}
			challenges, _ := h.received()
			if tt.url != nil {
				if len(challenges) != 0 {
					t.Errorf("challenges sent to the test endpoint = %d, want 0", len(challenges))
				}
				return
			}
			if len(challenges) != 1 {
				t.Fatalf("challenges = %d, want 1", len(challenges))
			}
			var body struct {
				Challenge string `json:"challenge"`
				WebhookID int64  `json:"webhookId"`
			}
			if err := json.Unmarshal(challenges[0].body, &body); err != nil || body.Challenge != challenges[0].header.Get(headerChallenge) || body.WebhookID != w.ID {
				t.Errorf("challenge body = %s, want {challenge: header value, webhookId: %d}", challenges[0].body, w.ID)
			}
		})
	}
}

func TestWebhookVerificationGoAPI(t *testing.T) {
	s := newTestServer(t, Options{Webhooks: fastHooks})
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	got, err := s.SetWebhookEnabled(w.ID, true)
	if err != nil || got.Status != smartsheet.WebhookEnabled {
		t.Fatalf("SetWebhookEnabled(true) = %s, %v, want ENABLED", got.Status, err)
	}
	got, err = s.SetWebhookEnabled(w.ID, false)
	if err != nil || got.Status != smartsheet.WebhookDisabledByOwner || *got.Enabled {
		t.Fatalf("SetWebhookEnabled(false) = %s, %v, want DISABLED_BY_OWNER", got.Status, err)
	}
	if _, err := s.SetWebhookEnabled(12345, true); ErrorCode(err) != 1006 {
		t.Errorf("SetWebhookEnabled(unknown) = %v, want 1006", err)
	}
}

func TestWebhookCallback(t *testing.T) {
	s := newTestServer(t, Options{Webhooks: fastHooks})
	f := newFixture(t, s, 2)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	ann := smartsheet.User{Name: "Ann Lee", Email: "ann@example.com"}
	if _, err := s.SetCell(Edit{User: ann, ChangeAgent: "timesheet-sync"}, f.sheetID, f.rows[1], f.colAmt, smartsheet.IntValue(42)); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	_, cbs := h.received()
	if len(cbs) != 1 {
		t.Fatalf("callbacks = %d, want 1", len(cbs))
	}
	checkSignature(t, cbs[0], w.SharedSecret)
	cb := cbs[0].callback(t)
	at := t0.Format(wireTime)
	want := wireCallback{Nonce: cb.Nonce, Timestamp: at, WebhookID: w.ID, Scope: "sheet", ScopeObjectID: f.sheetID, Events: []wireEvent{
		{ObjectType: "row", EventType: "updated", ID: f.rows[1], RowID: f.rows[1], UserID: userID(ann.Email), Timestamp: at, ChangeAgent: "timesheet-sync"},
		{ObjectType: "cell", EventType: "updated", RowID: f.rows[1], ColumnID: f.colAmt, UserID: userID(ann.Email), Timestamp: at, ChangeAgent: "timesheet-sync"},
		{ObjectType: "sheet", EventType: "updated", ID: f.sheetID, UserID: userID(ann.Email), Timestamp: at, ChangeAgent: "timesheet-sync"},
	}}
	if len(cb.Nonce) < 16 || !slices.Equal(cb.Events, want.Events) || cb.Timestamp != want.Timestamp || cb.WebhookID != want.WebhookID ||
		cb.Scope != "sheet" || cb.ScopeObjectID != f.sheetID {
		t.Errorf("callback = %+v,\nwant %+v", cb, want)
	}
	if st := s.WebhookStats(w.ID); st.Callbacks != 1 || st.Failures != 0 || st.Verifications != 1 {
		t.Errorf("WebhookStats = %+v, want 1 callback, 0 failures, 1 verification", st)
	}
	// The receiver resolves the userId in the directory.
	var u DirectoryUser
	call(t, s, "GET", "/users/"+id(userID(ann.Email)), nil).decode(t, &u)
	if u.Email != ann.Email || u.Name != ann.Name || u.ID != userID(ann.Email) {
		t.Errorf("GET /users/{id} = %+v, want %s", u, ann.Email)
	}
	if r := call(t, s, "GET", "/users/12345", nil); r.status != 404 {
		t.Errorf("GET /users/unknown = %d, want 404", r.status)
	}
	var list smartsheet.IndexResult[DirectoryUser]
	call(t, s, "GET", "/users?includeAll=true", nil).decode(t, &list)
	if !slices.ContainsFunc(list.Data, func(d DirectoryUser) bool { return d.Email == ann.Email }) {
		t.Errorf("GET /users = %+v, want %s among them", list.Data, ann.Email)
	}
}

func TestWebhookRowEventsAndSubscope(t *testing.T) {
	s := newTestServer(t, Options{Webhooks: fastHooks})
	f := newFixture(t, s, 2)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL, f.colAmt)
	enableHook(t, s, w.ID)
	// A column outside the subscope: nothing is sent.
	if _, err := s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colName, smartsheet.StringValue("renamed")); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	if _, cbs := h.received(); len(cbs) != 0 {
		t.Fatalf("callbacks after an edit outside the subscope = %d, want 0: %s", len(cbs), cbs[0].body)
	}
	if _, err := s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(9)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DeleteRows(Edit{}, f.sheetID, []int64{f.rows[1]}); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	_, cbs := h.received()
	if len(cbs) != 1 {
		t.Fatalf("callbacks = %d, want 1", len(cbs))
	}
	var got []string
	for _, e := range cbs[0].callback(t).Events {
		got = append(got, fmt.Sprintf("%s.%s row=%v col=%v", e.ObjectType, e.EventType, e.RowID == f.rows[0] || e.RowID == f.rows[1], e.ColumnID))
	}
	want := []string{fmt.Sprintf("cell.updated row=true col=%d", f.colAmt), "row.deleted row=true col=0"}
	if !slices.Equal(got, want) {
		t.Errorf("events = %q, want %q", got, want)
	}
}

func TestWebhookDebounce(t *testing.T) {
	opts := fastHooks
	opts.Debounce = 150 * time.Millisecond
	s := newTestServer(t, Options{Webhooks: opts})
	f := newFixture(t, s, 2)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	start := time.Now()
	s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(1))
	time.Sleep(30 * time.Millisecond)
	s.SetCell(Edit{}, f.sheetID, f.rows[1], f.colAmt, smartsheet.IntValue(2))
	flush(t, s)
	_, cbs := h.received()
	if len(cbs) != 1 {
		t.Fatalf("callbacks for two edits within the debounce = %d, want 1", len(cbs))
	}
	if d := cbs[0].at.Sub(start); d < opts.Debounce {
		t.Errorf("callback after %v, want ≥ debounce %v", d, opts.Debounce)
	}
	var cells int
	for _, e := range cbs[0].callback(t).Events {
		if e.ObjectType == ObjectCell {
			cells++
		}
	}
	if cells != 2 {
		t.Errorf("cell events in the callback = %d, want 2", cells)
	}
}

// TestWebhookDelay: a callback is held Delay after its debounce, as a late
// Smartsheet callback; SetWebhookDelay(0) releases a held one at once.
func TestWebhookDelay(t *testing.T) {
	tests := []struct {
		name         string
		delay        time.Duration
		release      bool // SetWebhookDelay(0) after the check
		wantBefore   int  // callbacks 300ms after the edit
		wantMinDelay time.Duration
	}{
		{name: "no delay", delay: 0, wantBefore: 1},
		{name: "short delay", delay: 400 * time.Millisecond, wantBefore: 0, wantMinDelay: 400 * time.Millisecond},
		{name: "held, then released", delay: time.Hour, release: true, wantBefore: 0, wantMinDelay: 300 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastHooks
			opts.Debounce, opts.Delay = 20*time.Millisecond, tt.delay
			s := newTestServer(t, Options{Webhooks: opts})
			f := newFixture(t, s, 1)
			h := newHookEndpoint(t)
			w := createHook(t, s, f.sheetID, h.URL)
			enableHook(t, s, w.ID)
			start := time.Now()
			s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(1))
			time.Sleep(300 * time.Millisecond)
			if _, cbs := h.received(); len(cbs) != tt.wantBefore {
				t.Errorf("callbacks 300ms after the edit = %d, want %d", len(cbs), tt.wantBefore)
			}
			if tt.release {
				s.SetWebhookDelay(0)
			}
			flush(t, s)
			_, cbs := h.received()
			if len(cbs) != 1 {
				t.Fatalf("callbacks after the flush = %d, want 1", len(cbs))
			}
			if d := cbs[0].at.Sub(start); d < tt.wantMinDelay {
				t.Errorf("callback after %v, want ≥ %v", d, tt.wantMinDelay)
			}
		})
	}
}

func TestWebhookOneAtATime(t *testing.T) {
	opts := fastHooks
	opts.Debounce = time.Millisecond
	s := newTestServer(t, Options{Webhooks: opts})
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	h.delay = 40 * time.Millisecond
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	for i := range 6 {
		s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(int64(i+10)))
		time.Sleep(15 * time.Millisecond)
	}
	flush(t, s)
	_, cbs := h.received()
	var cells int
	for _, c := range cbs {
		for _, e := range c.callback(t).Events {
			if e.ObjectType == ObjectCell {
				cells++
			}
		}
	}
	if len(cbs) < 2 || cells != 6 {
		t.Errorf("callbacks = %d carrying %d cell events, want ≥ 2 carrying 6", len(cbs), cells)
	}
	if h.maxInflight != 1 {
		t.Errorf("callbacks in flight at once = %d, want 1", h.maxInflight)
	}
}

func TestWebhookRetries(t *testing.T) {
	tests := []struct {
		name      string
		status    func(n int) int
		delay     time.Duration
		callbacks int
		failures  int64
		final     string
	}{
		{"two failures then success", func(n int) int { return map[bool]int{true: 503, false: 200}[n <= 2] }, 0, 3, 2, smartsheet.WebhookEnabled},
		{"always 500", func(int) int { return 500 }, 0, 4, 4, smartsheet.WebhookDisabledCallbackFailed},
		{"4xx is retried", func(int) int { return 404 }, 0, 4, 4, smartsheet.WebhookDisabledCallbackFailed},
		{"410 gives up at once", func(int) int { return 410 }, 0, 1, 1, smartsheet.WebhookDisabledCallbackFailed},
		{"timeouts", func(int) int { return 200 }, time.Second, 4, 4, smartsheet.WebhookDisabledCallbackFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := fastHooks
			opts.Timeout = 50 * time.Millisecond
			s := newTestServer(t, Options{Webhooks: opts})
			f := newFixture(t, s, 1)
			h := newHookEndpoint(t)
			h.status, h.delay = tt.status, tt.delay
			w := createHook(t, s, f.sheetID, h.URL)
			enableHook(t, s, w.ID)
			s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(7))
			flush(t, s)
			_, cbs := h.received()
			if len(cbs) != tt.callbacks {
				t.Fatalf("attempts = %d, want %d", len(cbs), tt.callbacks)
			}
			nonce := cbs[0].callback(t).Nonce
			for _, c := range cbs {
				if n := c.callback(t).Nonce; n != nonce {
					t.Errorf("retry nonce = %s, want the first attempt's %s", n, nonce)
				}
			}
			got := getHook(t, s, w.ID)
			if got.Status != tt.final || *got.Enabled != (tt.final == smartsheet.WebhookEnabled) {
				t.Errorf("status = %s enabled %v, want %s", got.Status, *got.Enabled, tt.final)
			}
			if st := s.WebhookStats(w.ID); st.Failures != tt.failures {
				t.Errorf("WebhookStats.Failures = %d, want %d", st.Failures, tt.failures)
			}
			if tt.final == smartsheet.WebhookEnabled {
				return
			}
			// Disabled: further edits are not queued; re-enabling works.
			h.set(func(h *hookEndpoint) { h.status, h.delay = func(int) int { return 200 }, 0 })
			s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(8))
			flush(t, s)
			if _, after := h.received(); len(after) != len(cbs) {
				t.Errorf("callbacks while disabled = %d, want 0", len(after)-len(cbs))
			}
			if en := enableHook(t, s, w.ID); en.Status != smartsheet.WebhookEnabled {
				t.Fatalf("re-enable = %s, want ENABLED", en.Status)
			}
			s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(9))
			flush(t, s)
			_, after := h.received()
			if len(after) != len(cbs)+1 || after[len(after)-1].callback(t).Nonce == nonce {
				t.Errorf("callbacks after re-enable = %d, want %d with a new nonce", len(after), len(cbs)+1)
			}
		})
	}
}

func TestWebhookSecretRotation(t *testing.T) {
	s := newTestServer(t, Options{Webhooks: fastHooks})
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(1))
	flush(t, s)
	var reset smartsheet.Result[struct {
		SharedSecret string `json:"sharedSecret"`
	}]
	call(t, s, "POST", "/webhooks/"+id(w.ID)+"/resetSharedSecret", nil).decode(t, &reset)
	s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(2))
	flush(t, s)
	_, cbs := h.received()
	if len(cbs) != 2 {
		t.Fatalf("callbacks = %d, want 2", len(cbs))
	}
	checkSignature(t, cbs[0], w.SharedSecret)
	checkSignature(t, cbs[1], reset.Result.SharedSecret)
	if cbs[1].header.Get(headerSignature) == sign(cbs[1].body, w.SharedSecret) {
		t.Errorf("callback after rotation is signed with the old secret")
	}
}

func TestWebhookReverification(t *testing.T) {
	opts := fastHooks
	opts.VerifyEvery = 2
	opts.Debounce = time.Millisecond
	s := newTestServer(t, Options{Webhooks: opts})
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	for i := range 3 {
		s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(int64(i+20)))
		flush(t, s)
	}
	if ch, cbs := h.received(); len(ch) != 2 || len(cbs) != 3 {
		t.Fatalf("challenges, callbacks = %d, %d, want 2 (enable + after 2 callbacks), 3", len(ch), len(cbs))
	}
	// The endpoint stops answering challenges: the next re-verification disables it.
	h.set(func(h *hookEndpoint) { h.echo = "none" })
	for i := range 2 {
		s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(int64(i+30)))
		flush(t, s)
	}
	if got := getHook(t, s, w.ID); got.Status != smartsheet.WebhookDisabledVerificationFailed {
		t.Errorf("status after a failed re-verification = %s, want %s", got.Status, smartsheet.WebhookDisabledVerificationFailed)
	}
}

func TestWebhookStatusCallback(t *testing.T) {
	s := newTestServer(t, Options{Webhooks: fastHooks})
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	if err := s.DisableWebhook(w.ID, "DISABLED_SCOPE_INACCESSIBLE"); err != nil {
		t.Fatal(err)
	}
	flush(t, s)
	_, cbs := h.received()
	if len(cbs) != 1 || cbs[0].callback(t).NewWebhookStatus != "DISABLED_SCOPE_INACCESSIBLE" {
		t.Fatalf("status callbacks = %d, want one with newWebhookStatus", len(cbs))
	}
	checkSignature(t, cbs[0], w.SharedSecret)
	if got := getHook(t, s, w.ID); got.Status != "DISABLED_SCOPE_INACCESSIBLE" || *got.Enabled {
		t.Errorf("status = %s enabled %v, want DISABLED_SCOPE_INACCESSIBLE, false", got.Status, *got.Enabled)
	}
}

func TestWebhookCloseStopsDelivery(t *testing.T) {
	opts := fastHooks
	opts.Debounce = time.Hour
	s := NewServer(Options{Webhooks: opts})
	if _, err := s.Listen("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, s, 1)
	h := newHookEndpoint(t)
	w := createHook(t, s, f.sheetID, h.URL)
	enableHook(t, s, w.ID)
	s.SetCell(Edit{}, f.sheetID, f.rows[0], f.colAmt, smartsheet.IntValue(1))
	done := make(chan struct{})
	go func() { _ = s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close() with a pending callback did not return")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := s.FlushWebhooks(ctx); err != nil {
		t.Errorf("FlushWebhooks after Close = %v, want nil", err)
	}
}
