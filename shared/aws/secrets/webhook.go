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
// webhook.SecretSet). A plain string value is taken as the current secret
// (no sheet recorded); keys that are not
// webhook ids (the template's placeholder) are ignored. Reads are cached in
// the container for TTL; a webhook missing from the cache reloads it (at
// most once per MissReload), so a webhook registered a moment ago by the
// scan passes its verification handshake.
type WebhookSecrets struct {
	api API
	arn string
	// TTL is how long a read is reused (default 30 s).
	TTL time.Duration
	// MissReload and MissBurst bound the reloads caused by unknown webhook
	// ids: at most MissBurst within any MissReload (defaults 1 s and 10).
	MissReload time.Duration
	MissBurst  int
	now        func() time.Time

	mu     sync.Mutex
	cache  map[int64]webhook.SecretSet
	loaded time.Time
	misses []time.Time // the recent reloads caused by unknown ids
}

var _ pipeline.WebhookSecretStore = (*WebhookSecrets)(nil)

// NewWebhookSecrets reads and writes the secret arn through api.
func NewWebhookSecrets(api API, arn string) *WebhookSecrets {
	return &WebhookSecrets{api: api, arn: arn, TTL: 30 * time.Second, MissReload: time.Second, MissBurst: 10, now: time.Now}
}

// SecretSet returns a webhook's secrets (webhook.SecretSource).
func (w *WebhookSecrets) SecretSet(ctx context.Context, webhookID int64) (webhook.SecretSet, bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	set, ok := w.cache[webhookID]
	if w.cache != nil && now.Sub(w.loaded) < w.TTL && (ok || !w.missReload(now)) {
		return set, ok, nil
	}
	all, err := w.load(ctx)
	if err != nil {
		return webhook.SecretSet{}, false, err
	}
	w.cache, w.loaded = all, w.now()
	set, ok = all[webhookID]
	return set, ok, nil
}

// missReload says whether a miss may reload the cache now, and counts it;
// callers hold w.mu.
func (w *WebhookSecrets) missReload(now time.Time) bool {
	recent := w.misses[:0]
	for _, t := range w.misses {
		if now.Sub(t) < w.MissReload {
			recent = append(recent, t)
		}
	}
	w.misses = recent
	if len(recent) >= max(w.MissBurst, 1) {
		return false
	}
	w.misses = append(w.misses, now)
	return true
}

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
	w.cache, w.loaded = all, w.now()
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
