package smartsheet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"
)

const addedBody = `{"message":"SUCCESS","resultCode":0,"result":[{"id":1001,"cells":[]}],"version":2}`

func TestAddRowsNoReplay(t *testing.T) {
	ok := reply{200, addedBody, nil}
	tests := []struct {
		name          string
		replies       []reply
		noReplay      bool
		wantCalls     int
		wantAmbiguous bool
		wantCode      int  // errorCode of the final error, if any
		wantErr       bool // false: the add succeeds
	}{
		{name: "bare 502 is ambiguous", replies: []reply{{502, "<html>Bad Gateway</html>", nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "4004 is ambiguous", replies: []reply{{500, apiErr(4004, "Unexpected error"), nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantCode: 4004, wantErr: true},
		{name: "4002 is ambiguous", replies: []reply{{500, apiErr(4002, "Server timeout exceeded"), nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantCode: 4002, wantErr: true},
		{name: "bare 500 is ambiguous", replies: []reply{{500, "Internal Server Error", nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "bare 503 is ambiguous", replies: []reply{{503, "", nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "bare 504 is ambiguous", replies: []reply{{504, "", nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "dropped connection is ambiguous", replies: []reply{{-1, "", nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "unreadable success body is ambiguous", replies: []reply{{200, `{"message":"SUCC`, nil}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "success body cut short is ambiguous", replies: []reply{{200, `{"message":"SUCC`, map[string]string{"Content-Length": "500"}}, ok},
			noReplay: true, wantCalls: 1, wantAmbiguous: true, wantErr: true},
		{name: "429 is retried", replies: []reply{{429, apiErr(4003, "Rate limit exceeded."), nil}, ok},
			noReplay: true, wantCalls: 2},
		{name: "4001 maintenance is retried", replies: []reply{{503, apiErr(4001, "Offline for maintenance."), nil}, ok},
			noReplay: true, wantCalls: 2},
		{name: "1042 is final, not ambiguous", replies: []reply{{400, apiErr(1042, "The cell value is not valid"), nil}},
			noReplay: true, wantCalls: 1, wantCode: 1042, wantErr: true},
		{name: "500 with another code is final, not ambiguous", replies: []reply{{500, apiErr(1119, "Failed to complete copy"), nil}},
			noReplay: true, wantCalls: 1, wantCode: 1119, wantErr: true},
		{name: "without NoReplay 502 is retried", replies: []reply{{502, "<html>Bad Gateway</html>", nil}, ok},
			wantCalls: 2},
		{name: "without NoReplay a dropped connection is retried", replies: []reply{{-1, "", nil}, ok},
			wantCalls: 2},
		{name: "without NoReplay 4004 is retried", replies: []reply{{500, apiErr(4004, "Unexpected error"), nil}, ok},
			wantCalls: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := &scripted{replies: tt.replies}
			tc := mustTestClient(t, srv)
			opts := AddRowsOptions{ToBottom: true, NoReplay: tt.noReplay}

			_, err := tc.AddRows(context.Background(), 7, numberedRows(1), opts)

			if got := len(srv.requests()); got != tt.wantCalls {
				t.Errorf("AddRows(%+v) made %d calls, want %d", opts, got, tt.wantCalls)
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("AddRows(%+v) error = %v, want error %t", opts, err, tt.wantErr)
			}
			if got := IsAmbiguous(err); got != tt.wantAmbiguous {
				t.Errorf("IsAmbiguous(%v) = %t, want %t", err, got, tt.wantAmbiguous)
			}
			if got := ErrorCode(err); got != tt.wantCode {
				t.Errorf("ErrorCode(%v) = %d, want %d", err, got, tt.wantCode)
			}
			if err != nil {
				var be *BatchError
				if !errors.As(err, &be) || be.Offset != 0 || be.Count != 1 {
					t.Errorf("errors.As(%v, *BatchError) = %+v, want rows 0-0", err, be)
				}
				var re *RetryError
				if errors.As(err, &re) {
					t.Errorf("AddRows() error = %v, want a final error, not a *RetryError", err)
				}
			}
			st := tc.Stats()
			if st.Calls[statsAddRowsKey] != int64(tt.wantCalls) || st.Retries != int64(tt.wantCalls-1) {
				t.Errorf("Stats() = calls %v retries %d, want %d calls and %d retries", st.Calls, st.Retries, tt.wantCalls, tt.wantCalls-1)
			}
		})
	}
}

const statsAddRowsKey = "POST /sheets/{sheetId}/rows"

// TestNoReplayRetriesFailedConnect: a dial error proves the request never
// left, so even a NoReplay add is retried.
func TestNoReplayRetriesFailedConnect(t *testing.T) {
	srv := &scripted{replies: []reply{{200, addedBody, nil}}}
	var dials atomic.Int32
	tc := mustTestClient(t, srv, func(c *Config) {
		base := http.DefaultTransport.(*http.Transport).Clone()
		t.Cleanup(base.CloseIdleConnections)
		d := &net.Dialer{}
		base.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if dials.Add(1) == 1 {
				return nil, &net.OpError{Op: "dial", Net: network, Err: errors.New("connection refused")}
			}
			return d.DialContext(ctx, network, addr)
		}
		c.HTTPClient = &http.Client{Transport: base}
	})

	res, err := tc.AddRows(context.Background(), 7, numberedRows(1), AddRowsOptions{NoReplay: true})

	if err != nil {
		t.Fatalf("AddRows(NoReplay) error = %v, want nil after a retried dial error", err)
	}
	if len(res.Rows) != 1 || res.Rows[0].ID != 1001 {
		t.Errorf("AddRows(NoReplay) rows = %+v, want row 1001", res.Rows)
	}
	if got := len(srv.requests()); got != 1 {
		t.Errorf("server saw %d requests, want 1", got)
	}
	if st := tc.Stats(); st.Requests != 2 || st.Retries != 1 {
		t.Errorf("Stats() = requests %d retries %d, want 2 and 1", st.Requests, st.Retries)
	}
}

// TestNoReplayTimeoutIsAmbiguous: the request reached the server, which
// never answered; it may have been applied.
func TestNoReplayTimeoutIsAmbiguous(t *testing.T) {
	var calls atomic.Int32
	hang := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		// The server notices the client hanging up only once the body is read.
		_, _ = io.Copy(io.Discard, r.Body)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	tc := mustTestClient(t, hang, func(c *Config) { c.HTTPClient = &http.Client{Timeout: 100 * time.Millisecond} })

	_, err := tc.AddRows(context.Background(), 7, numberedRows(1), AddRowsOptions{NoReplay: true})

	if !IsAmbiguous(err) {
		t.Fatalf("IsAmbiguous(%v) = false, want true", err)
	}
	var te *TransportError
	if !errors.As(err, &te) {
		t.Errorf("errors.As(%v, *TransportError) = false, want the timeout", err)
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("server saw %d requests, want 1", got)
	}
}

func TestIsAmbiguous(t *testing.T) {
	amb := &AmbiguousError{Endpoint: "POST /sheets/{sheetId}/rows", Err: &APIError{StatusCode: 502, Endpoint: "POST /sheets/{sheetId}/rows"}}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"bare", amb, true},
		{"in a batch error", fmt.Errorf("add rows to sheet 7: %w", &BatchError{Offset: 500, Count: 500, Err: amb}), true},
		{"api error", &APIError{StatusCode: 502}, false},
		{"retry error", &RetryError{Last: &APIError{StatusCode: 502}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsAmbiguous(tt.err); got != tt.want {
				t.Errorf("IsAmbiguous(%v) = %t, want %t", tt.err, got, tt.want)
			}
		})
	}
	if got := ErrorCode(&AmbiguousError{Err: &APIError{ErrorCode: CodeUnexpected}}); got != CodeUnexpected {
		t.Errorf("ErrorCode(AmbiguousError{4004}) = %d, want %d", got, CodeUnexpected)
	}
}
