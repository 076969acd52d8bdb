package alert_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// receiver is a local webhook endpoint (127.0.0.1) that keeps every body
// posted to it, answering with status (200 unless set).
type receiver struct {
	srv *httptest.Server
	// secretPath is the URL's secret part, as in a real webhook URL.
	secretPath string

	mu     sync.Mutex
	status int
	bodies [][]byte // accepted posts
	tries  int      // every post, failed ones too
}

func newReceiver(t *testing.T, secretPath string) *receiver {
	t.Helper()
	r := &receiver{secretPath: secretPath, status: http.StatusOK}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		defer r.mu.Unlock()
		r.tries++
		if req.Method != http.MethodPost || req.URL.RequestURI() != r.secretPath || req.Header.Get("Content-Type") != "application/json" {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		if r.status != http.StatusOK {
			http.Error(w, "endpoint down", r.status)
			return
		}
		r.bodies = append(r.bodies, body)
		w.WriteHeader(http.StatusOK)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// URL is the webhook's (secret) URL.
func (r *receiver) URL() string { return r.srv.URL + r.secretPath }

func (r *receiver) setStatus(s int) {
	r.mu.Lock()
	r.status = s
	r.mu.Unlock()
}

// take returns the accepted bodies since the last take, decoded.
func (r *receiver) take(t *testing.T) []map[string]any {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, b := range r.bodies {
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("a posted body is not JSON: %v: %s", err, b)
		}
		out = append(out, m)
	}
	r.bodies = nil
	return out
}

func (r *receiver) attempts() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tries
}
