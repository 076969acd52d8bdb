package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/aws/lambdaapp/lambdaapptest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

// The sample events of events/webhook go through the handler and the real
// receiver over in-memory ports: the signature in callback.json is made with
// this secret, for webhook 8444254503626628.
const (
	sampleSecret    = "sample-shared-secret-do-not-use"
	sampleWebhook   = 8444254503626628
	sampleSheet     = 4583173393803140
	sampleRow       = 6572427401553796
	sampleChallenge = "d6a7e3b0-6f2c-4c1e-9a5b-8e2f1d3c7b60"
)

// ports are the receiver's ports in memory.
type ports struct {
	mu       sync.Mutex
	nonces   map[string]bool
	records  []webhook.Record
	refresh  []pipeline.Refresh
	meta     map[string]string
	failSend bool
	// sheet is the sheet webhook sampleWebhook was registered for.
	sheet int64
}

func newPorts() *ports {
	return &ports{nonces: map[string]bool{}, meta: map[string]string{}, sheet: sampleSheet}
}

func (p *ports) SecretSet(_ context.Context, id int64) (webhook.SecretSet, bool, error) {
	return webhook.SecretSet{Current: sampleSecret, SheetID: p.sheet}, id == sampleWebhook, nil
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

// newHandler is the handler over the real receiver, wired as lambdaapp
// wires it, with p for its ports and the callback's time for its clock.
func newHandler(p *ports) handler {
	return handler{&webhook.Receiver{
		Secrets: webhook.StoredSecrets(p, nil), Nonces: p,
		Sink:  &pipeline.WebhookSink{Records: p, Queue: p, Meta: p},
		Clock: func() time.Time { return time.Date(2026, 11, 23, 14, 7, 33, 0, time.UTC) },
	}}
}

// refreshed is what a test keeps of a queued refresh.
type refreshed struct {
	Sheet int64
	Rows  []int64
}

var cellRefresh = []refreshed{{Sheet: sampleSheet, Rows: []int64{sampleRow}}}

// webhookCases are the handler's table: every events/webhook sample (event
// names it), as sent and altered.
var webhookCases = []struct {
	name       string
	event      string
	alter      func(*events.APIGatewayV2HTTPRequest)
	deliveries int // default 1; the answers of all must be want
	failSend   bool
	sheet      int64 // the sheet the webhook was registered for; default sampleSheet
	wantStatus int
	wantHeader map[string]string // a subset of the response's headers
	wantBody   string            // when set
	// wantRecords is how many attribution records were stored, wantRefresh
	// the refreshes queued, wantNonces the nonces still remembered.
	wantRecords int
	wantRefresh []refreshed
	wantNonces  int
}{
	{name: "challenge echoed", event: "challenge.json", wantStatus: http.StatusOK,
		wantHeader: map[string]string{webhook.HeaderResponse: sampleChallenge}},
	{name: "callback: the cell's record, the row refreshed (row updates dropped)", event: "callback.json",
		wantStatus: http.StatusOK, wantRecords: 1, wantRefresh: cellRefresh, wantNonces: 1},
	{name: "callback, base64 body", event: "callback.json", alter: encodeBody,
		wantStatus: http.StatusOK, wantRecords: 1, wantRefresh: cellRefresh, wantNonces: 1},
	{name: "callback redelivered: refreshed once", event: "callback.json", deliveries: 2,
		wantStatus: http.StatusOK, wantRecords: 1, wantRefresh: cellRefresh, wantNonces: 1},
	{name: "callback, bad signature", event: "callback.json",
		alter:      func(r *events.APIGatewayV2HTTPRequest) { r.Headers = map[string]string{"smartsheet-hmac-sha256": "00"} },
		wantStatus: http.StatusUnauthorized},
	{name: "callback for a sheet its webhook does not watch: 403, nothing kept", event: "callback.json",
		sheet: sampleSheet + 1, wantStatus: http.StatusForbidden, wantBody: `{"error":"forbidden"}`},
	{name: "callback, garbled base64", event: "callback.json",
		alter:      func(r *events.APIGatewayV2HTTPRequest) { r.Body, r.IsBase64Encoded = "%%%", true },
		wantStatus: http.StatusBadRequest, wantBody: `{"error":"bad request"}`},
	{name: "callback, queue down: 500 without detail, nonce forgotten so Smartsheet's retry counts", event: "callback.json",
		failSend: true, wantStatus: http.StatusInternalServerError, wantBody: `{"error":"internal error"}`, wantRecords: 1},
}

func encodeBody(r *events.APIGatewayV2HTTPRequest) {
	r.Body, r.IsBase64Encoded = base64.StdEncoding.EncodeToString([]byte(r.Body)), true
}

func TestHandle(t *testing.T) {
	for _, tt := range webhookCases {
		t.Run(tt.name, func(t *testing.T) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(lambdaapptest.MustEvent(t, "webhook", tt.event), &req); err != nil {
				t.Fatal(err)
			}
			if tt.alter != nil {
				tt.alter(&req)
			}
			p := newPorts()
			p.failSend = tt.failSend
			if tt.sheet != 0 {
				p.sheet = tt.sheet
			}
			h := newHandler(p)
			for i := range max(tt.deliveries, 1) {
				got, err := h.handle(context.Background(), req)
				if err != nil || got.StatusCode != tt.wantStatus {
					t.Fatalf("handle(%s) delivery %d = %d %s, %v; want %d", tt.event, i+1, got.StatusCode, got.Body, err, tt.wantStatus)
				}
				for k, v := range tt.wantHeader {
					if got.Headers[k] != v {
						t.Errorf("handle(%s) header %s = %q, want %q", tt.event, k, got.Headers[k], v)
					}
				}
				if tt.wantBody != "" && got.Body != tt.wantBody {
					t.Errorf("handle(%s) body = %s, want %s", tt.event, got.Body, tt.wantBody)
				}
			}
			var refreshes []refreshed
			for _, f := range p.refresh {
				refreshes = append(refreshes, refreshed{Sheet: f.SheetID, Rows: f.RowIDs})
			}
			if diff := cmp.Diff(tt.wantRefresh, refreshes); diff != "" {
				t.Errorf("handle(%s) refreshes mismatch (-want +got):\n%s", tt.event, diff)
			}
			if len(p.records) != tt.wantRecords || len(p.nonces) != tt.wantNonces {
				t.Errorf("handle(%s) stored %d records, %d nonces; want %d, %d", tt.event, len(p.records), len(p.nonces), tt.wantRecords, tt.wantNonces)
			}
		})
	}
}

// fakeReceiver is a function-field fake of the receiver.
type fakeReceiver struct {
	handle func(ctx context.Context, req webhook.Request) webhook.Response
}

func (f fakeReceiver) Handle(ctx context.Context, req webhook.Request) webhook.Response {
	return f.handle(ctx, req)
}

// The HTTP API's request reaches the receiver as headers and decoded body,
// and its answer goes back unchanged.
func TestHandleTranslates(t *testing.T) {
	answer := webhook.Response{Status: http.StatusAccepted, Headers: map[string]string{"X-A": "b"}, Body: []byte(`{"ok":true}`)}
	tests := []struct {
		name     string
		req      events.APIGatewayV2HTTPRequest
		wantBody string
	}{
		{name: "plain", req: events.APIGatewayV2HTTPRequest{Headers: map[string]string{"h": "v"}, Body: `{"x":1}`}, wantBody: `{"x":1}`},
		{name: "base64", req: events.APIGatewayV2HTTPRequest{Headers: map[string]string{"h": "v"},
			Body: base64.StdEncoding.EncodeToString([]byte(`{"x":1}`)), IsBase64Encoded: true}, wantBody: `{"x":1}`},
		{name: "empty", req: events.APIGatewayV2HTTPRequest{Headers: map[string]string{"h": "v"}}, wantBody: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotReq webhook.Request
			h := handler{fakeReceiver{handle: func(_ context.Context, req webhook.Request) webhook.Response {
				gotReq = req
				return answer
			}}}
			got, err := h.handle(context.Background(), tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(webhook.Request{Headers: tt.req.Headers, Body: []byte(tt.wantBody)}, gotReq, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
				t.Errorf("handle(%+v) passed on mismatch (-want +got):\n%s", tt.req, diff)
			}
			want := events.APIGatewayV2HTTPResponse{StatusCode: answer.Status, Headers: answer.Headers, Body: string(answer.Body)}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("handle(%+v) mismatch (-want +got):\n%s", tt.req, diff)
			}
		})
	}
}

// TestEverySample fails when events/webhook holds a sample no case reads.
func TestEverySample(t *testing.T) {
	var names []string
	for _, tt := range webhookCases {
		names = append(names, tt.event)
	}
	lambdaapptest.RequireEverySample(t, "webhook", names)
}
