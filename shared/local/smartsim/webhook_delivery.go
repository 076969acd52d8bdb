package smartsim

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// WebhookOptions configure webhook callback delivery. The zero value is
// usable: short delays fit for tests and local runs.
type WebhookOptions struct {
	// Debounce is how long events of a webhook are aggregated, counted from
	// the first pending event, before one callback carries them all
	// (default 1s; Smartsheet's commercial plans: about one minute).
	Debounce time.Duration
	// Delay holds each callback this long after its debounce, as a
	// Smartsheet callback may arrive up to a minute after the edit (default
	// none). Tests use it, with [Server.SetWebhookDelay], to let a scan run
	// between an edit and its callback.
	Delay time.Duration
	// RetryDelays is the back-off schedule after a failed callback: one
	// retry per entry, then the webhook is DISABLED_CALLBACK_FAILED
	// (default: 14 retries, 50ms doubling up to 1s; Smartsheet retries 14
	// times over hours).
	RetryDelays []time.Duration
	// Timeout bounds each callback and verification request (default 2s).
	Timeout time.Duration
	// VerifyEvery is how many callbacks pass between two verification
	// challenges (default 100, as Smartsheet).
	VerifyEvery int
}

func (o WebhookOptions) withDefaults() WebhookOptions {
	if o.Debounce <= 0 {
		o.Debounce = time.Second
	}
	if o.RetryDelays == nil {
		d := 50 * time.Millisecond
		for range 14 {
			o.RetryDelays = append(o.RetryDelays, d)
			d = min(2*d, time.Second)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.VerifyEvery <= 0 {
		o.VerifyEvery = 100
	}
	return o
}

// Webhook protocol headers.
const (
	headerChallenge = "Smartsheet-Hook-Challenge"
	headerResponse  = "Smartsheet-Hook-Response"
	headerSignature = "Smartsheet-Hmac-SHA256"
)

// WebhookStats counts the deliveries of one webhook.
type WebhookStats struct {
	// Callbacks is the number of event callbacks answered 2xx.
	Callbacks int64 `json:"callbacks"`
	// Failures is the number of failed callback attempts (retries included).
	Failures int64 `json:"failures"`
	// Verifications is the number of verification challenges sent.
	Verifications int64 `json:"verifications"`
	// StatusCallbacks is the number of newWebhookStatus callbacks sent.
	StatusCallbacks int64 `json:"statusCallbacks"`
}

// wireEvent is a webhook event as Smartsheet sends it (timestamps with
// milliseconds and +00:00).
type wireEvent struct {
	ObjectType  string `json:"objectType"`
	EventType   string `json:"eventType"`
	ID          int64  `json:"id,omitempty"`
	RowID       int64  `json:"rowId,omitempty"`
	ColumnID    int64  `json:"columnId,omitempty"`
	UserID      int64  `json:"userId"`
	Timestamp   string `json:"timestamp"`
	ChangeAgent string `json:"changeAgent,omitempty"`
}

// wireCallback is the body of a callback.
type wireCallback struct {
	Nonce            string      `json:"nonce"`
	Timestamp        string      `json:"timestamp"`
	WebhookID        int64       `json:"webhookId"`
	Scope            string      `json:"scope"`
	ScopeObjectID    int64       `json:"scopeObjectId"`
	Events           []wireEvent `json:"events,omitempty"`
	NewWebhookStatus string      `json:"newWebhookStatus,omitempty"`
}

const wireTime = "2006-01-02T15:04:05.000+00:00"

// hookQueue is the delivery state of one webhook.
type hookQueue struct {
	events      []wireEvent
	first       time.Time // real time of the first pending event
	statuses    []string  // status callbacks to send
	running     bool      // a worker owns the queue
	stats       WebhookStats
	sinceVerify int
}

// deliverer sends the callbacks of all webhooks: one worker goroutine per
// webhook with pending work, so callbacks of a webhook go one at a time.
type deliverer struct {
	s      *Server
	opts   WebhookOptions
	client *http.Client
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	queues map[int64]*hookQueue
	users  map[int64]smartsheet.User
	delay  time.Duration // opts.Delay, changed by SetWebhookDelay
	// delayChanged is closed (and replaced) when delay changes, waking the
	// workers that wait on the old one.
	delayChanged chan struct{}
}

func newDeliverer(s *Server, opts WebhookOptions) *deliverer {
	ctx, cancel := context.WithCancel(context.Background())
	d := &deliverer{s: s, opts: opts.withDefaults(), ctx: ctx, cancel: cancel,
		queues: map[int64]*hookQueue{}, users: map[int64]smartsheet.User{},
		delay: max(opts.Delay, 0), delayChanged: make(chan struct{})}
	dialer := &net.Dialer{Timeout: d.opts.Timeout, Control: loopbackOnly}
	d.client = &http.Client{
		Timeout:   d.opts.Timeout,
		Transport: &http.Transport{DialContext: dialer.DialContext, Proxy: nil, MaxIdleConnsPerHost: 4},
		// A redirect is an answer like any other non-2xx one.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	for _, u := range append([]smartsheet.User{DefaultUser, AutomationUser}, mapValues(s.opts.Tokens)...) {
		d.users[userID(u.Email)] = u
	}
	return d
}

func mapValues[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// initWebhooks starts delivery: every committed change is offered to the
// webhooks of its sheet.
func (s *Server) initWebhooks() {
	s.wh = newDeliverer(s, s.opts.Webhooks)
	s.OnChange(s.wh.offer)
}

// stop cancels deliveries in flight and waits for the workers.
func (d *deliverer) stop() {
	d.cancel()
	d.wg.Wait()
	d.client.CloseIdleConnections()
}

// errNotLoopback refuses callback connections to anything but loopback.
var errNotLoopback = errors.New("smartsim: callbacks go only to loopback addresses")

func loopbackOnly(_, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return errNotLoopback
	}
	return nil
}

// loopbackURL reports whether a callback URL names a loopback host.
func loopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	host := u.Hostname()
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// offer queues an event for every enabled webhook of its sheet that wants it.
func (d *deliverer) offer(ev ChangeEvent) {
	d.s.mu.RLock()
	var ids []int64
	for _, w := range d.s.st.Webhooks {
		if w.ScopeObjectID == ev.SheetID && w.Enabled != nil && *w.Enabled && wants(w, ev) {
			ids = append(ids, w.ID)
		}
	}
	d.s.mu.RUnlock()
	we := wireEvent{ObjectType: ev.ObjectType, EventType: ev.EventType, ID: ev.ID, RowID: ev.RowID,
		ColumnID: ev.ColumnID, UserID: ev.UserID, Timestamp: ev.At.UTC().Format(wireTime), ChangeAgent: ev.ChangeAgent}
	d.mu.Lock()
	defer d.mu.Unlock()
	if ev.User.Email != "" {
		d.users[ev.UserID] = ev.User
	}
	slices.Sort(ids)
	for _, id := range ids {
		q := d.queue(id)
		if len(q.events) == 0 {
			q.first = time.Now()
		}
		q.events = append(q.events, we)
		d.startLocked(id, q)
	}
}

// wants applies a webhook's subscope: with columnIds, only cell and column
// events of those columns and row creations and deletions are sent.
func wants(w *webhookRec, ev ChangeEvent) bool {
	if w.Subscope == nil || len(w.Subscope.ColumnIDs) == 0 {
		return true
	}
	switch ev.ObjectType {
	case ObjectCell, ObjectColumn:
		col := ev.ColumnID
		if ev.ObjectType == ObjectColumn && col == 0 {
			col = ev.ID
		}
		return slices.Contains(w.Subscope.ColumnIDs, col)
	case ObjectRow:
		return ev.EventType == EventCreated || ev.EventType == EventDeleted
	}
	return false
}

func (d *deliverer) queue(id int64) *hookQueue {
	q := d.queues[id]
	if q == nil {
		q = &hookQueue{}
		d.queues[id] = q
	}
	return q
}

// startLocked starts the webhook's worker unless one runs or the server is
// closed; callers hold d.mu.
func (d *deliverer) startLocked(id int64, q *hookQueue) {
	if q.running || d.ctx.Err() != nil {
		return
	}
	q.running = true
	d.wg.Add(1)
	go d.run(id)
}

// run delivers a webhook's pending work, one callback at a time, and exits
// when nothing is left.
func (d *deliverer) run(id int64) {
	defer d.wg.Done()
	for {
		d.mu.Lock()
		q := d.queues[id]
		if d.ctx.Err() != nil || (len(q.events) == 0 && len(q.statuses) == 0) {
			q.running = false
			d.mu.Unlock()
			return
		}
		statuses := q.statuses
		q.statuses = nil
		wait := time.Until(q.first.Add(d.opts.Debounce + d.delay))
		changed := d.delayChanged
		d.mu.Unlock()
		for _, st := range statuses {
			d.sendStatus(id, st)
		}
		if len(statuses) > 0 {
			continue
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-changed:
				t.Stop()
				continue // the delay changed: wait again with the new one
			case <-d.ctx.Done():
				t.Stop()
				continue
			}
		}
		d.mu.Lock()
		batch := q.events
		q.events = nil
		d.mu.Unlock()
		if len(batch) > 0 {
			d.deliver(id, batch)
		}
	}
}

// target is what a delivery needs to know of a webhook, read under the lock.
type target struct {
	id, sheetID int64
	url, secret string
	enabled     bool
}

func (d *deliverer) target(id int64) (target, bool) {
	d.s.mu.RLock()
	defer d.s.mu.RUnlock()
	w := d.s.st.Webhooks[id]
	if w == nil {
		return target{}, false
	}
	return target{id: w.ID, sheetID: w.ScopeObjectID, url: w.CallbackURL, secret: w.SharedSecret,
		enabled: w.Enabled != nil && *w.Enabled}, true
}

// deliver sends one callback with the batch, retrying per the schedule. The
// nonce stays the same across retries; the timestamp and the signature (with
// the secret current at each attempt) are those of each attempt.
func (d *deliverer) deliver(id int64, batch []wireEvent) {
	nonce := randomHex(16)
	for attempt := 0; ; attempt++ {
		t, ok := d.target(id)
		if !ok || !t.enabled {
			return // deleted or disabled meanwhile: the events are dropped
		}
		if !d.reverify(t) {
			return
		}
		body, err := json.Marshal(wireCallback{Nonce: nonce, Timestamp: d.s.clk.exact().Format(wireTime),
			WebhookID: id, Scope: "sheet", ScopeObjectID: t.sheetID, Events: batch})
		if err != nil {
			d.s.log.Error("smartsim webhook: encode callback", "webhookId", id, "err", err)
			return
		}
		status, err := d.post(t.url, body, sign(body, t.secret), nil)
		if err == nil && status/100 == 2 {
			d.count(id, func(st *WebhookStats, q *hookQueue) { st.Callbacks++; q.sinceVerify++ })
			return
		}
		d.count(id, func(st *WebhookStats, _ *hookQueue) { st.Failures++ })
		d.s.log.Warn("smartsim webhook: callback failed", "webhookId", id, "attempt", attempt+1, "status", status, "err", err)
		if status == http.StatusGone || attempt >= len(d.opts.RetryDelays) {
			d.setStatus(id, smartsheet.WebhookDisabledCallbackFailed, "callback failed")
			return
		}
		tm := time.NewTimer(d.opts.RetryDelays[attempt])
		select {
		case <-tm.C:
		case <-d.ctx.Done():
			tm.Stop()
			return
		}
	}
}

// reverify sends the periodic verification challenge when due; a failure
// disables the webhook (DISABLED_VERIFICATION_FAILED).
func (d *deliverer) reverify(t target) bool {
	d.mu.Lock()
	due := d.queue(t.id).sinceVerify >= d.opts.VerifyEvery
	d.mu.Unlock()
	if !due {
		return true
	}
	if !d.verify(t.id, t.url) {
		d.setStatus(t.id, smartsheet.WebhookDisabledVerificationFailed, "verification failed")
		return false
	}
	return true
}

// verify runs the verification handshake against url and reports whether
// the callback echoed the challenge.
func (d *deliverer) verify(id int64, callbackURL string) bool {
	challenge := randomHex(16)
	body, _ := json.Marshal(map[string]any{"challenge": challenge, "webhookId": id})
	var echoed bool
	status, err := d.post(callbackURL, body, "", func(res *http.Response) {
		if res.Header.Get(headerResponse) == challenge {
			echoed = true
			return
		}
		var b struct {
			V string `json:"smartsheetHookResponse"`
		}
		data, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		echoed = json.Unmarshal(data, &b) == nil && b.V == challenge
	}, headerChallenge, challenge)
	d.count(id, func(st *WebhookStats, q *hookQueue) { st.Verifications++; q.sinceVerify = 0 })
	ok := err == nil && status == http.StatusOK && echoed
	if !ok {
		d.s.log.Warn("smartsim webhook: verification failed", "webhookId", id, "status", status, "err", err)
	}
	return ok
}

// post sends a JSON body to a loopback callback URL and returns the status.
// inspect, if set, reads the answer; headers are extra name, value pairs.
func (d *deliverer) post(callbackURL string, body []byte, signature string, inspect func(*http.Response), headers ...string) (int, error) {
	if !loopbackURL(callbackURL) {
		return 0, errNotLoopback
	}
	ctx, cancel := context.WithTimeout(d.ctx, d.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, callbackURL, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Smartsheet-Webhooks (smartsim)")
	if signature != "" {
		req.Header.Set(headerSignature, signature)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := d.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if inspect != nil {
		inspect(res)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 1<<20))
	return res.StatusCode, nil
}

// sendStatus sends one newWebhookStatus callback (no retries: the webhook is
// already disabled).
func (d *deliverer) sendStatus(id int64, status string) {
	t, ok := d.target(id)
	if !ok {
		return
	}
	body, _ := json.Marshal(wireCallback{Nonce: randomHex(16), Timestamp: d.s.clk.exact().Format(wireTime),
		WebhookID: id, Scope: "sheet", ScopeObjectID: t.sheetID, NewWebhookStatus: status})
	code, err := d.post(t.url, body, sign(body, t.secret), nil)
	d.count(id, func(st *WebhookStats, _ *hookQueue) { st.StatusCallbacks++ })
	if err != nil || code/100 != 2 {
		d.s.log.Warn("smartsim webhook: status callback failed", "webhookId", id, "status", code, "err", err)
	}
}

func (d *deliverer) count(id int64, fn func(*WebhookStats, *hookQueue)) {
	d.mu.Lock()
	defer d.mu.Unlock()
	q := d.queue(id)
	fn(&q.stats, q)
}

// setStatus disables a webhook with status and drops its pending events.
func (d *deliverer) setStatus(id int64, status, details string) {
	d.s.mu.Lock()
	if w := d.s.st.Webhooks[id]; w != nil {
		f := false
		now := d.s.clk.now()
		w.Enabled, w.Status, w.DisabledDetails, w.ModifiedAt = &f, status, details, &now
	}
	d.s.mu.Unlock()
	d.drop(id)
}

// drop forgets a webhook's pending events.
func (d *deliverer) drop(id int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if q := d.queues[id]; q != nil {
		q.events = nil
	}
}

// resetVerify restarts the count of callbacks since the last verification.
func (d *deliverer) resetVerify(id int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.queue(id).sinceVerify = 0
}

func (d *deliverer) idle() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queues {
		if q.running {
			return false
		}
	}
	return true
}

func sign(body []byte, secret string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// FlushWebhooks waits until every pending webhook event has been delivered
// or given up (debounce windows and retry delays run their course), or ctx
// ends.
func (s *Server) FlushWebhooks(ctx context.Context) error {
	for {
		if s.wh.idle() {
			return nil
		}
		t := time.NewTimer(2 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("smartsim flush webhooks: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// SetWebhookDelay changes WebhookOptions.Delay from now on, for the
// callbacks pending too: setting it back to 0 releases those held by a long
// delay (after their debounce).
func (s *Server) SetWebhookDelay(d time.Duration) {
	s.wh.mu.Lock()
	defer s.wh.mu.Unlock()
	s.wh.delay = max(d, 0)
	close(s.wh.delayChanged)
	s.wh.delayChanged = make(chan struct{})
}

// WebhookStats returns the delivery counters of a webhook.
func (s *Server) WebhookStats(webhookID int64) WebhookStats {
	s.wh.mu.Lock()
	defer s.wh.mu.Unlock()
	if q := s.wh.queues[webhookID]; q != nil {
		return q.stats
	}
	return WebhookStats{}
}

// SetWebhookEnabled enables (running the verification handshake first) or
// disables a webhook, like PUT /webhooks/{id} {"enabled":...}.
func (s *Server) SetWebhookEnabled(webhookID int64, enabled bool) (smartsheet.Webhook, error) {
	return s.setWebhookEnabled(webhookID, enabled)
}

// DisableWebhook disables a webhook as Smartsheet would on its own side
// (status such as DISABLED_SCOPE_INACCESSIBLE, DISABLED_ADMINISTRATIVE or
// DISABLED_APP_REVOKED) and sends the callback a newWebhookStatus callback.
func (s *Server) DisableWebhook(webhookID int64, status string) error {
	s.mu.Lock()
	w := s.st.Webhooks[webhookID]
	if w == nil {
		s.mu.Unlock()
		return fmt.Errorf("webhook %d: %w", webhookID, errNotFound())
	}
	s.mu.Unlock()
	s.wh.setStatus(webhookID, status, "")
	s.wh.mu.Lock()
	defer s.wh.mu.Unlock()
	q := s.wh.queue(webhookID)
	q.statuses = append(q.statuses, status)
	s.wh.startLocked(webhookID, q)
	return nil
}
