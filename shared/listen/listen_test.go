package listen

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// ports are function-field fakes of the listener's ports; the tests here
// never get past the receiver's first checks.
type ports struct {
	SecretsFunc     func(ctx context.Context, webhookID int64) (webhook.Hook, bool, error)
	SeenFunc        func(ctx context.Context, nonce string, at time.Time) (bool, error)
	ForgetFunc      func(ctx context.Context, nonce string) error
	PutRecordsFunc  func(ctx context.Context, recs []webhook.Record) error
	MetaFunc        func(ctx context.Context, key string) (string, bool, error)
	PutMetaFunc     func(ctx context.Context, key, value string) error
	RefreshRowsFunc func(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

func (p ports) Secrets(ctx context.Context, id int64) (webhook.Hook, bool, error) {
	return p.SecretsFunc(ctx, id)
}
func (p ports) Seen(ctx context.Context, n string, at time.Time) (bool, error) {
	return p.SeenFunc(ctx, n, at)
}
func (p ports) Forget(ctx context.Context, n string) error { return p.ForgetFunc(ctx, n) }
func (p ports) PutRecords(ctx context.Context, recs []webhook.Record) error {
	return p.PutRecordsFunc(ctx, recs)
}
func (p ports) Meta(ctx context.Context, k string) (string, bool, error) { return p.MetaFunc(ctx, k) }
func (p ports) PutMeta(ctx context.Context, k, v string) error           { return p.PutMetaFunc(ctx, k, v) }
func (p ports) RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error) {
	return p.RefreshRowsFunc(ctx, sheetID, rowIDs, deletedRowIDs)
}

// noWebhooks knows no webhook: every call is answered 403 (or 400).
func noWebhooks() ports {
	return ports{SecretsFunc: func(context.Context, int64) (webhook.Hook, bool, error) { return webhook.Hook{}, false, nil }}
}

// startListener starts a listener with short timeouts on a free port.
func startListener(tb testing.TB, opts Options) *Listener {
	tb.Helper()
	p := noWebhooks()
	opts.Addr, opts.Secrets, opts.Nonces, opts.Records, opts.Meta, opts.Refresher = "127.0.0.1:0", p, p, p, p, p
	opts.Logger = slog.New(slog.DiscardHandler)
	l, err := Start(context.Background(), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = l.Close() })
	return l
}

// dial opens a connection to the listener and sends what, then stalls.
func dial(tb testing.TB, l *Listener, what string) net.Conn {
	tb.Helper()
	c, err := net.Dial("tcp", l.Addr())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = c.Close() })
	if _, err := io.WriteString(c, what); err != nil {
		tb.Fatal(err)
	}
	return c
}

// closedWithin reports whether the server closes c within d: reading it
// ends (EOF or reset, after any answer) before the client's deadline.
func closedWithin(c net.Conn, d time.Duration) (time.Duration, bool) {
	start := time.Now()
	_ = c.SetReadDeadline(start.Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), false
	}
	return time.Since(start), true
}

const slowBody = "POST " + DefaultPath + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"webhookId\":"

// TestListenerSlowClients: connections that send their headers or body
// slowly, or idle after a request, are closed within the configured
// timeouts, and connections beyond MaxConns wait until one is freed.
func TestListenerSlowClients(t *testing.T) {
	const (
		readTimeout = 400 * time.Millisecond
		idleTimeout = 400 * time.Millisecond
		slack       = 2 * time.Second // a loaded machine's scheduling delay, at most
	)
	opts := Options{ReadTimeout: readTimeout, WriteTimeout: 2 * readTimeout, IdleTimeout: idleTimeout, MaxConns: 32}

	t.Run("slow bodies and slow headers are closed after ReadTimeout", func(t *testing.T) {
		l := startListener(t, opts)
		start := time.Now()
		var conns []net.Conn
		for range 20 {
			conns = append(conns, dial(t, l, slowBody))
		}
		for range 2 {
			conns = append(conns, dial(t, l, "POST "+DefaultPath+" HTTP/1.1\r\nHost: x\r\n"))
		}
		for i, c := range conns {
			if _, ok := closedWithin(c, readTimeout+slack-time.Since(start)); !ok {
				t.Errorf("slow connection %d still open after %v, want closed within ReadTimeout %v", i, time.Since(start), readTimeout)
			}
		}
	})

	t.Run("an idle kept-alive connection is closed after IdleTimeout", func(t *testing.T) {
		l := startListener(t, opts)
		c := dial(t, l, "POST "+DefaultPath+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
		res, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if took, ok := closedWithin(c, idleTimeout+slack); !ok {
			t.Errorf("idle connection still open after %v, want closed within IdleTimeout %v", took, idleTimeout)
		}
	})

	t.Run("calls beyond MaxInFlight wait, their body unread", func(t *testing.T) {
		const inFlight = 2
		l := startListener(t, Options{ReadTimeout: time.Minute, MaxConns: 16, MaxInFlight: inFlight})
		var slow []net.Conn
		for range inFlight {
			slow = append(slow, dial(t, l, slowBody))
		}
		for deadline := time.Now().Add(slack); l.Received() < inFlight; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d slow calls reached the handler, want %d", l.Received(), inFlight)
			}
		}
		time.Sleep(50 * time.Millisecond) // both now read their bodies
		extra := dial(t, l, "POST "+DefaultPath+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
		r := bufio.NewReader(extra)
		_ = extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := r.Peek(1); err == nil {
			t.Fatalf("a call beyond MaxInFlight %d was answered while %d slow calls were being read", inFlight, inFlight)
		}
		_ = slow[0].Close() // its read fails: one call in flight fewer
		_ = extra.SetReadDeadline(time.Now().Add(slack))
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("the waiting call got no answer once a call finished: %v", err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("the waiting call was answered %d, want 400 (a body without webhookId)", res.StatusCode)
		}
	})

	t.Run("connections beyond MaxConns wait for a free one", func(t *testing.T) {
		const maxConns = 4
		// Slow calls that do not time out during the test: only the cap
		// keeps the next connection waiting.
		l := startListener(t, Options{ReadTimeout: time.Minute, MaxConns: maxConns})
		var slow []net.Conn
		for range maxConns {
			slow = append(slow, dial(t, l, slowBody))
		}
		for deadline := time.Now().Add(slack); l.Received() < maxConns; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d slow calls reached the handler, want %d", l.Received(), maxConns)
			}
		}
		extra := dial(t, l, "POST "+DefaultPath+" HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
		r := bufio.NewReader(extra)
		_ = extra.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if _, err := r.Peek(1); err == nil {
			t.Fatalf("a connection beyond MaxConns %d was answered while %d slow calls held the server", maxConns, maxConns)
		}
		_ = slow[0].Close() // frees one slot
		_ = extra.SetReadDeadline(time.Now().Add(slack))
		res, err := http.ReadResponse(r, nil)
		if err != nil {
			t.Fatalf("the waiting connection got no answer once a slot was freed: %v", err)
		}
		_ = res.Body.Close()
		if res.StatusCode != http.StatusBadRequest {
			t.Errorf("the waiting connection was answered %d, want 400 (a body without webhookId)", res.StatusCode)
		}
	})
}

// TestStartDefaults: a listener started without timeouts or a cap (as
// `billing-audit listen` starts it) gets every default, and the write
// timeout outlasts reading the largest body, so a slow but legitimate
// callback is answered.
func TestStartDefaults(t *testing.T) {
	l := startListener(t, Options{})
	type limits struct {
		ReadHeader, Read, Write, Idle time.Duration
		MaxConns, MaxInFlight         int
	}
	got := limits{l.srv.ReadHeaderTimeout, l.srv.ReadTimeout, l.srv.WriteTimeout, l.srv.IdleTimeout, l.opts.MaxConns, l.opts.MaxInFlight}
	want := limits{DefaultReadHeaderTimeout, DefaultReadTimeout, DefaultWriteTimeout, DefaultIdleTimeout, DefaultMaxConns, DefaultMaxInFlight}
	if got != want {
		t.Errorf("Start(Options{}) limits = %+v, want %+v", got, want)
	}
	if got.ReadHeader <= 0 || got.ReadHeader > got.Read || got.Write <= got.Read || got.Idle <= 0 || got.MaxInFlight <= 0 || got.MaxInFlight > got.MaxConns {
		t.Errorf("limits %+v: want 0 < ReadHeader ≤ Read < Write, Idle > 0, 0 < MaxInFlight ≤ MaxConns", got)
	}
}
