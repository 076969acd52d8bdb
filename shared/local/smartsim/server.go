// Package smartsim is an in-process simulator of the Smartsheet API 2.0: the
// endpoints the billing audit uses, with Smartsheet's JSON shapes, error bodies,
// strict typing, cell history, rate limits and scripted faults, plus a Go and an
// admin HTTP API to act as other users and to drive the clock.
//
// All writes go through one internal path (see change.go) that bumps versions,
// appends cell history and records a ChangeEvent, so webhook delivery can be
// built on the event log.
package smartsim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// DefaultUser is the identity of API tokens that have no configured user.
var DefaultUser = smartsheet.User{Name: "Billing Audit", Email: "api@billing-audit.local"}

// AutomationUser is the identity Smartsheet shows for automation workflow edits.
var AutomationUser = smartsheet.User{Name: "Automation", Email: "automation@smartsheet.com"}

// Options configure a Server. The zero value is usable.
type Options struct {
	// Tokens maps accepted bearer tokens to their users. When empty, any
	// non-empty token is accepted as DefaultUser.
	Tokens map[string]smartsheet.User
	// Clock is the time source (default time.Now). The server's own clock adds
	// the offset of AdvanceClock and can be frozen with SetClock.
	Clock func() time.Time
	// Seed makes ids and fault decisions deterministic (default 1).
	Seed uint64
	// Limits are the per-token rate limits (zero value: Smartsheet's defaults).
	Limits Limits
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
	// PermalinkBase prefixes permalinks (default https://app.smartsheet.com/b/home?lx=).
	PermalinkBase string
	// Webhooks configure callback delivery (debounce, retries, timeouts).
	Webhooks WebhookOptions
	// Latency is the simulated response time of API requests (zero value:
	// none). Its jitter is deterministic given Seed.
	Latency Latency
}

// Server is the simulator. Create it with NewServer; serve it with Listen or
// mount Handler on any listener.
type Server struct {
	opts    Options
	log     *slog.Logger
	mux     *http.ServeMux
	limits  *limiter
	faults  *faults
	latency *latencyModel
	clk     *clock

	mu sync.RWMutex
	st *state

	hookMu sync.RWMutex
	hooks  []func(ChangeEvent)

	wh *deliverer

	done     chan struct{}
	doneOnce sync.Once
	httpSrv  *http.Server
	baseURL  string
}

// NewServer returns a simulator with empty state.
func NewServer(opts Options) *Server {
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.PermalinkBase == "" {
		opts.PermalinkBase = "https://app.smartsheet.com/b/home?lx="
	}
	lg := opts.Logger
	if lg == nil {
		lg = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		opts: opts,
		log:  lg,
		clk:  &clock{base: opts.Clock},
		st:   newState(opts.Seed),
		done: make(chan struct{}),
	}
	s.limits = newLimiter(opts.Limits)
	s.faults = newFaults(opts.Seed)
	s.latency = newLatencyModel(opts.Latency, opts.Seed)
	s.routes()
	s.initWebhooks()
	return s
}

// Handler returns the HTTP handler serving /2.0/... and /admin/....
func (s *Server) Handler() http.Handler { return s.mux }

// Listen serves on addr (use "127.0.0.1:0" for a free port) in the background
// and returns the API base URL, e.g. http://127.0.0.1:PORT/2.0. Only loopback
// addresses are allowed.
func (s *Server) Listen(addr string) (string, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("smartsim listen %q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", fmt.Errorf("smartsim listen %q: only loopback addresses are allowed", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("smartsim listen %q: %w", addr, err)
	}
	s.httpSrv = &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := s.httpSrv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("smartsim serve", "err", err)
		}
	}()
	s.baseURL = "http://" + ln.Addr().String() + "/2.0"
	return s.baseURL, nil
}

// URL returns the API base URL after Listen ("" before).
func (s *Server) URL() string { return s.baseURL }

// AdminURL returns the admin base URL after Listen, e.g. http://127.0.0.1:PORT/admin.
func (s *Server) AdminURL() string { return strings.TrimSuffix(s.baseURL, "/2.0") + "/admin" }

// Close stops webhook delivery (callbacks in flight are abandoned), the
// listener, and releases requests hanging on injected timeouts.
func (s *Server) Close() error {
	s.doneOnce.Do(func() { close(s.done) })
	s.wh.stop()
	if s.httpSrv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return s.httpSrv.Shutdown(ctx)
}

// request is the per-call context handed to API handlers.
type request struct {
	w     http.ResponseWriter
	r     *http.Request
	user  smartsheet.User
	agent string
	// rows is how many rows the request carries (set by the row handlers),
	// for the per-row part of the latency.
	rows int
}

func (q *request) pathID(name string) (int64, *apiError) {
	return parseID(q.r.PathValue(name), name)
}

// edit returns the attribution of a write made by this request.
func (q *request) edit() Edit {
	return Edit{User: q.user, ChangeAgent: q.agent}
}

type apiHandler func(s *Server, q *request) (any, *apiError)

// handle registers an API route under /2.0 with its endpoint key, which names
// it for counters, faults and rate limits. Every answer waits for its latency
// (see Latency) after the handler has run and released the state lock.
func (s *Server) handle(pattern, key string, h apiHandler) {
	method, path, _ := strings.Cut(pattern, " ")
	s.mux.HandleFunc(method+" /2.0"+path, func(w http.ResponseWriter, r *http.Request) {
		s.faults.count(key)
		user, aerr := s.authenticate(r)
		if aerr != nil {
			s.refuse(w, r, aerr)
			return
		}
		if !s.limits.allow(tokenOf(r), key == EndpointCellHistory, s.clk.exact()) {
			s.faults.countLimited(key)
			s.refuse(w, r, errRateLimited())
			return
		}
		q := &request{w: w, r: r, user: user, agent: r.Header.Get("Smartsheet-Change-Agent")}
		if f, hit := s.faults.decide(key); hit {
			if f.Kind == FaultLostResponse {
				lost := *q
				lost.w = &discardWriter{}
				_, _ = h(s, &lost)
				q.rows = lost.rows
			}
			if s.wait(r, s.latency.delay(q.rows, false)) {
				s.injectFault(w, r, f)
			}
			return
		}
		out, aerr := h(s, q)
		if !s.wait(r, s.latency.delay(q.rows, false)) {
			return
		}
		if aerr != nil {
			s.writeError(w, aerr)
			return
		}
		if out != nil {
			writeJSON(w, http.StatusOK, out)
		}
	})
}

func tokenOf(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "Bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

func (s *Server) authenticate(r *http.Request) (smartsheet.User, *apiError) {
	tok := tokenOf(r)
	if tok == "" {
		return smartsheet.User{}, &apiError{status: 401, code: 1001, msg: "An Access Token is required."}
	}
	user := DefaultUser
	if len(s.opts.Tokens) > 0 {
		u, ok := s.opts.Tokens[tok]
		if !ok {
			return smartsheet.User{}, &apiError{status: 401, code: 1002, msg: "Your Access Token is invalid."}
		}
		user = u
	}
	if as := r.Header.Get("Assume-User"); as != "" {
		email := as
		if dec, err := urlUnescape(as); err == nil {
			email = dec
		}
		user = s.knownUser(email)
	}
	return user, nil
}

// knownUser returns the configured user with that email, or a user named after it.
func (s *Server) knownUser(email string) smartsheet.User {
	for _, u := range s.opts.Tokens {
		if strings.EqualFold(u.Email, email) {
			return u
		}
	}
	if strings.EqualFold(DefaultUser.Email, email) {
		return DefaultUser
	}
	return smartsheet.User{Name: email, Email: email}
}

// apiError is an error answered with Smartsheet's error body.
type apiError struct {
	status int
	code   int
	msg    string
	detail any
}

func (e *apiError) Error() string { return fmt.Sprintf("smartsim: %d %s", e.code, e.msg) }

func (e *apiError) body(refID string) smartsheet.ErrorBody {
	b := smartsheet.ErrorBody{ErrorCode: e.code, Message: e.msg, RefID: refID}
	if e.detail != nil {
		b.Detail, _ = json.Marshal(e.detail)
	}
	return b
}

func errNotFound() *apiError { return &apiError{status: 404, code: 1006, msg: "Not Found"} }

func errBadJSON(err error) *apiError {
	return &apiError{status: 400, code: 1008, msg: "Unable to parse request. The following error occurred: " + err.Error()}
}

func errBadParam(value, name string) *apiError {
	return &apiError{status: 400, code: 1018, msg: fmt.Sprintf("The value '%s' was not valid for the parameter '%s'.", value, name)}
}

func errMissing(attr string) *apiError {
	return &apiError{status: 400, code: 1012, msg: fmt.Sprintf("Required object attribute(s) are missing from your request: %s.", attr)}
}

func errRateLimited() *apiError {
	return &apiError{status: 429, code: 4003, msg: "Rate limit exceeded."}
}

func (s *Server) writeError(w http.ResponseWriter, e *apiError) {
	writeJSON(w, e.status, e.body(s.refID()))
}

func (s *Server) refID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.refID()
}

// refID returns a short error reference; callers hold the server lock.
func (st *state) refID() string {
	st.RefCounter++
	return fmt.Sprintf("%012x", (st.Seed*0x9e3779b97f4a7c15+st.RefCounter*0xbf58476d1ce4e5b9)&0xffffffffffff)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	_ = enc.Encode(v)
}

// decodeBody decodes a JSON request body into v.
func decodeBody(r *http.Request, v any) *apiError {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 32<<20))
	if err := dec.Decode(v); err != nil {
		return errBadJSON(err)
	}
	return nil
}

// success wraps a write result in Smartsheet's envelope.
func success[T any](v T, version int64) smartsheet.Result[T] {
	return smartsheet.Result[T]{Message: "SUCCESS", ResultCode: smartsheet.ResultSuccess, Result: v, Version: version}
}

func asAPIError(err error, target **apiError) bool { return errors.As(err, target) }

func (s *Server) routes() {
	s.mux = http.NewServeMux()
	s.handle("GET /sheets", EndpointListSheets, listSheets)
	s.handle("POST /sheets", EndpointCreateSheet, createSheet)
	s.handle("POST /folders/{folderId}/sheets", EndpointCreateSheetInFolder, createSheet)
	s.handle("POST /workspaces/{workspaceId}/sheets", EndpointCreateSheetInWS, createSheet)
	s.handle("GET /sheets/{sheetId}", EndpointGetSheet, getSheet)
	s.handle("GET /sheets/{sheetId}/version", EndpointGetSheetVersion, getSheetVersion)
	s.handle("GET /sheets/{sheetId}/columns", EndpointListColumns, listColumns)
	s.handle("POST /sheets/{sheetId}/columns", EndpointAddColumns, addColumns)
	s.handle("PUT /sheets/{sheetId}/columns/{columnId}", EndpointUpdateColumn, updateColumn)
	s.handle("GET /sheets/{sheetId}/summary", EndpointGetSheetSummary, getSheetSummary)
	s.handle("GET /sheets/{sheetId}/summary/fields", EndpointListSummaryFields, listSummaryFields)
	s.handle("POST /sheets/{sheetId}/summary/fields", EndpointAddSummaryFields, addSummaryFields)
	s.handle("PUT /sheets/{sheetId}/summary/fields", EndpointUpdateSummaryFields, updateSummaryFields)
	s.handle("POST /sheets/{sheetId}/rows", EndpointAddRows, s.rowsHandler(false))
	s.handle("PUT /sheets/{sheetId}/rows", EndpointUpdateRows, s.rowsHandler(true))
	s.handle("DELETE /sheets/{sheetId}/rows", EndpointDeleteRows, deleteRows)
	s.handle("GET /sheets/{sheetId}/rows/{rowId}", EndpointGetRow, getRow)
	s.handle("GET /sheets/{sheetId}/rows/{rowId}/columns/{columnId}/history", EndpointCellHistory, cellHistory)
	s.handle("POST /sheets/{sheetId}/attachments", EndpointAttachFile, attachHandler(false))
	s.handle("GET /sheets/{sheetId}/attachments", EndpointListAttachments, listAttachments(false))
	s.handle("POST /sheets/{sheetId}/rows/{rowId}/attachments", EndpointAttachFileToRow, attachHandler(true))
	s.handle("GET /sheets/{sheetId}/rows/{rowId}/attachments", EndpointListRowAttachments, listAttachments(true))
	s.handle("GET /sheets/{sheetId}/attachments/{attachmentId}", EndpointGetAttachment, getAttachment)
	s.handle("POST /sheets/{sheetId}/attachments/{attachmentId}/versions", EndpointAttachNewVersion, attachNewVersion)
	s.handle("GET /sheets/{sheetId}/attachments/{attachmentId}/versions", EndpointListVersions, listVersions)
	s.handle("GET /folders/{folderId}", EndpointGetFolder, getFolder)
	s.handle("GET /workspaces", EndpointListWorkspaces, listWorkspaces)
	s.handle("GET /workspaces/{workspaceId}", EndpointGetWorkspace, getWorkspace)
	s.handle("POST /webhooks", EndpointCreateWebhook, createWebhook)
	s.handle("GET /webhooks", EndpointListWebhooks, listWebhooks)
	s.handle("GET /webhooks/{webhookId}", EndpointGetWebhook, getWebhook)
	s.handle("PUT /webhooks/{webhookId}", EndpointUpdateWebhook, updateWebhook)
	s.handle("DELETE /webhooks/{webhookId}", EndpointDeleteWebhook, deleteWebhook)
	s.handle("POST /webhooks/{webhookId}/resetSharedSecret", EndpointResetSharedSecret, resetSharedSecret)
	s.handle("GET /users/me", EndpointGetCurrentUser, getCurrentUser)
	s.handle("GET /users/{userId}", EndpointGetUser, getUser)
	s.handle("GET /users", EndpointListUsers, listUsers)
	s.handle("GET /serverinfo", EndpointServerInfo, serverInfo)
	s.mux.HandleFunc("GET /files/{attachmentId}", s.serveFile)
	s.mux.HandleFunc("/2.0/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, &apiError{status: 404, code: 1006, msg: "Not Found"})
	})
	s.adminRoutes()
}
