package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// fakeSecrets is an in-memory Secrets.
type fakeSecrets map[int64]Hook

func (f fakeSecrets) Secrets(_ context.Context, id int64) (Hook, bool, error) {
	h, ok := f[id]
	return h, ok, nil
}

// fakeNonces is an in-memory Nonces.
type fakeNonces struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (f *fakeNonces) Seen(_ context.Context, nonce string, at time.Time) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]time.Time{}
	}
	if _, ok := f.seen[nonce]; ok {
		return true, nil
	}
	f.seen[nonce] = at
	return false, nil
}

func (f *fakeNonces) Forget(_ context.Context, nonce string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.seen, nonce)
	return nil
}

// fakeSink records accepted callbacks; Err makes Accept fail.
type fakeSink struct {
	mu  sync.Mutex
	got []Callback
	Err error
}

func (f *fakeSink) Accept(_ context.Context, cb Callback) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Err != nil {
		return f.Err
	}
	f.got = append(f.got, cb)
	return nil
}

func (f *fakeSink) callbacks() []Callback {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Callback(nil), f.got...)
}

var errSink = errors.New("sink down")

const (
	hookID  = int64(4410000000000001)
	sheetID = int64(7720000000000002)
	secret1 = "s3cr3t-current"
	secret0 = "s3cr3t-previous"
)

var now = time.Date(2025, 3, 14, 9, 26, 53, 0, time.UTC)

// newReceiver returns a receiver over fresh fakes with a fixed clock.
func newReceiver() (*Receiver, *fakeSink, *fakeNonces) {
	sink, nonces := &fakeSink{}, &fakeNonces{}
	r := &Receiver{
		Secrets: fakeSecrets{hookID: {Secrets: []string{secret1, secret0}, SheetID: sheetID}},
		Nonces:  nonces, Sink: sink,
		OwnChangeAgent: "billing-audit",
		Clock:          func() time.Time { return now },
	}
	return r, sink, nonces
}

// callbackJSON builds a callback body in Smartsheet's wire format
// (+00:00 timestamps with milliseconds).
func callbackJSON(tb testing.TB, nonce string, at time.Time, events ...smartsheet.WebhookEvent) []byte {
	tb.Helper()
	type ev struct {
		ObjectType  string `json:"objectType"`
		EventType   string `json:"eventType"`
		ID          int64  `json:"id,omitempty"`
		RowID       int64  `json:"rowId,omitempty"`
		ColumnID    int64  `json:"columnId,omitempty"`
		UserID      int64  `json:"userId"`
		Timestamp   string `json:"timestamp"`
		ChangeAgent string `json:"changeAgent,omitempty"`
	}
	const layout = "2006-01-02T15:04:05.000+00:00"
	body := struct {
		Nonce         string `json:"nonce"`
		Timestamp     string `json:"timestamp"`
		WebhookID     int64  `json:"webhookId"`
		Scope         string `json:"scope"`
		ScopeObjectID int64  `json:"scopeObjectId"`
		Events        []ev   `json:"events"`
	}{Nonce: nonce, Timestamp: at.UTC().Format(layout), WebhookID: hookID, Scope: "sheet", ScopeObjectID: sheetID}
	for _, e := range events {
		body.Events = append(body.Events, ev{e.ObjectType, e.EventType, e.ID, e.RowID, e.ColumnID, e.UserID, e.Timestamp.UTC().Format(layout), e.ChangeAgent})
	}
	b, err := json.Marshal(body)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func signed(body []byte, secret string) Request {
	return Request{Headers: map[string]string{"content-type": "application/json", "smartsheet-hmac-sha256": Sign(body, secret)}, Body: body}
}

func cellEvent(row, col, user int64, agent string) smartsheet.WebhookEvent {
	return smartsheet.WebhookEvent{ObjectType: "cell", EventType: "updated", RowID: row, ColumnID: col, UserID: user,
		Timestamp: now.Add(-30 * time.Second), ChangeAgent: agent}
}

// funcSecrets is a function-field fake of Secrets.
type funcSecrets struct {
	SecretsFunc func(ctx context.Context, webhookID int64) (Hook, bool, error)
}

func (f funcSecrets) Secrets(ctx context.Context, id int64) (Hook, bool, error) {
	return f.SecretsFunc(ctx, id)
}

// funcNonces is a function-field fake of Nonces.
type funcNonces struct {
	SeenFunc   func(ctx context.Context, nonce string, at time.Time) (bool, error)
	ForgetFunc func(ctx context.Context, nonce string) error
}

func (f funcNonces) Seen(ctx context.Context, nonce string, at time.Time) (bool, error) {
	return f.SeenFunc(ctx, nonce, at)
}

func (f funcNonces) Forget(ctx context.Context, nonce string) error { return f.ForgetFunc(ctx, nonce) }
