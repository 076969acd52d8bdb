package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The receiving side of the webhooks, which runs on every callback: the
// Sink stores the callback's attribution records, queues a targeted refresh
// of its rows and records (and alerts on) a status change, and the
// attributor finds those records again when the refresh analyses the rows.
// It is apart from the registration (webhook_registration.go) because it
// runs in another place with other rights: the Sink (in the webhook Lambda
// and `billing-audit listen`) needs a store and a queue, never Smartsheet,
// and must answer a callback within seconds; the attributor runs in the
// analysis and only reads the records and user profiles.

// WebhookRecords stores the receiver's attribution records (and, as a
// webhook.RecordLookup, finds them again at attribution time).
type WebhookRecords interface {
	PutRecords(ctx context.Context, recs []webhook.Record) error
}

// RefreshQueue carries refresh requests from the receiver to the refresh
// stage (SQS in the cloud, an in-process worker locally).
type RefreshQueue interface {
	SendRefresh(ctx context.Context, f Refresh) error
}

// MetaStore keeps small settings (every Store is one).
type MetaStore interface {
	Meta(ctx context.Context, key string) (string, bool, error)
	PutMeta(ctx context.Context, key, value string) error
}

// Alert marker of a webhook status change: the log line's msg and its
// alert attribute, matched by the metric filter of template.yaml.
const (
	WebhookStatusMessage = "webhook status changed"
	WebhookDisabledAlert = "WEBHOOK_DISABLED"
)

// WebhookStatus is the last status callback of a webhook, kept in the
// store's meta under WebhookStatusKey.
type WebhookStatus struct {
	WebhookID int64     `json:"webhookId"`
	SheetID   int64     `json:"sheetId"`
	Status    string    `json:"status"`
	At        time.Time `json:"at"`
}

// WebhookStatusKeyPrefix starts the meta key of every webhook's last status
// callback; a store may keep those apart from the other settings (the
// DynamoDB store does, so the webhook function can write them and no other).
const WebhookStatusKeyPrefix = "webhook-status/"

// WebhookStatusKey is the meta key of a webhook's last status callback.
func WebhookStatusKey(webhookID int64) string {
	return WebhookStatusKeyPrefix + strconv.FormatInt(webhookID, 10)
}

// LastWebhookStatus reads the last status callback recorded for a webhook.
func LastWebhookStatus(ctx context.Context, meta MetaStore, webhookID int64) (WebhookStatus, bool, error) {
	v, ok, err := meta.Meta(ctx, WebhookStatusKey(webhookID))
	if err != nil {
		return WebhookStatus{}, false, fmt.Errorf("read the status of webhook %d: %w", webhookID, err)
	}
	if !ok {
		return WebhookStatus{}, false, nil
	}
	var st WebhookStatus
	if err := json.Unmarshal([]byte(v), &st); err != nil {
		return WebhookStatus{}, false, fmt.Errorf("webhook status %d: %w", webhookID, err)
	}
	return st, true, nil
}

// WebhookSink is the receiver's Sink: it stores a callback's records, queues
// the refresh of its rows, and records (and logs at error, with the alert
// marker) a status change. It never calls Smartsheet.
type WebhookSink struct {
	Records WebhookRecords
	Queue   RefreshQueue
	Meta    MetaStore
	Logger  *slog.Logger
}

var _ webhook.Sink = (*WebhookSink)(nil)

// Accept implements webhook.Sink. Records go first: a refresh then always
// finds them. Both writes are idempotent, so a retried callback is safe.
func (s *WebhookSink) Accept(ctx context.Context, cb webhook.Callback) error {
	if cb.NewStatus != "" {
		if err := s.status(ctx, cb); err != nil {
			return err
		}
	}
	if len(cb.Events) == 0 {
		return nil
	}
	if err := s.Records.PutRecords(ctx, cb.Records()); err != nil {
		return fmt.Errorf("store the records of webhook %d for sheet %d: %w", cb.WebhookID, cb.SheetID, err)
	}
	f := RefreshFor(cb)
	if len(f.RowIDs)+len(f.DeletedRowIDs) == 0 {
		return nil
	}
	if err := s.Queue.SendRefresh(ctx, f); err != nil {
		return fmt.Errorf("queue refresh of sheet %d: %w", cb.SheetID, err)
	}
	return nil
}

func (s *WebhookSink) status(ctx context.Context, cb webhook.Callback) error {
	lg := s.Logger
	if lg == nil {
		lg = slog.Default()
	}
	st := WebhookStatus{WebhookID: cb.WebhookID, SheetID: cb.SheetID, Status: cb.NewStatus, At: cb.Time}
	if cb.NewStatus == smartsheet.WebhookEnabled {
		lg.InfoContext(ctx, WebhookStatusMessage, "webhookId", cb.WebhookID, "sheetId", cb.SheetID, "status", cb.NewStatus)
	} else {
		lg.ErrorContext(ctx, WebhookStatusMessage, "alert", WebhookDisabledAlert, "webhookId", cb.WebhookID,
			"sheetId", cb.SheetID, "status", cb.NewStatus)
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode the status of webhook %d: %w", cb.WebhookID, err)
	}
	if err := s.Meta.PutMeta(ctx, WebhookStatusKey(cb.WebhookID), string(b)); err != nil {
		return fmt.Errorf("record the status of webhook %d: %w", cb.WebhookID, err)
	}
	return nil
}

// RefreshFor is the refresh a callback asks for: the rows of its cell and
// row-created events, and its deleted rows.
func RefreshFor(cb webhook.Callback) Refresh {
	f := Refresh{Kind: RefreshKind, SheetID: cb.SheetID}
	var rows, deleted []int64
	for _, e := range cb.Events {
		if e.ObjectType == "row" && e.EventType == "deleted" {
			deleted = append(deleted, e.RowID)
		} else {
			rows = append(rows, e.RowID)
		}
	}
	f.Merge(Refresh{RowIDs: rows, DeletedRowIDs: deleted})
	return f
}

// UserAPI reads Smartsheet user profiles (GET /users/{id}).
type UserAPI interface {
	GetUser(ctx context.Context, userID int64) (*smartsheet.UserProfile, error)
}

var _ UserAPI = (*smartsheet.Client)(nil)

// apiUsers adapts UserAPI to webhook.Users.
type apiUsers struct{ api UserAPI }

func (u apiUsers) User(ctx context.Context, id int64) (string, string, error) {
	p, err := u.api.GetUser(ctx, id)
	if err != nil {
		return "", "", fmt.Errorf("get user %d: %w", id, err)
	}
	return p.Email, p.DisplayName(), nil
}

// UserCacheTTL is how long a resolved user id is remembered in memory.
const UserCacheTTL = time.Hour

// WebhookAttributor is the first attributor of the chain (Options.Webhooks):
// the stored webhook records of the changed cell, their user ids resolved to
// email and name at attribution time through users (GET /users/{id}, cached
// in memory). columnIDs, when given, limit it to those columns (see
// webhook.NewAttributor); the records exist only for the webhooks'
// subscopes anyway. When lookup is a webhook.NewestRecordLookup (the
// DynamoDB and bolt stores), each batch reads a sheet's newest record time
// once and skips the lookups of changes no record can match.
func WebhookAttributor(lookup webhook.RecordLookup, users UserAPI, columnIDs ...int64) audit.Attributor {
	return webhook.NewAttributor(webhook.ResolvingLookup(lookup, webhook.CachedUsers(apiUsers{users}, UserCacheTTL)), columnIDs...)
}
