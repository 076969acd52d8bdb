package webhook

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// FuzzHandle sends random bodies and signatures. Handle never panics; a body
// signed with the secret of the webhook it names is never 401; a call with a
// wrong signature never reaches the sink; what reaches the sink is fresh,
// for the webhook's own sheet and with a bounded nonce.
func FuzzHandle(f *testing.F) {
	f.Add(callbackJSON(f, "n-1", now, cellEvent(1, 2, 3, "")), "", true)
	f.Add(callbackJSON(f, "n-2", now, cellEvent(1, 2, 3, "billing-audit")), "", false)
	f.Add([]byte(`{"challenge":"x","webhookId":4410000000000001}`), "", false)
	f.Add([]byte(`{"webhookId":4410000000000001,"nonce":"a","timestamp":"2025-03-14T09:26:53.000+00:00","events":[{"objectType":"row","eventType":"deleted","id":4}]}`), "00", true)
	f.Add([]byte(`{"webhookId":4410000000000001,"newWebhookStatus":"DISABLED_ADMINISTRATIVE"}`), "zz", true)
	f.Add([]byte(`{"webhookId":1e400}`), "", true)
	f.Add([]byte(`null`), "", false)
	f.Add([]byte(`{"webhookId":4410000000000001,"nonce":"far","timestamp":"9999-12-31T23:59:59.000+00:00","scopeObjectId":7720000000000002,"events":[{"objectType":"cell","eventType":"updated","rowId":1,"columnId":2}]}`), "", true)
	f.Add([]byte(`{"webhookId":4410000000000001,"nonce":"other","timestamp":"2025-03-14T09:26:53.000+00:00","scopeObjectId":1,"events":[{"objectType":"cell","eventType":"updated","rowId":1,"columnId":2}]}`), "", true)
	f.Add(callbackJSON(f, strings.Repeat("n", MaxNonce+1), now, cellEvent(1, 2, 3, "")), "", true)
	f.Fuzz(func(t *testing.T, body []byte, sig string, sign bool) {
		r, sink, _ := newReceiver()
		r.MaxBody = 64 << 10
		if sign {
			sig = Sign(body, secret1)
		}
		got := r.Handle(context.Background(), Request{Headers: map[string]string{HeaderSignature: sig}, Body: body})
		var head struct {
			WebhookID int64 `json:"webhookId"`
		}
		named := json.Unmarshal(body, &head) == nil && head.WebhookID == hookID
		if sign && named && got.Status == 401 {
			t.Errorf("Handle(signed with the right secret) = 401")
		}
		if !Verify(body, sig, []string{secret1, secret0}) && len(sink.callbacks()) > 0 {
			t.Errorf("Handle(wrong signature) reached the sink")
		}
		for _, cb := range sink.callbacks() {
			if !cb.Time.After(now.Add(-DefaultMaxSkew)) || !cb.Time.Before(now.Add(DefaultMaxSkew)) || cb.SheetID != sheetID || len(cb.Nonce) > MaxNonce {
				t.Errorf("Handle accepted a callback at %s for sheet %d with a %d-byte nonce", cb.Time, cb.SheetID, len(cb.Nonce))
			}
		}
		if got.Status == 0 || len(got.Body) == 0 {
			t.Errorf("Handle = %d %q, want a status and a body", got.Status, got.Body)
		}
	})
}

// BenchmarkHandle measures verified callbacks per second: a signed callback
// of 5 events (one of ours), fresh nonce each time, in-memory ports.
func BenchmarkHandle(b *testing.B) {
	r, _, _ := newReceiver()
	r.Sink = SinkFunc(func(context.Context, Callback) error { return nil })
	r.Clock = time.Now
	const n = 1024
	reqs := make([]Request, n)
	at := time.Now()
	for i := range reqs {
		body := callbackJSON(b, "nonce-"+time.Duration(i).String(), at,
			cellEvent(10, 20, 111, ""), cellEvent(10, 21, 111, ""), cellEvent(11, 20, 222, "billing-audit"),
			cellEvent(12, 22, 222, ""), cellEvent(13, 20, 111, ""))
		reqs[i] = signed(body, secret1)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%n == 0 {
			r.Nonces = &fakeNonces{}
		}
		if got := r.Handle(ctx, reqs[i%n]); got.Status != 200 {
			b.Fatalf("Handle = %d %s", got.Status, got.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "callbacks/s")
}
