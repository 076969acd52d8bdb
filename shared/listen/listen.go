// Package listen is the local counterpart of the webhook Lambda and the
// analyze function's refresh path: an HTTP server (net/http) that hands
// Smartsheet webhook calls to webhook.Receiver, with a Sink that stores the
// attribution records and queues refreshes to an in-process worker, which
// runs the targeted refresh (pipeline.Runner.RefreshRows) of each sheet's
// rows, debounced briefly per sheet. `billing-audit listen` runs it with the
// bolt store; the end-to-end tests start it the same way.
package listen

import (
	"cmp"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"golang.org/x/net/netutil"
)

// Defaults of Options. The timeouts and the connection cap keep slow or
// idle clients from holding the server: a callback is at most
// webhook.DefaultMaxBody (1 MB) and Smartsheet sends one at a time per
// webhook, so 10 s to read one is ample. The connection cap bounds the file
// descriptors a flood can take: it is well above what Smartsheet needs, as
// every slot a slow client holds is one Smartsheet's callbacks wait behind
// (a cap of 64 let 64 slow clients, reconnecting every 5 s, hold them all),
// and an idle kept-alive connection frees its slot after 15 s. The bodies
// are bounded apart: at most DefaultMaxInFlight calls are read and handled
// at once (a body is held whole, up to 1 MB), so 512 connections cannot
// hold 512 MB.
const (
	DefaultAddr              = "127.0.0.1:8090"
	DefaultPath              = "/webhooks/smartsheet"
	DefaultDebounce          = 50 * time.Millisecond
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 10 * time.Second
	DefaultWriteTimeout      = 20 * time.Second
	DefaultIdleTimeout       = 15 * time.Second
	DefaultMaxConns          = 512
	DefaultMaxInFlight       = 64
)

// Refresher runs a targeted refresh (pipeline.Runner).
type Refresher interface {
	RefreshRows(ctx context.Context, sheetID int64, rowIDs, deletedRowIDs []int64) ([]audit.Change, error)
}

// Options configure a Listener. Secrets, Nonces, Records, Meta and
// Refresher are required.
type Options struct {
	// Addr is where to listen (default DefaultAddr; port 0 picks one).
	Addr string
	// Path is the callback path (default DefaultPath).
	Path string

	Secrets   webhook.Secrets
	Nonces    webhook.Nonces
	Records   pipeline.WebhookRecords
	Meta      pipeline.MetaStore
	Refresher Refresher

	// OwnChangeAgent: events of our own writes are dropped.
	OwnChangeAgent string
	// Debounce is how long refreshes of a sheet are merged before one runs
	// (default DefaultDebounce).
	Debounce time.Duration
	// Clock is the receiver's time source, for the freshness check (default
	// time.Now).
	Clock func() time.Time
	// Logger (default slog.Default()).
	Logger *slog.Logger
	// OnRefresh, when set, is told the outcome of each refresh.
	OnRefresh func(f pipeline.Refresh, changes []audit.Change, err error)

	// ReadTimeout bounds reading a whole request, headers and body (default
	// DefaultReadTimeout); the headers alone get at most DefaultReadHeaderTimeout.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from the end of its headers to the end
	// of its answer (default DefaultWriteTimeout); it includes reading the
	// body, so keep it above ReadTimeout.
	WriteTimeout time.Duration
	// IdleTimeout bounds a kept-alive connection between requests (default
	// DefaultIdleTimeout).
	IdleTimeout time.Duration
	// MaxConns caps the connections served at once (default
	// DefaultMaxConns); further ones wait in the listen backlog.
	MaxConns int
	// MaxInFlight caps the calls whose body is read and handled at once
	// (default DefaultMaxInFlight); further ones wait, their body unread.
	MaxInFlight int
}

// Listener is a running local webhook receiver with its refresh worker.
type Listener struct {
	opts     Options
	srv      *http.Server
	ln       net.Listener
	worker   *worker
	cancel   context.CancelFunc
	wg       sync.WaitGroup
	received atomic.Int64
	close    sync.Once
	closeErr error
}

// Start listens on opts.Addr and serves until Close or ctx ends.
func Start(ctx context.Context, opts Options) (*Listener, error) {
	if opts.Secrets == nil || opts.Nonces == nil || opts.Records == nil || opts.Meta == nil || opts.Refresher == nil {
		return nil, errors.New("listen: Secrets, Nonces, Records, Meta and Refresher are required")
	}
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if opts.Path == "" {
		opts.Path = DefaultPath
	}
	if opts.Debounce <= 0 {
		opts.Debounce = DefaultDebounce
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	opts.ReadTimeout = cmp.Or(max(opts.ReadTimeout, 0), DefaultReadTimeout)
	opts.WriteTimeout = cmp.Or(max(opts.WriteTimeout, 0), DefaultWriteTimeout)
	opts.IdleTimeout = cmp.Or(max(opts.IdleTimeout, 0), DefaultIdleTimeout)
	opts.MaxConns = cmp.Or(max(opts.MaxConns, 0), DefaultMaxConns)
	opts.MaxInFlight = cmp.Or(max(opts.MaxInFlight, 0), DefaultMaxInFlight)
	ln, err := net.Listen("tcp", opts.Addr)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	l := &Listener{opts: opts, ln: ln, cancel: cancel}
	l.worker = newWorker(opts)
	rcv := &webhook.Receiver{
		Secrets: opts.Secrets, Nonces: opts.Nonces, OwnChangeAgent: opts.OwnChangeAgent, Clock: opts.Clock, Logger: opts.Logger,
		Sink: &pipeline.WebhookSink{Records: opts.Records, Queue: l.worker, Meta: opts.Meta, Logger: opts.Logger},
	}
	mux := http.NewServeMux()
	h := Handler(rcv)
	inFlight := make(chan struct{}, opts.MaxInFlight)
	mux.Handle("POST "+opts.Path, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.received.Add(1)
		select {
		case inFlight <- struct{}{}:
		case <-r.Context().Done(): // the client left, or ReadTimeout closed it
			return
		}
		defer func() { <-inFlight }()
		h.ServeHTTP(w, r)
	}))
	// ReadTimeout covers the body too (ReadHeaderTimeout alone let 200
	// slow-body connections stay open for 20 s), and the connection cap
	// bounds what slow clients can hold at once: the rest wait in the
	// listen backlog until one is freed.
	l.srv = &http.Server{Handler: mux,
		ReadHeaderTimeout: min(DefaultReadHeaderTimeout, opts.ReadTimeout), ReadTimeout: opts.ReadTimeout,
		WriteTimeout: opts.WriteTimeout, IdleTimeout: opts.IdleTimeout,
		ErrorLog:    slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
		BaseContext: func(net.Listener) context.Context { return ctx }}
	l.wg.Add(2)
	go func() {
		defer l.wg.Done()
		if err := l.srv.Serve(netutil.LimitListener(ln, opts.MaxConns)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			opts.Logger.ErrorContext(ctx, "webhook listener stopped", "error", err)
		}
	}()
	go func() {
		defer l.wg.Done()
		l.worker.run(ctx)
	}()
	go func() {
		<-ctx.Done()
		_ = l.srv.Close()
	}()
	return l, nil
}

// URL is the callback URL of the listener: http://<addr><path>.
func (l *Listener) URL() string { return "http://" + l.ln.Addr().String() + l.opts.Path }

// Addr is the address the listener is bound to.
func (l *Listener) Addr() string { return l.ln.Addr().String() }

// Received counts the calls received so far.
func (l *Listener) Received() int64 { return l.received.Load() }

// Refreshes counts the refreshes run so far.
func (l *Listener) Refreshes() int64 { return l.worker.done.Load() }

// Close stops serving (calls in flight finish first, for a few seconds at
// most) and stops the worker; refreshes not yet run are dropped (their
// records are stored: the next scan attributes those changes).
func (l *Listener) Close() error {
	l.close.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		l.closeErr = l.srv.Shutdown(ctx)
		l.cancel()
		l.wg.Wait()
	})
	return l.closeErr
}

// Handler adapts net/http to the receiver: the raw body (bounded) and the
// headers in, the receiver's answer out.
func Handler(rcv *webhook.Receiver) http.Handler {
	limit := rcv.MaxBody
	if limit <= 0 {
		limit = webhook.DefaultMaxBody
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, int64(limit)+1))
		if err != nil {
			http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
			return
		}
		headers := make(map[string]string, len(r.Header))
		for k := range r.Header {
			headers[k] = r.Header.Get(k)
		}
		res := rcv.Handle(r.Context(), webhook.Request{Headers: headers, Body: body})
		for k, v := range res.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(res.Status)
		_, _ = w.Write(res.Body)
	})
}

// worker runs refreshes one at a time, merging those of a sheet that arrive
// within the debounce.
type worker struct {
	opts Options
	wake chan struct{}
	done atomic.Int64

	mu      sync.Mutex
	pending map[int64]*pendingRefresh
}

type pendingRefresh struct {
	f   pipeline.Refresh
	due time.Time
}

var _ pipeline.RefreshQueue = (*worker)(nil)

func newWorker(opts Options) *worker {
	return &worker{opts: opts, wake: make(chan struct{}, 1), pending: map[int64]*pendingRefresh{}}
}

// SendRefresh queues a refresh (pipeline.RefreshQueue).
func (w *worker) SendRefresh(_ context.Context, f pipeline.Refresh) error {
	w.mu.Lock()
	if p := w.pending[f.SheetID]; p != nil {
		p.f.Merge(f)
	} else {
		w.pending[f.SheetID] = &pendingRefresh{f: f, due: time.Now().Add(w.opts.Debounce)}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	return nil
}

// next takes the refreshes due now, or says how long until the first is.
func (w *worker) next() ([]pipeline.Refresh, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	var due []pipeline.Refresh
	wait := time.Duration(-1)
	now := time.Now()
	for id, p := range w.pending {
		if d := p.due.Sub(now); d > 0 {
			if wait < 0 || d < wait {
				wait = d
			}
			continue
		}
		due = append(due, p.f)
		delete(w.pending, id)
	}
	return due, wait
}

func (w *worker) run(ctx context.Context) {
	for {
		due, wait := w.next()
		for _, f := range due {
			changes, err := w.opts.Refresher.RefreshRows(ctx, f.SheetID, f.RowIDs, f.DeletedRowIDs)
			w.done.Add(1)
			if err != nil && ctx.Err() == nil {
				w.opts.Logger.ErrorContext(ctx, "webhook refresh failed; the next scan finds these changes",
					"sheet", f.SheetID, "rows", len(f.RowIDs), "deleted", len(f.DeletedRowIDs), "error", err)
			} else if err == nil {
				w.opts.Logger.InfoContext(ctx, "webhook refresh", "sheet", f.SheetID, "rows", len(f.RowIDs),
					"deleted", len(f.DeletedRowIDs), "changes", len(changes))
			}
			if w.opts.OnRefresh != nil {
				w.opts.OnRefresh(f, changes, err)
			}
		}
		if len(due) > 0 {
			continue
		}
		if wait < 0 {
			wait = time.Hour // nothing pending: until woken
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-w.wake:
		case <-t.C:
		}
		t.Stop()
	}
}
