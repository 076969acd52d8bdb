package localchain_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
)

// echoFunction records the event it is invoked with and answers with answer (or err).
type echoFunction struct {
	got    events.APIGatewayV2HTTPRequest
	answer string
	err    error
}

func (f *echoFunction) Invoke(_ context.Context, payload []byte) ([]byte, error) {
	if err := json.Unmarshal(payload, &f.got); err != nil {
		return nil, err
	}
	return []byte(f.answer), f.err
}

func mustHTTPAPI(t *testing.T, fn localchain.Invoker) *localchain.HTTPAPI {
	t.Helper()
	api, err := localchain.StartHTTPAPI(&localchain.HTTPAPI{RouteKey: localchain.WebhookRoute, Function: fn})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Close() })
	return api
}

func TestHTTPAPI(t *testing.T) {
	tests := []struct {
		name, method, path, contentType, body, answer string
		fnErr                                         error
		wantStatus                                    int
		wantBody                                      string
		wantHeader                                    [2]string
		wantBase64                                    bool
		invoked                                       bool
	}{
		{name: "json callback", method: "POST", path: "/webhooks/smartsheet", contentType: "application/json", body: `{"challenge":"c"}`,
			answer:     `{"statusCode":200,"headers":{"Smartsheet-Hook-Response":"c"},"body":"{\"smartsheetHookResponse\":\"c\"}"}`,
			wantStatus: 200, wantBody: `{"smartsheetHookResponse":"c"}`, wantHeader: [2]string{"Smartsheet-Hook-Response", "c"}, invoked: true},
		{name: "binary body is base64", method: "POST", path: "/webhooks/smartsheet", contentType: "application/octet-stream", body: "\x00\x01",
			answer: `{"statusCode":400,"body":"{\"error\":\"bad request\"}"}`, wantStatus: 400, wantBody: `{"error":"bad request"}`, wantBase64: true, invoked: true},
		{name: "bare JSON answer", method: "POST", path: "/webhooks/smartsheet", contentType: "application/json", body: `{}`,
			answer: `{"ok":true}`, wantStatus: 200, wantBody: `{"ok":true}`, invoked: true},
		{name: "function error", method: "POST", path: "/webhooks/smartsheet", contentType: "application/json", body: `{}`,
			fnErr: errors.New("boom"), wantStatus: 500, wantBody: `{"message":"Internal Server Error"}`, invoked: true},
		{name: "other path", method: "POST", path: "/other", body: `{}`, wantStatus: 404, wantBody: `{"message":"Not Found"}`},
		{name: "other method", method: "GET", path: "/webhooks/smartsheet", wantStatus: 404, wantBody: `{"message":"Not Found"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fn := &echoFunction{answer: tt.answer, err: tt.fnErr}
			api := mustHTTPAPI(t, fn)
			req, err := http.NewRequest(tt.method, api.URL()+tt.path, bytes.NewBufferString(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if tt.contentType != "" {
				req.Header.Set("Content-Type", tt.contentType)
			}
			req.Header.Set("Smartsheet-Hmac-SHA256", "abc")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer res.Body.Close()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tt.wantStatus || string(body) != tt.wantBody {
				t.Errorf("%s %s = %d %s, want %d %s", tt.method, tt.path, res.StatusCode, body, tt.wantStatus, tt.wantBody)
			}
			if k := tt.wantHeader[0]; k != "" && res.Header.Get(k) != tt.wantHeader[1] {
				t.Errorf("header %s = %q, want %q", k, res.Header.Get(k), tt.wantHeader[1])
			}
			if got := api.Requests() == 1; got != tt.invoked {
				t.Fatalf("function invoked = %v, want %v", got, tt.invoked)
			}
			if !tt.invoked {
				return
			}
			ev := fn.got
			if ev.Version != "2.0" || ev.RouteKey != localchain.WebhookRoute || ev.RequestContext.RouteKey != localchain.WebhookRoute ||
				ev.RawPath != tt.path || ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.Stage != "$default" {
				t.Errorf("event = %+v, want version 2.0, route %s, path %s", ev, localchain.WebhookRoute, tt.path)
			}
			if ev.Headers["smartsheet-hmac-sha256"] != "abc" || ev.Headers["content-type"] != tt.contentType {
				t.Errorf("event headers = %v, want lower-case names", ev.Headers)
			}
			got := ev.Body
			if ev.IsBase64Encoded {
				b, err := base64.StdEncoding.DecodeString(ev.Body)
				if err != nil {
					t.Fatal(err)
				}
				got = string(b)
			}
			if ev.IsBase64Encoded != tt.wantBase64 || got != tt.body {
				t.Errorf("event body = %q (base64 %v), want %q (base64 %v)", ev.Body, ev.IsBase64Encoded, tt.body, tt.wantBase64)
			}
		})
	}
}
