package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
)

func TestHandleChallenge(t *testing.T) {
	tests := []struct {
		name    string
		headers map[string]string
		body    string
		status  int
		echo    string
	}{
		{"header and body", map[string]string{"Smartsheet-Hook-Challenge": "c-123"},
			fmt.Sprintf(`{"challenge":"c-123","webhookId":%d}`, hookID), 200, "c-123"},
		{"header only, lower-case name", map[string]string{"smartsheet-hook-challenge": "c-h"},
			fmt.Sprintf(`{"webhookId":%d}`, hookID), 200, "c-h"},
		{"body only", nil, fmt.Sprintf(`{"challenge":"c-b","webhookId":%d}`, hookID), 200, "c-b"},
		{"unknown webhook", map[string]string{"Smartsheet-Hook-Challenge": "c-x"}, `{"challenge":"c-x","webhookId":99}`, 403, ""},
		{"no webhook id", map[string]string{"Smartsheet-Hook-Challenge": "c-x"}, `{}`, 403, ""},
		{"header and body differ", map[string]string{"Smartsheet-Hook-Challenge": "a"},
			fmt.Sprintf(`{"challenge":"b","webhookId":%d}`, hookID), 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sink, _ := newReceiver()
			got := r.Handle(context.Background(), Request{Headers: tt.headers, Body: []byte(tt.body)})
			if got.Status != tt.status {
				t.Fatalf("Handle(%s) = %d %s, want %d", tt.body, got.Status, got.Body, tt.status)
			}
			if len(sink.callbacks()) != 0 {
				t.Errorf("Handle(%s) reached the sink", tt.body)
			}
			if tt.echo == "" {
				return
			}
			if h := got.Headers[HeaderResponse]; h != tt.echo {
				t.Errorf("Handle(%s) header %s = %q, want %q", tt.body, HeaderResponse, h, tt.echo)
			}
			var b struct {
				V string `json:"smartsheetHookResponse"`
			}
			if err := json.Unmarshal(got.Body, &b); err != nil || b.V != tt.echo {
				t.Errorf("Handle(%s) body = %s, want smartsheetHookResponse %q", tt.body, got.Body, tt.echo)
			}
		})
	}
}

func TestHandleCallbacks(t *testing.T) {
	ann, bob := int64(111), int64(222)
	good := callbackJSON(t, "n-1", now.Add(-5*time.Second),
		cellEvent(10, 20, ann, ""),
		cellEvent(10, 21, bob, "billing-audit"),        // our own write
		cellEvent(10, 22, bob, "Zapier,billing-audit"), // chained agents, ours among them
		cellEvent(10, 23, bob, "billing-audit-shadow"), // another agent with our prefix: kept
		smartsheet.WebhookEvent{ObjectType: "sheet", EventType: "updated", ID: sheetID, UserID: ann, Timestamp: now},
		smartsheet.WebhookEvent{ObjectType: "row", EventType: "updated", ID: 10, RowID: 10, UserID: ann, Timestamp: now},
		smartsheet.WebhookEvent{ObjectType: "row", EventType: "created", ID: 11, UserID: bob, Timestamp: now.Add(-time.Second)},
		smartsheet.WebhookEvent{ObjectType: "row", EventType: "deleted", ID: 12, RowID: 12, UserID: ann, Timestamp: now.Add(-time.Second)},
	)
	wantKept := []Event{
		{ObjectType: "cell", EventType: "updated", RowID: 10, ColumnID: 20, UserID: ann, Time: now.Add(-30 * time.Second)},
		{ObjectType: "cell", EventType: "updated", RowID: 10, ColumnID: 23, UserID: bob, Time: now.Add(-30 * time.Second), ChangeAgent: "billing-audit-shadow"},
		{ObjectType: "row", EventType: "created", RowID: 11, UserID: bob, Time: now.Add(-time.Second)},
		{ObjectType: "row", EventType: "deleted", RowID: 12, UserID: ann, Time: now.Add(-time.Second)},
	}
	ownOnly := callbackJSON(t, "n-own", now, cellEvent(10, 21, bob, "billing-audit"))
	stale := callbackJSON(t, "n-stale", now.Add(-16*time.Minute), cellEvent(10, 20, ann, ""))
	future := callbackJSON(t, "n-future", now.Add(16*time.Minute), cellEvent(10, 20, ann, ""))
	noNonce := callbackJSON(t, "", now, cellEvent(10, 20, ann, ""))
	unknown := bytes.Replace(good, fmt.Appendf(nil, `"webhookId":%d`, hookID), []byte(`"webhookId":5`), 1)
	status := fmt.Appendf(nil, `{"nonce":"n-st","timestamp":"%s","webhookId":%d,"scope":"sheet","scopeObjectId":%d,"newWebhookStatus":"DISABLED_SCOPE_INACCESSIBLE"}`,
		now.Format(time.RFC3339), hookID, sheetID)
	huge := append(append([]byte(`{"pad":"`), bytes.Repeat([]byte("x"), DefaultMaxBody)...), `"}`...)

	tests := []struct {
		name   string
		req    Request
		status int
		want   []Callback // what reached the sink
	}{
		{"valid", signed(good, secret1), 200, []Callback{{WebhookID: hookID, SheetID: sheetID, Nonce: "n-1", Time: now.Add(-5 * time.Second), Events: wantKept}}},
		{"previous secret during rotation", signed(good, secret0), 200, []Callback{{WebhookID: hookID, SheetID: sheetID, Nonce: "n-1", Time: now.Add(-5 * time.Second), Events: wantKept}}},
		{"upper-case hex signature", Request{Headers: map[string]string{HeaderSignature: strings.ToUpper(Sign(good, secret1))}, Body: good}, 200,
			[]Callback{{WebhookID: hookID, SheetID: sheetID, Nonce: "n-1", Time: now.Add(-5 * time.Second), Events: wantKept}}},
		{"wrong secret", signed(good, "not-the-secret"), 401, nil},
		{"no signature", Request{Body: good}, 401, nil},
		{"signature not hex", Request{Headers: map[string]string{HeaderSignature: "zz"}, Body: good}, 401, nil},
		{"body changed after signing", Request{Headers: signed(good, secret1).Headers, Body: bytes.Replace(good, []byte(`"rowId":10`), []byte(`"rowId":19`), 1)}, 401, nil},
		{"unknown webhook", signed(unknown, secret1), 403, nil},
		{"only own change agent", signed(ownOnly, secret1), 200, nil},
		{"stale timestamp", signed(stale, secret1), 400, nil},
		{"future timestamp", signed(future, secret1), 400, nil},
		{"no nonce", signed(noNonce, secret1), 400, nil},
		{"malformed JSON", signed([]byte(`{"nonce":`), secret1), 400, nil},
		{"JSON array", signed([]byte(`[]`), secret1), 400, nil},
		{"empty body", Request{}, 400, nil},
		{"oversized", signed(huge, secret1), 413, nil},
		{"status change", signed(status, secret1), 200, []Callback{{WebhookID: hookID, SheetID: sheetID, Nonce: "n-st", Time: now, NewStatus: "DISABLED_SCOPE_INACCESSIBLE"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sink, _ := newReceiver()
			got := r.Handle(context.Background(), tt.req)
			if got.Status != tt.status {
				t.Errorf("Handle(%s) = %d %s, want %d", tt.name, got.Status, got.Body, tt.status)
			}
			if diff := cmp.Diff(tt.want, sink.callbacks()); diff != "" {
				t.Errorf("Handle(%s) sink (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestHandleReplay(t *testing.T) {
	r, sink, _ := newReceiver()
	body := callbackJSON(t, "n-replay", now, cellEvent(1, 2, 3, ""))
	for i := range 3 {
		if got := r.Handle(context.Background(), signed(body, secret1)); got.Status != 200 {
			t.Fatalf("Handle(replay %d) = %d, want 200", i, got.Status)
		}
	}
	if n := len(sink.callbacks()); n != 1 {
		t.Errorf("Handle(same nonce ×3) processed %d times, want 1", n)
	}
}

func TestHandleSinkFailureIsRetried(t *testing.T) {
	r, sink, _ := newReceiver()
	sink.Err = errSink
	body := callbackJSON(t, "n-retry", now, cellEvent(1, 2, 3, ""))
	got := r.Handle(context.Background(), signed(body, secret1))
	if got.Status != 500 || strings.Contains(string(got.Body), errSink.Error()) {
		t.Fatalf("Handle(sink down) = %d %s, want 500 with a generic body", got.Status, got.Body)
	}
	sink.Err = nil
	if got := r.Handle(context.Background(), signed(body, secret1)); got.Status != 200 {
		t.Fatalf("Handle(retry) = %d, want 200", got.Status)
	}
	if n := len(sink.callbacks()); n != 1 {
		t.Errorf("Handle(retry after failure) reached the sink %d times, want 1", n)
	}
}

func TestHandleColumns(t *testing.T) {
	r, sink, _ := newReceiver()
	r.Columns = func(id int64) map[int64]bool {
		if id == sheetID {
			return map[int64]bool{20: true}
		}
		return nil
	}
	body := callbackJSON(t, "n-cols", now, cellEvent(1, 20, 3, ""), cellEvent(1, 21, 3, ""),
		smartsheet.WebhookEvent{ObjectType: "row", EventType: "deleted", ID: 5, UserID: 3, Timestamp: now})
	if got := r.Handle(context.Background(), signed(body, secret1)); got.Status != 200 {
		t.Fatalf("Handle = %d, want 200", got.Status)
	}
	cbs := sink.callbacks()
	var cols []int64
	for _, e := range cbs[0].Events {
		cols = append(cols, e.ColumnID)
	}
	if want := []int64{20, 0}; !cmp.Equal(cols, want) {
		t.Errorf("Handle(tracked {20}) kept columns %v, want %v", cols, want)
	}
}

// TestHandleLogsNoSecrets checks that neither the body nor a secret is logged.
func TestHandleLogsNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	r, sink, _ := newReceiver()
	r.Logger = slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	sink.Err = errSink
	body := callbackJSON(t, "n-log", now, cellEvent(1, 2, 3, "very-private-agent"))
	r.Handle(context.Background(), signed(body, secret1))
	r.Handle(context.Background(), signed(body, "wrong"))
	r.Handle(context.Background(), signed([]byte(`{"malformed-private`), secret1))
	for _, s := range []string{secret1, secret0, "very-private-agent", "malformed-private", Sign(body, secret1)} {
		if strings.Contains(buf.String(), s) {
			t.Errorf("log contains %q:\n%s", s, buf.String())
		}
	}
}

func TestVerify(t *testing.T) {
	body := []byte(`{"a":1}`)
	tests := []struct {
		name    string
		sig     string
		secrets []string
		want    bool
	}{
		{"current", Sign(body, "k1"), []string{"k1", "k0"}, true},
		{"previous", Sign(body, "k0"), []string{"k1", "k0"}, true},
		{"neither", Sign(body, "k2"), []string{"k1", "k0"}, false},
		{"empty secret never matches", Sign(body, ""), []string{""}, false},
		{"truncated", Sign(body, "k1")[:62], []string{"k1"}, false},
		{"empty", "", []string{"k1"}, false},
	}
	for _, tt := range tests {
		if got := Verify(body, tt.sig, tt.secrets); got != tt.want {
			t.Errorf("Verify(%s) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// TestHandleFreshness: a callback is fresh only while its timestamp lies
// after now-MaxSkew and before now+MaxSkew. Far-off years must be refused:
// their distance from now does not fit in a time.Duration.
func TestHandleFreshness(t *testing.T) {
	tests := []struct {
		name   string
		at     time.Time
		status int
	}{
		{"now", now, 200},
		{"just inside the past bound", now.Add(-DefaultMaxSkew + time.Millisecond), 200},
		{"at the past bound", now.Add(-DefaultMaxSkew), 400},
		{"just outside the past bound", now.Add(-DefaultMaxSkew - time.Millisecond), 400},
		{"just inside the future bound", now.Add(DefaultMaxSkew - time.Millisecond), 200},
		{"at the future bound", now.Add(DefaultMaxSkew), 400},
		{"just outside the future bound", now.Add(DefaultMaxSkew + time.Millisecond), 400},
		{"year 2400", time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), 400},
		{"year 9999", time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), 400},
		{"year 0001", time.Date(1, 1, 1, 0, 0, 1, 0, time.UTC), 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sink, nonces := newReceiver()
			body := callbackJSON(t, "n-fresh", tt.at, cellEvent(1, 2, 3, ""))
			got := r.Handle(context.Background(), signed(body, secret1))
			if got.Status != tt.status {
				t.Errorf("Handle(timestamp %s) = %d %s, want %d", tt.at.Format(time.RFC3339Nano), got.Status, got.Body, tt.status)
			}
			wantKept := 0
			if tt.status == 200 {
				wantKept = 1
			}
			if n, m := len(sink.callbacks()), len(nonces.seen); n != wantKept || m != wantKept {
				t.Errorf("Handle(timestamp %s) reached the sink %d times and recorded %d nonces, want %d", tt.at.Format(time.RFC3339Nano), n, m, wantKept)
			}
		})
	}
}

// TestHandleNonceLength: a nonce longer than MaxNonce is refused with 400
// before any port is asked: a 40 KB nonce made the DynamoDB nonce store fail
// ("key too large"), which answered 500, which Smartsheet retries.
func TestHandleNonceLength(t *testing.T) {
	tests := []struct {
		name   string
		nonce  string
		status int
		calls  int // port calls: Secrets, then Nonces.Seen
	}{
		{"a uuid", "0b5e0c4c-4b1e-4e55-9c8e-2c1f9d7b6a21", 200, 2},
		{"128 bytes", strings.Repeat("n", MaxNonce), 200, 2},
		{"129 bytes", strings.Repeat("n", MaxNonce+1), 400, 0},
		{"40 KB", strings.Repeat("n", 40<<10), 400, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sink, nonces := newReceiver()
			calls := 0
			secrets := r.Secrets
			r.Secrets = funcSecrets{SecretsFunc: func(ctx context.Context, id int64) (Hook, bool, error) {
				calls++
				return secrets.Secrets(ctx, id)
			}}
			r.Nonces = funcNonces{
				SeenFunc: func(ctx context.Context, n string, at time.Time) (bool, error) {
					calls++
					return nonces.Seen(ctx, n, at)
				},
				ForgetFunc: nonces.Forget,
			}
			body := callbackJSON(t, tt.nonce, now, cellEvent(1, 2, 3, ""))
			got := r.Handle(context.Background(), signed(body, secret1))
			if got.Status != tt.status || calls != tt.calls {
				t.Errorf("Handle(nonce of %d bytes) = %d %s after %d port calls, want %d after %d", len(tt.nonce), got.Status, got.Body, calls, tt.status, tt.calls)
			}
			if tt.status != 200 && len(sink.callbacks()) != 0 {
				t.Errorf("Handle(nonce of %d bytes) reached the sink", len(tt.nonce))
			}
		})
	}
}

// TestHandleScope: a callback must name, as its scopeObjectId, the sheet its
// webhook was registered for; a signed callback for another sheet (or for
// none) is refused with 403 and nothing recorded. A webhook whose sheet is
// not recorded (stored before sheets were) is not checked.
func TestHandleScope(t *testing.T) {
	other := int64(7720000000000099)
	forSheet := func(id int64) []byte {
		return bytes.Replace(callbackJSON(t, "n-scope", now, cellEvent(1, 2, 3, "")),
			fmt.Appendf(nil, `"scopeObjectId":%d`, sheetID), fmt.Appendf(nil, `"scopeObjectId":%d`, id), 1)
	}
	tests := []struct {
		name       string
		registered int64 // the hook's SheetID
		scope      int64 // the callback's scopeObjectId
		status     int
	}{
		{"its own sheet", sheetID, sheetID, 200},
		{"another sheet", sheetID, other, 403},
		{"no sheet", sheetID, 0, 403},
		{"sheet not recorded: unchecked", 0, other, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, sink, nonces := newReceiver()
			r.Secrets = fakeSecrets{hookID: {Secrets: []string{secret1}, SheetID: tt.registered}}
			got := r.Handle(context.Background(), signed(forSheet(tt.scope), secret1))
			if got.Status != tt.status {
				t.Errorf("Handle(scopeObjectId %d, webhook of sheet %d) = %d %s, want %d", tt.scope, tt.registered, got.Status, got.Body, tt.status)
			}
			wantKept := 0
			if tt.status == 200 {
				wantKept = 1
			}
			if n, m := len(sink.callbacks()), len(nonces.seen); n != wantKept || m != wantKept {
				t.Errorf("Handle(scopeObjectId %d, webhook of sheet %d) reached the sink %d times and recorded %d nonces, want %d",
					tt.scope, tt.registered, n, m, wantKept)
			}
		})
	}
}
