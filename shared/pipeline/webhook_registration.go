package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The registration lifecycle of the webhooks: which sheets must have one and
// with which subscope (WebhookTargets), making Smartsheet's webhooks match
// (EnsureWebhooks: create, re-enable, update, delete) and rotating a shared
// secret (ResetWebhookSecret). It is apart from the receiving side
// (webhook_sink.go) because it runs from the scan and the operator CLI,
// calls Smartsheet's webhook API and writes the secrets the receiver only
// reads; a failure here never fails an audit (the scan finds every change
// without webhooks), while the receiver's failures make Smartsheet retry.

// WebhookSecretStore keeps the shared secrets of our webhooks (Secrets
// Manager in the cloud, the bolt store locally); the receiver reads it
// through webhook.StoredSecrets.
type WebhookSecretStore interface {
	webhook.SecretSource
	PutSecretSet(ctx context.Context, webhookID int64, set webhook.SecretSet) error
	DeleteSecretSet(ctx context.Context, webhookID int64) error
}

// WebhookAPI is the part of the Smartsheet client that manages webhooks.
type WebhookAPI interface {
	ListWebhooks(ctx context.Context) ([]smartsheet.Webhook, error)
	CreateWebhook(ctx context.Context, w smartsheet.Webhook) (*smartsheet.Webhook, error)
	UpdateWebhook(ctx context.Context, webhookID int64, u smartsheet.WebhookUpdate) (*smartsheet.Webhook, error)
	DeleteWebhook(ctx context.Context, webhookID int64) error
	ResetSharedSecret(ctx context.Context, webhookID int64) (string, error)
}

var _ WebhookAPI = (*smartsheet.Client)(nil)

// WebhookTarget is a source sheet and the subscope its webhook must have.
type WebhookTarget struct {
	Sheet     SheetRef
	ColumnIDs []int64
}

// WebhookAction is what EnsureWebhooks did to one webhook.
type WebhookAction struct {
	SheetID   int64
	WebhookID int64
	// Action: kept, created, enabled, updated (subscope), secret-reset
	// (its secret was unknown), sheet-recorded (its stored secret did not
	// name its sheet yet), deleted.
	Actions []string
	Status  string
}

// WebhookName is the name of the webhooks EnsureWebhooks creates.
const WebhookName = "billing-audit"

// EnsureWebhooks makes the webhooks of callbackURL match targets: for each
// target sheet exactly one enabled webhook with that callback and subscope,
// and none elsewhere. It creates a missing webhook (its secret stored before
// it is enabled, since enabling runs the verification handshake against the
// receiver), re-enables a disabled one (DISABLED_CALLBACK_FAILED,
// DISABLED_VERIFICATION_FAILED…), updates a changed subscope, resets the
// secret of a webhook whose secret we lost, and deletes duplicates and the
// webhooks of sheets no longer scanned. A webhook with another callback URL
// is ours only when we hold its secret: it was registered before the
// callback URL changed (a new path key, a new API), and is deleted with its
// secret once its sheet has a webhook at callbackURL (or is no longer
// scanned). Other webhooks are someone else's and are left alone. A sheet
// that fails does not stop the others; the errors are returned joined.
func EnsureWebhooks(ctx context.Context, api WebhookAPI, secrets WebhookSecretStore, callbackURL string, targets []WebhookTarget) ([]WebhookAction, error) {
	if callbackURL == "" {
		return nil, errors.New("ensure webhooks: no callback URL")
	}
	all, err := api.ListWebhooks(ctx)
	if err != nil {
		return nil, fmt.Errorf("ensure webhooks: list webhooks: %w", err)
	}
	var (
		out   []WebhookAction
		errs  []error
		moved []smartsheet.Webhook // ours, calling a former callback URL
	)
	bySheet := map[int64][]smartsheet.Webhook{}
	for _, w := range all {
		if w.CallbackURL == callbackURL {
			if w.Scope == "" || w.Scope == "sheet" {
				bySheet[w.ScopeObjectID] = append(bySheet[w.ScopeObjectID], w)
			}
			continue
		}
		_, ours, err := secrets.SecretSet(ctx, w.ID)
		if err != nil {
			errs = append(errs, fmt.Errorf("read the secret of webhook %d (callback URL changed?): %w", w.ID, err))
			continue
		}
		if ours {
			moved = append(moved, w)
		}
	}
	wanted, ensured := map[int64]bool{}, map[int64]bool{}
	for _, t := range targets {
		if len(t.ColumnIDs) == 0 || wanted[t.Sheet.ID] {
			continue // no tracked column: nothing to watch (the scan reports the finding)
		}
		wanted[t.Sheet.ID] = true
		acts, err := ensureOne(ctx, api, secrets, callbackURL, t, bySheet[t.Sheet.ID])
		out = append(out, acts...)
		if err != nil {
			errs = append(errs, fmt.Errorf("webhook of sheet %d: %w", t.Sheet.ID, err))
			continue
		}
		ensured[t.Sheet.ID] = true
	}
	sheets := make([]int64, 0, len(bySheet))
	for id := range bySheet {
		if !wanted[id] {
			sheets = append(sheets, id)
		}
	}
	slices.Sort(sheets)
	for _, id := range sheets {
		for _, w := range bySheet[id] {
			a, err := deleteWebhook(ctx, api, secrets, w)
			out = append(out, a)
			errs = append(errs, err)
		}
	}
	for _, w := range moved {
		if wanted[w.ScopeObjectID] && !ensured[w.ScopeObjectID] {
			continue // keep it until its replacement is in place
		}
		a, err := deleteWebhook(ctx, api, secrets, w)
		out = append(out, a)
		errs = append(errs, err)
	}
	return out, errors.Join(errs...)
}

func ensureOne(ctx context.Context, api WebhookAPI, secrets WebhookSecretStore, callbackURL string, t WebhookTarget, have []smartsheet.Webhook) ([]WebhookAction, error) {
	// Keep the best one: enabled first, then with the wanted subscope, then the oldest.
	slices.SortStableFunc(have, func(a, b smartsheet.Webhook) int {
		if ea, eb := a.Status == smartsheet.WebhookEnabled, b.Status == smartsheet.WebhookEnabled; ea != eb {
			if ea {
				return -1
			}
			return 1
		}
		if sa, sb := sameColumns(a.Subscope, t.ColumnIDs), sameColumns(b.Subscope, t.ColumnIDs); sa != sb {
			if sa {
				return -1
			}
			return 1
		}
		return cmpInt64(a.ID, b.ID)
	})
	var out []WebhookAction
	var errs []error
	for _, w := range have[min(1, len(have)):] {
		a, err := deleteWebhook(ctx, api, secrets, w)
		out = append(out, a)
		errs = append(errs, err)
	}
	act := WebhookAction{SheetID: t.Sheet.ID}
	var w *smartsheet.Webhook
	if len(have) == 0 {
		created, err := api.CreateWebhook(ctx, smartsheet.Webhook{Name: WebhookName, CallbackURL: callbackURL, Scope: "sheet",
			ScopeObjectID: t.Sheet.ID, Subscope: &smartsheet.Subscope{ColumnIDs: t.ColumnIDs}})
		if err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("create the webhook: %w", err))...)
		}
		if err := secrets.PutSecretSet(ctx, created.ID, webhook.SecretSet{Current: created.SharedSecret, SheetID: t.Sheet.ID}); err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("store secret of webhook %d: %w", created.ID, err))...)
		}
		w, act.Actions = created, append(act.Actions, "created")
	} else {
		w = &have[0]
		set, known, err := secrets.SecretSet(ctx, w.ID)
		if err != nil {
			return out, errors.Join(append(errs, fmt.Errorf("read the secret of webhook %d: %w", w.ID, err))...)
		}
		switch {
		case !known:
			// Ours by its callback, but its secret is lost: a new one.
			secret, err := api.ResetSharedSecret(ctx, w.ID)
			if err != nil {
				return out, errors.Join(append(errs, fmt.Errorf("reset the lost secret of webhook %d: %w", w.ID, err))...)
			}
			if err := secrets.PutSecretSet(ctx, w.ID, webhook.SecretSet{Current: secret, SheetID: t.Sheet.ID}); err != nil {
				return out, errors.Join(append(errs, fmt.Errorf("store the new secret of webhook %d: %w", w.ID, err))...)
			}
			act.Actions = append(act.Actions, "secret-reset")
		case set.SheetID != t.Sheet.ID:
			// Stored before sheets were recorded: the receiver cannot tie
			// the webhook's callbacks to its sheet until this is written.
			set.SheetID = t.Sheet.ID
			if err := secrets.PutSecretSet(ctx, w.ID, set); err != nil {
				return out, errors.Join(append(errs, fmt.Errorf("record the sheet of webhook %d: %w", w.ID, err))...)
			}
			act.Actions = append(act.Actions, "sheet-recorded")
		}
		if !sameColumns(w.Subscope, t.ColumnIDs) {
			updated, err := api.UpdateWebhook(ctx, w.ID, smartsheet.WebhookUpdate{Subscope: &smartsheet.Subscope{ColumnIDs: t.ColumnIDs}})
			if err != nil {
				return out, errors.Join(append(errs, fmt.Errorf("update the subscope of webhook %d: %w", w.ID, err))...)
			}
			w, act.Actions = updated, append(act.Actions, "updated")
		}
	}
	act.WebhookID = w.ID
	if w.Status != smartsheet.WebhookEnabled || w.Enabled == nil || !*w.Enabled {
		enabled := true
		got, err := api.UpdateWebhook(ctx, w.ID, smartsheet.WebhookUpdate{Enabled: &enabled})
		if err != nil {
			return append(out, act), errors.Join(append(errs, fmt.Errorf("enable webhook %d: %w", w.ID, err))...)
		}
		w = got
		if w.Status != smartsheet.WebhookEnabled {
			act.Status = w.Status
			return append(out, act), errors.Join(append(errs, fmt.Errorf("webhook %d not enabled: %s", w.ID, w.Status))...)
		}
		act.Actions = append(act.Actions, "enabled")
	}
	if len(act.Actions) == 0 {
		act.Actions = []string{"kept"}
	}
	act.Status = w.Status
	return append(out, act), errors.Join(errs...)
}

func deleteWebhook(ctx context.Context, api WebhookAPI, secrets WebhookSecretStore, w smartsheet.Webhook) (WebhookAction, error) {
	a := WebhookAction{SheetID: w.ScopeObjectID, WebhookID: w.ID, Actions: []string{"deleted"}, Status: w.Status}
	if err := api.DeleteWebhook(ctx, w.ID); err != nil {
		return a, fmt.Errorf("delete webhook %d of sheet %d: %w", w.ID, w.ScopeObjectID, err)
	}
	return a, wrapErr(fmt.Sprintf("delete the secret of webhook %d", w.ID), secrets.DeleteSecretSet(ctx, w.ID))
}

func sameColumns(s *smartsheet.Subscope, want []int64) bool {
	var have []int64
	if s != nil {
		have = slices.Clone(s.ColumnIDs)
	}
	slices.Sort(have)
	w := slices.Clone(want)
	slices.Sort(w)
	return slices.Equal(have, w)
}

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DefaultSecretOverlap is how long the previous secret of a rotated webhook
// is still accepted.
const DefaultSecretOverlap = 10 * time.Minute

// ResetWebhookSecret rotates a webhook's shared secret: Smartsheet makes a
// new one, stored as current with the old one kept as previous until
// now+overlap, so callbacks signed before the rotation are still accepted.
// (A callback signed with the new secret in the moment before it is stored
// is refused and retried by Smartsheet.)
func ResetWebhookSecret(ctx context.Context, api WebhookAPI, secrets WebhookSecretStore, webhookID int64, overlap time.Duration, now time.Time) error {
	if overlap <= 0 {
		overlap = DefaultSecretOverlap
	}
	old, _, err := secrets.SecretSet(ctx, webhookID)
	if err != nil {
		return fmt.Errorf("read the secret of webhook %d: %w", webhookID, err)
	}
	secret, err := api.ResetSharedSecret(ctx, webhookID)
	if err != nil {
		return fmt.Errorf("reset the secret of webhook %d: %w", webhookID, err)
	}
	set := webhook.SecretSet{Current: secret, Previous: old.Current, PreviousUntil: now.UTC().Add(overlap), SheetID: old.SheetID}
	if old.Current == "" {
		set.PreviousUntil = time.Time{}
	}
	if err := secrets.PutSecretSet(ctx, webhookID, set); err != nil {
		return fmt.Errorf("store new secret of webhook %d: %w", webhookID, err)
	}
	return nil
}

// WebhookTargets gives the subscope of each sheet's webhook: from the sheet
// state of its last scan, else (never scanned, or scanned before subscopes
// were recorded) from its columns, read with one small call.
func (r *Runner) WebhookTargets(ctx context.Context, sheets []SheetRef) ([]WebhookTarget, error) {
	return r.webhookTargets(ctx, sheets, nil)
}

// webhookTargets is WebhookTargets with states not yet in the store (a
// serverless scan saves them when the run completes).
func (r *Runner) webhookTargets(ctx context.Context, sheets []SheetRef, states []SheetState) ([]WebhookTarget, error) {
	out := make([]WebhookTarget, 0, len(sheets))
	for _, ref := range sheets {
		if ref.ID == r.opts.AuditSheetID {
			continue // our own writes must not come back as callbacks
		}
		i := slices.IndexFunc(states, func(s SheetState) bool { return s.SheetID == ref.ID })
		var st SheetState
		ok := i >= 0
		if ok {
			st = states[i]
		} else {
			var err error
			if st, ok, err = r.store.SheetState(ctx, ref.ID); err != nil {
				return nil, fmt.Errorf("read the state of sheet %d: %w", ref.ID, err)
			}
		}
		t := WebhookTarget{Sheet: ref, ColumnIDs: st.WebhookColumnIDs}
		if !ok || len(t.ColumnIDs) == 0 {
			cols, err := r.sheetColumns(ctx, ref.ID)
			if err != nil {
				return nil, fmt.Errorf("read the columns of sheet %d: %w", ref.ID, err)
			}
			m, _ := r.opts.Audit.MapColumns(ref.ID, ref.Name, cols)
			t.ColumnIDs = WebhookColumnIDs(m)
		}
		out = append(out, t)
	}
	return out, nil
}

// EnsureWebhooks registers the webhooks of the source sheets (all of them
// when sheets is nil) when a callback URL is configured
// (Options.WebhookCallbackURL); the scan stage calls it on each run. Without
// a callback URL, or in test mode, it does nothing.
func (r *Runner) EnsureWebhooks(ctx context.Context, sheets []SheetRef) ([]WebhookAction, error) {
	return r.ensureWebhooks(ctx, sheets, nil)
}

func (r *Runner) ensureWebhooks(ctx context.Context, sheets []SheetRef, states []SheetState) ([]WebhookAction, error) {
	if r.opts.WebhookCallbackURL == "" || r.opts.WebhookAPI == nil || r.opts.WebhookSecrets == nil || r.opts.TestMode {
		return nil, nil
	}
	if sheets == nil {
		var err error
		if sheets, err = r.Discover(ctx); err != nil {
			return nil, fmt.Errorf("ensure webhooks: %w", err)
		}
	}
	targets, err := r.webhookTargets(ctx, sheets, states)
	if err != nil {
		return nil, fmt.Errorf("ensure webhooks: %w", err)
	}
	return EnsureWebhooks(ctx, r.opts.WebhookAPI, r.opts.WebhookSecrets, r.opts.WebhookCallbackURL, targets)
}

// registerWebhooks is the scan stage's call: a failure is logged, never
// fails the audit (the scan finds every change without webhooks).
func (r *Runner) registerWebhooks(ctx context.Context, sheets []SheetRef, states []SheetState) {
	acts, err := r.ensureWebhooks(ctx, sheets, states)
	for _, a := range acts {
		if !slices.Equal(a.Actions, []string{"kept"}) {
			r.log.InfoContext(ctx, "webhook", slog.Int64("sheet", a.SheetID), slog.Int64("webhook", a.WebhookID),
				slog.Any("actions", a.Actions), slog.String("status", a.Status))
		}
	}
	if err != nil {
		r.log.WarnContext(ctx, "webhooks not all registered; the scan still finds every change", slog.Any("error", err))
	}
}
