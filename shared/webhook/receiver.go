// Package webhook is the receiving end of Smartsheet webhooks: it answers
// verification challenges, authenticates callbacks (HMAC-SHA256 with the
// webhook's shared secret, constant-time compare, replay and freshness
// checks), keeps the events that matter for attribution and hands them to a
// Sink. It also attributes detected changes from the records stored from
// those events (see [NewAttributor]).
//
// The package is transport-neutral: [Receiver.Handle] takes a [Request] and
// returns a [Response], so the webhook Lambda and a local net/http server
// share it. It makes no network calls itself; everything it needs comes
// through its ports ([Secrets], [Nonces], [Sink]).
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/textproto"
	"strings"
	"time"
)

// Header names of the Smartsheet webhook protocol.
const (
	HeaderChallenge = "Smartsheet-Hook-Challenge"
	HeaderResponse  = "Smartsheet-Hook-Response"
	HeaderSignature = "Smartsheet-Hmac-SHA256"
)

// Defaults of [Receiver].
const (
	DefaultMaxBody = 1 << 20
	DefaultMaxSkew = 15 * time.Minute
)

// MaxNonce bounds a callback's nonce in bytes. Smartsheet's nonces are UUIDs
// (36 bytes); the bound keeps a forged one from reaching the nonce store,
// whose keys are limited (DynamoDB: 2048 bytes, "key too large" → 500, which
// Smartsheet would retry).
const MaxNonce = 128

// Request is an incoming webhook call: its headers (looked up without regard
// to case) and its raw body, exactly as received (the signature covers it).
type Request struct {
	Headers map[string]string
	Body    []byte
}

// Header returns the value of the header name, matched case-insensitively.
func (r Request) Header(name string) string {
	if v, ok := r.Headers[name]; ok {
		return v
	}
	if v, ok := r.Headers[textproto.CanonicalMIMEHeaderKey(name)]; ok {
		return v
	}
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Response is the answer to a webhook call.
type Response struct {
	Status  int
	Headers map[string]string
	Body    []byte
}

// Secrets tells what we know of the webhooks we registered (see [Hook]).
// ok=false means the webhook is not ours.
type Secrets interface {
	Secrets(ctx context.Context, webhookID int64) (hook Hook, ok bool, err error)
}

// Hook is what the receiver knows of one of our webhooks.
type Hook struct {
	// Secrets are its shared secrets valid now: the current one first and,
	// during a rotation, the previous one.
	Secrets []string
	// SheetID is the sheet it was registered for: its callbacks must name it
	// as their scopeObjectId. 0 when not recorded (see [SecretSet.SheetID]):
	// not checked.
	SheetID int64
}

// Nonces remembers the nonces of accepted callbacks, so a replayed or
// redelivered callback is processed once. Seen atomically checks and records
// a nonce; records must live longer than twice the receiver's MaxSkew (a
// callback dated MaxSkew ahead is fresh until MaxSkew after its date; older
// callbacks are rejected by their timestamp). Forget removes a nonce recorded
// by Seen when the callback could not be processed after all (the Sink
// failed), so Smartsheet's retry of it is processed instead of being taken
// for a replay.
type Nonces interface {
	Seen(ctx context.Context, nonce string, at time.Time) (alreadySeen bool, err error)
	Forget(ctx context.Context, nonce string) error
}

// Sink takes authenticated callbacks: it stores attribution records and
// enqueues the rows for a refresh. It must be fast (Smartsheet waits for the
// answer and sends one callback at a time) and idempotent.
type Sink interface {
	Accept(ctx context.Context, cb Callback) error
}

// Event is one kept event of a callback.
type Event struct {
	ObjectType  string    `json:"objectType"` // cell or row
	EventType   string    `json:"eventType"`  // created, updated or deleted
	RowID       int64     `json:"rowId"`
	ColumnID    int64     `json:"columnId,omitempty"` // 0 for row events
	UserID      int64     `json:"userId"`
	Time        time.Time `json:"time"`
	ChangeAgent string    `json:"changeAgent,omitempty"`
}

// Callback is an authenticated callback reduced to what the audit needs.
type Callback struct {
	WebhookID int64     `json:"webhookId"`
	SheetID   int64     `json:"sheetId"`
	Nonce     string    `json:"nonce"`
	Time      time.Time `json:"time"`
	Events    []Event   `json:"events,omitempty"`
	// NewStatus is set by a status-change callback (the webhook was disabled
	// or re-enabled by Smartsheet): raise an alert.
	NewStatus string `json:"newStatus,omitempty"`
}

// Receiver handles webhook calls. Secrets, Nonces and Sink are required;
// the other fields have defaults.
type Receiver struct {
	Secrets Secrets
	Nonces  Nonces
	Sink    Sink

	// MaxBody bounds the body (default [DefaultMaxBody]); larger → 413.
	MaxBody int
	// MaxSkew bounds how far a callback's timestamp may be from Clock, in
	// either direction (default [DefaultMaxSkew]); at or beyond → 400,
	// nothing recorded.
	MaxSkew time.Duration
	// OwnChangeAgent is the Smartsheet-Change-Agent our own writes send;
	// events carrying it (as one of the comma-separated agents) are dropped.
	OwnChangeAgent string
	// Columns, when set, returns the tracked columns of a sheet; cell events
	// in other columns are dropped. A nil map keeps every column.
	Columns func(sheetID int64) map[int64]bool
	// Clock is the time source (default time.Now).
	Clock func() time.Time
	// Logger receives one line per rejected or failed call (default: discard).
	// Bodies and secrets are never logged.
	Logger *slog.Logger
}

// outcome is what Handle decided; each maps to one status and generic body.
type outcome int

const (
	outOK outcome = iota
	outDuplicate
	outBadRequest
	outUnauthorized
	outForbidden
	outTooLarge
	outInternal
)

// The HTTP statuses the receiver answers with. They are spelled here, not
// taken from net/http: the webhook rules are domain code, free of any
// transport, and every adapter (the Lambda's API event, net/http for
// `billing-audit listen`) writes Response as it is.
const (
	statusOK           = 200
	statusBadRequest   = 400
	statusUnauthorized = 401
	statusForbidden    = 403
	statusTooLarge     = 413
	statusInternal     = 500
)

// outcomes is the single table from outcome to HTTP status and body. Bodies
// are generic: no internal detail reaches the caller.
var outcomes = map[outcome]struct {
	status int
	body   string
}{
	outOK:           {statusOK, `{"status":"ok"}`},
	outDuplicate:    {statusOK, `{"status":"duplicate"}`},
	outBadRequest:   {statusBadRequest, `{"error":"bad request"}`},
	outUnauthorized: {statusUnauthorized, `{"error":"unauthorized"}`},
	outForbidden:    {statusForbidden, `{"error":"forbidden"}`},
	outTooLarge:     {statusTooLarge, `{"error":"request too large"}`},
	outInternal:     {statusInternal, `{"error":"internal error"}`},
}

func answer(o outcome) Response {
	a := outcomes[o]
	return Response{Status: a.status, Headers: map[string]string{"Content-Type": "application/json"}, Body: []byte(a.body)}
}

func (r *Receiver) maxBody() int {
	if r.MaxBody > 0 {
		return r.MaxBody
	}
	return DefaultMaxBody
}

func (r *Receiver) maxSkew() time.Duration {
	if r.MaxSkew > 0 {
		return r.MaxSkew
	}
	return DefaultMaxSkew
}

func (r *Receiver) now() time.Time {
	if r.Clock != nil {
		return r.Clock().UTC()
	}
	return time.Now().UTC()
}

func (r *Receiver) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return discard
}

var discard = slog.New(slog.DiscardHandler)

// Handle answers one webhook call:
//
//   - body over MaxBody → 413; not a JSON object → 400;
//   - a verification challenge (header Smartsheet-Hook-Challenge and/or body
//     {"challenge","webhookId"}) → 200 echoing the value in the
//     Smartsheet-Hook-Response header and in {"smartsheetHookResponse"}, only
//     for a webhook Secrets knows, else 403;
//   - a callback's nonce over MaxNonce bytes → 400, before any port is asked;
//   - any other call must name a webhook Secrets knows (else 403), carry a
//     valid Smartsheet-Hmac-SHA256 for one of its secrets (else 401) and
//     name the webhook's sheet as its scopeObjectId (else 403; unchecked
//     while the sheet is not recorded);
//   - a timestamp not strictly within MaxSkew of now, or no nonce → 400;
//   - an already accepted nonce → 200, not processed again;
//   - otherwise the kept events (and any newWebhookStatus) go to the Sink
//     → 200, or 500 if the Sink fails (Smartsheet retries).
//
// Nothing is recorded for a rejected call. Handle calls only its ports.
func (r *Receiver) Handle(ctx context.Context, req Request) Response {
	lg := r.log()
	if len(req.Body) > r.maxBody() {
		lg.WarnContext(ctx, "webhook: body too large", "bytes", len(req.Body))
		return answer(outTooLarge)
	}
	var cb callbackBody
	if err := json.Unmarshal(req.Body, &cb); err != nil || !isObject(req.Body) {
		lg.WarnContext(ctx, "webhook: malformed body", "bytes", len(req.Body))
		return answer(outBadRequest)
	}
	if hc := req.Header(HeaderChallenge); hc != "" || cb.Challenge != "" {
		return r.challenge(ctx, hc, cb)
	}
	if cb.WebhookID == 0 {
		lg.WarnContext(ctx, "webhook: callback without webhookId")
		return answer(outBadRequest)
	}
	lg = lg.With("webhookId", cb.WebhookID)
	if len(cb.Nonce) > MaxNonce {
		// Checked before any port: no Smartsheet nonce is this long, and the
		// nonce store would fail on it (500, retried).
		lg.WarnContext(ctx, "webhook: nonce too long", "bytes", len(cb.Nonce))
		return answer(outBadRequest)
	}
	hook, ok, err := r.Secrets.Secrets(ctx, cb.WebhookID)
	if err != nil {
		lg.ErrorContext(ctx, "webhook: load secrets", "err", err)
		return answer(outInternal)
	}
	if !ok {
		lg.WarnContext(ctx, "webhook: callback for an unknown webhook")
		return answer(outForbidden)
	}
	if !Verify(req.Body, req.Header(HeaderSignature), hook.Secrets) {
		lg.WarnContext(ctx, "webhook: bad signature")
		return answer(outUnauthorized)
	}
	if hook.SheetID != 0 && cb.ScopeObjectID != hook.SheetID {
		// Signed, but for a sheet this webhook does not watch: 403 like a
		// webhook that is not ours (the caller is known, the sheet is not
		// its to speak for), not 400 (the body is well formed). Checked
		// after the signature, so unsigned calls learn nothing of the sheet.
		lg.WarnContext(ctx, "webhook: callback for another sheet", "sheetId", hook.SheetID, "scopeObjectId", cb.ScopeObjectID)
		return answer(outForbidden)
	}
	if hook.SheetID == 0 {
		lg.InfoContext(ctx, "webhook: its sheet is not recorded yet (the next scan records it); scopeObjectId not checked")
	}
	now := r.now()
	if !fresh(cb.Timestamp, now, r.maxSkew()) {
		lg.WarnContext(ctx, "webhook: stale or future timestamp", "timestamp", cb.Timestamp, "now", now)
		return answer(outBadRequest)
	}
	if cb.Nonce == "" {
		lg.WarnContext(ctx, "webhook: callback without nonce")
		return answer(outBadRequest)
	}
	seen, err := r.Nonces.Seen(ctx, cb.Nonce, now)
	if err != nil {
		lg.ErrorContext(ctx, "webhook: record nonce", "err", err)
		return answer(outInternal)
	}
	if seen {
		lg.InfoContext(ctx, "webhook: duplicate callback ignored", "nonce", cb.Nonce)
		return answer(outDuplicate)
	}
	out := r.reduce(cb)
	if out.NewStatus != "" {
		lg.WarnContext(ctx, "webhook: status changed", "sheetId", out.SheetID, "newStatus", out.NewStatus)
	}
	if len(out.Events) == 0 && out.NewStatus == "" {
		lg.DebugContext(ctx, "webhook: nothing to keep", "events", len(cb.Events))
		return answer(outOK)
	}
	if err := r.Sink.Accept(ctx, out); err != nil {
		if ferr := r.Nonces.Forget(ctx, cb.Nonce); ferr != nil {
			err = errors.Join(err, ferr)
		}
		lg.ErrorContext(ctx, "webhook: sink", "err", err, "events", len(out.Events))
		return answer(outInternal)
	}
	lg.DebugContext(ctx, "webhook: accepted", "sheetId", out.SheetID, "events", len(out.Events), "kept", len(out.Events))
	return answer(outOK)
}

// challenge answers a verification request for a webhook we registered.
func (r *Receiver) challenge(ctx context.Context, header string, cb callbackBody) Response {
	lg := r.log().With("webhookId", cb.WebhookID)
	value := header
	if value == "" {
		value = cb.Challenge
	}
	if cb.Challenge != "" && header != "" && cb.Challenge != header {
		lg.WarnContext(ctx, "webhook: challenge header and body differ")
		return answer(outBadRequest)
	}
	if cb.WebhookID == 0 {
		lg.WarnContext(ctx, "webhook: challenge without webhookId")
		return answer(outForbidden)
	}
	_, ok, err := r.Secrets.Secrets(ctx, cb.WebhookID)
	if err != nil {
		lg.ErrorContext(ctx, "webhook: load secrets", "err", err)
		return answer(outInternal)
	}
	if !ok {
		lg.WarnContext(ctx, "webhook: challenge for an unknown webhook")
		return answer(outForbidden)
	}
	body, err := json.Marshal(map[string]string{"smartsheetHookResponse": value})
	if err != nil {
		return answer(outInternal)
	}
	lg.InfoContext(ctx, "webhook: challenge answered")
	return Response{Status: statusOK, Body: body, Headers: map[string]string{
		"Content-Type": "application/json", HeaderResponse: value,
	}}
}

// callbackBody is the body Smartsheet posts to a webhook's callback URL (the
// OpenAPI spec's WebhookCallback), decoded here rather than with the
// Smartsheet client's types so the rules depend on no client.
type callbackBody struct {
	Nonce            string      `json:"nonce,omitempty"`
	Timestamp        time.Time   `json:"timestamp"`
	WebhookID        int64       `json:"webhookId"`
	Scope            string      `json:"scope,omitempty"`
	ScopeObjectID    int64       `json:"scopeObjectId,omitempty"`
	Events           []eventBody `json:"events,omitempty"`
	NewWebhookStatus string      `json:"newWebhookStatus,omitempty"`
	Challenge        string      `json:"challenge,omitempty"`
}

// eventBody is one event of a callback.
type eventBody struct {
	ObjectType  string    `json:"objectType"`
	EventType   string    `json:"eventType"`
	ID          int64     `json:"id,omitempty"`
	RowID       int64     `json:"rowId,omitempty"`
	ColumnID    int64     `json:"columnId,omitempty"`
	UserID      int64     `json:"userId,omitempty"`
	Timestamp   time.Time `json:"timestamp"`
	ChangeAgent string    `json:"changeAgent,omitempty"`
}

// reduce keeps the events the audit uses: cell events, and row created or
// deleted; minus our own writes and untracked columns.
func (r *Receiver) reduce(cb callbackBody) Callback {
	out := Callback{WebhookID: cb.WebhookID, SheetID: cb.ScopeObjectID, Nonce: cb.Nonce,
		Time: cb.Timestamp.UTC(), NewStatus: cb.NewWebhookStatus}
	var cols map[int64]bool
	if r.Columns != nil {
		cols = r.Columns(cb.ScopeObjectID)
	}
	for _, e := range cb.Events {
		switch {
		case e.ObjectType == "cell":
			if e.RowID == 0 || e.ColumnID == 0 || (cols != nil && !cols[e.ColumnID]) {
				continue
			}
		case e.ObjectType == "row" && (e.EventType == "created" || e.EventType == "deleted"):
			if e.RowID == 0 {
				e.RowID = e.ID
			}
			if e.RowID == 0 {
				continue
			}
			e.ColumnID = 0
		default:
			continue
		}
		if hasAgent(e.ChangeAgent, r.OwnChangeAgent) {
			continue
		}
		out.Events = append(out.Events, Event{ObjectType: e.ObjectType, EventType: e.EventType,
			RowID: e.RowID, ColumnID: e.ColumnID, UserID: e.UserID, Time: e.Timestamp.UTC(), ChangeAgent: e.ChangeAgent})
	}
	return out
}

// hasAgent reports whether own is one of the comma-separated agents.
func hasAgent(agents, own string) bool {
	if own == "" || agents == "" {
		return false
	}
	for a := range strings.SplitSeq(agents, ",") {
		if strings.TrimSpace(a) == own {
			return true
		}
	}
	return false
}

// Sign returns the Smartsheet-Hmac-SHA256 of body: hex HMAC-SHA256 keyed
// with secret.
func Sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether signature (hex, any case) is the HMAC-SHA256 of
// body under one of secrets, comparing in constant time.
func Verify(body []byte, signature string, secrets []string) bool {
	got, err := hex.DecodeString(strings.TrimSpace(signature))
	if err != nil || len(got) != sha256.Size {
		return false
	}
	ok := false
	for _, s := range secrets {
		if s == "" {
			continue
		}
		m := hmac.New(sha256.New, []byte(s))
		m.Write(body)
		if hmac.Equal(m.Sum(nil), got) {
			ok = true
		}
	}
	return ok
}

func isObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// fresh reports whether a callback stamped ts may be taken at now: ts lies
// strictly between now-skew and now+skew. The bounds are compared as times,
// never as the Duration now.Sub(ts): that saturates for a timestamp ~292
// years away, so a callback dated 2400 or 9999 would pass and, once its
// nonce expired, could be replayed for ever.
func fresh(ts, now time.Time, skew time.Duration) bool {
	return ts.After(now.Add(-skew)) && ts.Before(now.Add(skew))
}

// SinkFunc adapts a function to [Sink].
type SinkFunc func(ctx context.Context, cb Callback) error

// Accept calls f.
func (f SinkFunc) Accept(ctx context.Context, cb Callback) error { return f(ctx, cb) }
