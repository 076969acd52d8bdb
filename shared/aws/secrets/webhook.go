package secrets

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// WebhookSecrets keeps the shared secrets of our webhooks in one Secrets
// Manager secret (WEBHOOK_SECRETS_ARN) as JSON
//
//	{"<webhookId>": {"current": "...", "previous": "...", "previousUntil": "RFC3339", "sheetId": 123}}
//
// (sheetId: the sheet the webhook was registered for, see
// webhook.SecretSet). A plain string value is taken as the current secret,
// with no sheet recorded; keys that are not webhook ids (the template's
// placeholder) are ignored. Reads are cached in the container for TTL. A
// webhook missing from the cache reloads it, so one registered a moment ago
// by the scan passes its verification handshake; MissReload and MissBurst
// bound those reloads, so calls naming made-up webhook ids do not turn into
// a stream of Secrets Manager reads.
type WebhookSecrets struct {
	api API
	arn string
	// TTL is how long a read is reused (default 30 s).
	TTL time.Duration
	// MissReload and MissBurst bound the reloads caused by ids the cache
	// does not know, per container: a token bucket of MissBurst tokens, one
	// regained every MissReload (defaults [DefaultMissBurst] and
	// [DefaultMissReload]; MissReload 0: unbounded). A reload that finds the
	// id (a webhook registered since the last read) gives its token back, so
	// registrations never wait; only fruitless ones (junk) spend the bucket.
	// Without a token an unknown id is answered from the cache: not ours
	// (the receiver's 403), with no read.
	MissReload time.Duration
	MissBurst  int
	// Clock is the time source (default time.Now).
	Clock func() time.Time

	// LoadRetry is how long a failed read is answered with its error before
	// the secret is read again (default [DefaultLoadRetry]): without it, a
	// Secrets Manager outage turned every call, junk included, into a read.
	LoadRetry time.Duration

	mu         sync.Mutex
	cache      map[int64]webhook.SecretSet
	loaded     time.Time
	loadErr    error // the last read's failure, until failedAt+LoadRetry
	failedAt   time.Time
	missTokens float64   // the bucket, as of missAt
	missAt     time.Time // zero: the bucket was never used (full)
}

var _ pipeline.WebhookSecretStore = (*WebhookSecrets)(nil)

// Defaults of WebhookSecrets' miss bucket: at most 3 fruitless reloads at
// once, then one per 10 s, per container (it was 10 a second).
const (
	DefaultMissReload = 10 * time.Second
	DefaultMissBurst  = 3
	// DefaultLoadRetry: Smartsheet retries a callback answered 500, so a
	// second's wait costs a real callback nothing.
	DefaultLoadRetry = time.Second
)

// NewWebhookSecrets reads and writes the secret arn through api.
func NewWebhookSecrets(api API, arn string) *WebhookSecrets {
	return &WebhookSecrets{api: api, arn: arn, TTL: 30 * time.Second, MissReload: DefaultMissReload, MissBurst: DefaultMissBurst,
		LoadRetry: DefaultLoadRetry, Clock: time.Now}
}

// SecretSet returns a webhook's secrets (webhook.SecretSource).
func (w *WebhookSecrets) SecretSet(ctx context.Context, webhookID int64) (webhook.SecretSet, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.Clock()
	set, ok := w.cache[webhookID]
	fresh := w.cache != nil && now.Sub(w.loaded) < w.TTL
	if fresh && ok {
		return set, true, nil
	}
	// A fresh cache without the id: reload only with a token of the bucket.
	miss := fresh
	if w.loadErr != nil && now.Before(w.failedAt.Add(w.LoadRetry)) {
		return webhook.SecretSet{}, false, w.loadErr
	}
	if miss && !w.takeMissToken(now) {
		return webhook.SecretSet{}, false, nil
	}
	all, err := w.load(ctx)
	if err != nil {
		if ctx.Err() == nil { // this caller's own deadline is not an outage
			w.loadErr, w.failedAt = err, now
		}
		return webhook.SecretSet{}, false, err
	}
	w.loadErr = nil
	w.cache, w.loaded, w.loadErr = all, w.Clock(), nil
	set, ok = all[webhookID]
	if miss && ok {
		w.missTokens = min(w.missTokens+1, w.missBurst()) // a registration, not junk: free
	}
	return set, ok, nil
}

// takeMissToken refills the miss bucket for the time since it was last
// used and takes a token if there is one; callers hold w.mu.
func (w *WebhookSecrets) takeMissToken(now time.Time) bool {
	if w.MissReload <= 0 {
		return true
	}
	switch {
	case w.missAt.IsZero():
		w.missTokens = w.missBurst()
	case now.After(w.missAt):
		w.missTokens = min(w.missTokens+float64(now.Sub(w.missAt))/float64(w.MissReload), w.missBurst())
	}
	if now.After(w.missAt) {
		w.missAt = now
	}
	if w.missTokens < 1 {
		return false
	}
	w.missTokens--
	return true
}

func (w *WebhookSecrets) missBurst() float64 { return float64(max(w.MissBurst, 1)) }

// PutSecretSet stores a webhook's secrets (read, change, write the JSON).
func (w *WebhookSecrets) PutSecretSet(ctx context.Context, webhookID int64, set webhook.SecretSet) error {
	return w.change(ctx, func(all map[int64]webhook.SecretSet) { all[webhookID] = set })
}

// DeleteSecretSet forgets a webhook's secrets.
func (w *WebhookSecrets) DeleteSecretSet(ctx context.Context, webhookID int64) error {
	return w.change(ctx, func(all map[int64]webhook.SecretSet) { delete(all, webhookID) })
}

func (w *WebhookSecrets) change(ctx context.Context, fn func(map[int64]webhook.SecretSet)) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	all, err := w.load(ctx)
	if err != nil {
		return err
	}
	fn(all)
	out := make(map[string]webhook.SecretSet, len(all))
	for id, s := range all {
		out[strconv.FormatInt(id, 10)] = s
	}
	b, err := json.Marshal(out)
	if err != nil {
		return err
	}
	if err := Put(ctx, w.api, w.arn, string(b)); err != nil {
		return err
	}
	w.cache, w.loaded, w.loadErr = all, w.Clock(), nil
	return nil
}

func (w *WebhookSecrets) load(ctx context.Context) (map[int64]webhook.SecretSet, error) {
	raw, err := Get(ctx, w.api, w.arn)
	if err != nil {
		return nil, err
	}
	return ParseWebhookSecrets([]byte(raw))
}

// ParseWebhookSecrets reads the JSON of the webhook secrets secret. The
// error never quotes the secret.
func ParseWebhookSecrets(raw []byte) (map[int64]webhook.SecretSet, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("webhook secrets: not a JSON object")
	}
	out := make(map[int64]webhook.SecretSet, len(m))
	for k, v := range m {
		id, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			continue // not a webhook id (the template's placeholder)
		}
		var set webhook.SecretSet
		var plain string
		switch {
		case json.Unmarshal(v, &plain) == nil:
			set.Current = plain
		case json.Unmarshal(v, &set) == nil:
		default:
			return nil, fmt.Errorf("webhook secrets: entry %d is neither a string nor {current, previous, previousUntil, sheetId}", id)
		}
		out[id] = set
	}
	return out, nil
}
