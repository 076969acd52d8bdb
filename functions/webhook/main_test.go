package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The sample events of events/webhook, through the handler with in-memory ports.

const sampleSecret = "sample-shared-secret-do-not-use"

type ports struct {
	mu       sync.Mutex
	nonces   map[string]bool
	records  []webhook.Record
	refresh  []pipeline.Refresh
	meta     map[string]string
	failSend bool
}

func (p *ports) SecretSet(_ context.Context, id int64) (webhook.SecretSet, bool, error) {
	return webhook.SecretSet{Current: sampleSecret}, id == 8444254503626628, nil
}
func (p *ports) Seen(_ context.Context, n string, _ time.Time) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	seen := p.nonces[n]
	p.nonces[n] = true
	return seen, nil
}
func (p *ports) Forget(_ context.Context, n string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.nonces, n)
	return nil
}
func (p *ports) PutRecords(_ context.Context, recs []webhook.Record) error {
	p.records = append(p.records, recs...)
	return nil
}
func (p *ports) SendRefresh(_ context.Context, f pipeline.Refresh) error {
	if p.failSend {
		return context.DeadlineExceeded
	}
	p.refresh = append(p.refresh, f)
	return nil
}
func (p *ports) Meta(_ context.Context, k string) (string, bool, error) {
	v, ok := p.meta[k]
	return v, ok, nil
}
func (p *ports) PutMeta(_ context.Context, k, v string) error { p.meta[k] = v; return nil }

func newHandler(p *ports) handler {
	return handler{&webhook.Receiver{
		Secrets: webhook.StoredSecrets(p, nil), Nonces: p,
		Sink:  &pipeline.WebhookSink{Records: p, Queue: p, Meta: p},
		Clock: func() time.Time { return time.Date(2026, 11, 23, 14, 7, 33, 0, time.UTC) },
	}}
}

func mustEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "events", "webhook", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestHandler(t *testing.T) {
	ctx := context.Background()
	p := &ports{nonces: map[string]bool{}, meta: map[string]string{}}
	h := newHandler(p)

	ch := mustEvent(t, "challenge.json")
	res, err := h.handle(ctx, ch)
	if err != nil || res.StatusCode != 200 || res.Headers[webhook.HeaderResponse] != ch.Headers["smartsheet-hook-challenge"] {
		t.Errorf("challenge = %d %v, %v; want 200 echoing the challenge", res.StatusCode, res.Headers, err)
	}

	cb := mustEvent(t, "callback.json")
	// API Gateway may hand the body over base64-encoded.
	enc := cb
	enc.Body, enc.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(cb.Body)), true
	res, err = h.handle(ctx, enc)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("callback = %d %s, %v; want 200", res.StatusCode, res.Body, err)
	}
	if len(p.records) != 1 || len(p.refresh) != 1 || p.refresh[0].SheetID != 4583173393803140 ||
		len(p.refresh[0].RowIDs) != 1 || p.refresh[0].RowIDs[0] != 6572427401553796 {
		t.Errorf("records %+v, refreshes %+v; want the cell's record (row updates are dropped), one refresh of row 6572427401553796", p.records, p.refresh)
	}
	if res, _ := h.handle(ctx, cb); res.StatusCode != 200 || len(p.refresh) != 1 {
		t.Errorf("redelivery = %d, %d refreshes; want 200 and no second refresh", res.StatusCode, len(p.refresh))
	}

	bad := cb
	bad.Headers = map[string]string{"smartsheet-hmac-sha256": "00"}
	if res, _ := h.handle(ctx, bad); res.StatusCode != 401 {
		t.Errorf("bad signature = %d, want 401", res.StatusCode)
	}
	garbled := cb
	garbled.Body, garbled.IsBase64Encoded = "%%%", true
	if res, _ := h.handle(ctx, garbled); res.StatusCode != 400 {
		t.Errorf("bad base64 = %d, want 400", res.StatusCode)
	}

	// The queue fails: 500 (Smartsheet retries), the nonce forgotten, no detail leaked.
	q := &ports{nonces: map[string]bool{}, meta: map[string]string{}, failSend: true}
	res, _ = newHandler(q).handle(ctx, cb)
	if res.StatusCode != 500 || res.Body != `{"error":"internal error"}` || len(q.nonces) != 0 {
		t.Errorf("sink failure = %d %s, nonces %v; want 500, generic body, nonce forgotten", res.StatusCode, res.Body, q.nonces)
	}
}
