package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

// TestEnsureWebhooksRecordsSheet: the stored secret set of each webhook
// names the sheet it was registered for (the receiver refuses callbacks for
// another), whether the webhook is created, found with a set stored before
// sheets were recorded, or found with its secret lost.
func TestEnsureWebhooksRecordsSheet(t *testing.T) {
	on := true
	existing := smartsheet.Webhook{ID: 30, CallbackURL: callbackURL, Scope: "sheet", ScopeObjectID: sourceID,
		Status: smartsheet.WebhookEnabled, Enabled: &on, Subscope: &smartsheet.Subscope{ColumnIDs: []int64{13, 14}}}
	tests := []struct {
		name        string
		have        []smartsheet.Webhook
		stored      map[int64]webhook.SecretSet
		wantActions []string
		wantSets    map[int64]webhook.SecretSet
	}{
		{name: "created", wantActions: []string{"created", "enabled"},
			wantSets: map[int64]webhook.SecretSet{41: {Current: "s3cr3t", SheetID: sourceID}}},
		{name: "stored before sheets were recorded", have: []smartsheet.Webhook{existing},
			stored:      map[int64]webhook.SecretSet{30: {Current: "old"}},
			wantActions: []string{"sheet-recorded"},
			wantSets:    map[int64]webhook.SecretSet{30: {Current: "old", SheetID: sourceID}}},
		{name: "recorded for another sheet", have: []smartsheet.Webhook{existing},
			stored:      map[int64]webhook.SecretSet{30: {Current: "old", SheetID: 99}},
			wantActions: []string{"sheet-recorded"},
			wantSets:    map[int64]webhook.SecretSet{30: {Current: "old", SheetID: sourceID}}},
		{name: "recorded", have: []smartsheet.Webhook{existing},
			stored:      map[int64]webhook.SecretSet{30: {Current: "old", SheetID: sourceID}},
			wantActions: []string{"kept"},
			wantSets:    map[int64]webhook.SecretSet{30: {Current: "old", SheetID: sourceID}}},
		{name: "secret lost", have: []smartsheet.Webhook{existing},
			wantActions: []string{"secret-reset"},
			wantSets:    map[int64]webhook.SecretSet{30: {Current: "n3w", SheetID: sourceID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, secrets := newFakeWebhookAPI(tt.have...), newFakeSecrets()
			ctx := context.Background()
			for id, set := range tt.stored {
				if err := secrets.PutSecretSet(ctx, id, set); err != nil {
					t.Fatal(err)
				}
			}
			target := []WebhookTarget{{Sheet: SheetRef{ID: sourceID}, ColumnIDs: []int64{13, 14}}}
			acts, err := EnsureWebhooks(ctx, api, secrets, callbackURL, target)
			if err != nil {
				t.Fatal(err)
			}
			if len(acts) != 1 || !cmp.Equal(acts[0].Actions, tt.wantActions) {
				t.Errorf("EnsureWebhooks() = %+v, want one action %v", acts, tt.wantActions)
			}
			for id, want := range tt.wantSets {
				got, ok, _ := secrets.SecretSet(ctx, id)
				if !ok || !cmp.Equal(got, want) {
					t.Errorf("EnsureWebhooks() stored for webhook %d %+v (found %v), want %+v", id, got, ok, want)
				}
			}
		})
	}
}

// TestResetWebhookSecretKeepsSheet: a rotation keeps the recorded sheet.
func TestResetWebhookSecretKeepsSheet(t *testing.T) {
	ctx := context.Background()
	api, secrets := newFakeWebhookAPI(), newFakeSecrets()
	if err := secrets.PutSecretSet(ctx, 30, webhook.SecretSet{Current: "old", SheetID: sourceID}); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	if err := ResetWebhookSecret(ctx, api, secrets, 30, time.Minute, at); err != nil {
		t.Fatal(err)
	}
	got, _, _ := secrets.SecretSet(ctx, 30)
	want := webhook.SecretSet{Current: "n3w", Previous: "old", PreviousUntil: at.Add(time.Minute), SheetID: sourceID}
	if !cmp.Equal(got, want) {
		t.Errorf("ResetWebhookSecret(30) stored %+v, want %+v", got, want)
	}
}

// TestEnsureWebhooksReplacesMoved: a webhook whose secret we hold is ours
// even when it calls another URL (the callback URL changed: a new path key,
// a new API): its sheet gets a webhook calling the current URL and the old
// one is deleted with its secret. Webhooks calling other URLs whose secret
// we do not hold belong to someone else and are left alone.
func TestEnsureWebhooksReplacesMoved(t *testing.T) {
	on := true
	const oldURL = "https://old.example.com/webhooks/smartsheet"
	hook := func(id, sheet int64, url string) smartsheet.Webhook {
		return smartsheet.Webhook{ID: id, CallbackURL: url, Scope: "sheet", ScopeObjectID: sheet,
			Status: smartsheet.WebhookEnabled, Enabled: &on, Subscope: &smartsheet.Subscope{ColumnIDs: []int64{13, 14}}}
	}
	ctx := context.Background()
	api := newFakeWebhookAPI(
		hook(30, sourceID, oldURL),                 // ours, moved
		hook(31, sourceID, "https://someone.else"), // not ours
		hook(32, 6, oldURL),                        // ours, moved, sheet no longer scanned
	)
	secrets := newFakeSecrets()
	for _, id := range []int64{30, 32} {
		if err := secrets.PutSecretSet(ctx, id, webhook.SecretSet{Current: "old"}); err != nil {
			t.Fatal(err)
		}
	}
	target := []WebhookTarget{{Sheet: SheetRef{ID: sourceID}, ColumnIDs: []int64{13, 14}}}
	acts, err := EnsureWebhooks(ctx, api, secrets, callbackURL, target)
	if err != nil {
		t.Fatal(err)
	}
	type act struct {
		Sheet, Webhook int64
		Actions        []string
	}
	var got []act
	for _, a := range acts {
		got = append(got, act{a.SheetID, a.WebhookID, a.Actions})
	}
	want := []act{{sourceID, 41, []string{"created", "enabled"}}, {sourceID, 30, []string{"deleted"}}, {6, 32, []string{"deleted"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("EnsureWebhooks() actions (-want +got):\n%s", diff)
	}
	hooks, _ := api.ListWebhooks(ctx)
	var left []int64
	for _, w := range hooks {
		left = append(left, w.ID)
	}
	if want := []int64{31, 41}; !cmp.Equal(left, want) {
		t.Errorf("EnsureWebhooks() left webhooks %v, want %v", left, want)
	}
	for id, want := range map[int64]bool{30: false, 32: false, 41: true} {
		if _, ok, _ := secrets.SecretSet(ctx, id); ok != want {
			t.Errorf("EnsureWebhooks() kept the secret of webhook %d: %v, want %v", id, ok, want)
		}
	}
}

// TestEnsureWebhooksKeepsMovedUntilReplaced: when its sheet's new webhook
// cannot be created, the webhook at the former URL stays (it may still be
// delivered), and is replaced by a later run.
func TestEnsureWebhooksKeepsMovedUntilReplaced(t *testing.T) {
	ctx := context.Background()
	api := newFakeWebhookAPI(smartsheet.Webhook{ID: 30, CallbackURL: "https://old.example.com/webhooks/smartsheet", Scope: "sheet",
		ScopeObjectID: sourceID, Status: smartsheet.WebhookEnabled})
	api.CreateWebhookFunc = func(context.Context, smartsheet.Webhook) (*smartsheet.Webhook, error) { return nil, errBoom }
	secrets := newFakeSecrets()
	if err := secrets.PutSecretSet(ctx, 30, webhook.SecretSet{Current: "old"}); err != nil {
		t.Fatal(err)
	}
	target := []WebhookTarget{{Sheet: SheetRef{ID: sourceID}, ColumnIDs: []int64{13, 14}}}
	if _, err := EnsureWebhooks(ctx, api, secrets, callbackURL, target); err == nil {
		t.Fatal("EnsureWebhooks(create fails) = nil error")
	}
	hooks, _ := api.ListWebhooks(ctx)
	if _, ok, _ := secrets.SecretSet(ctx, 30); len(hooks) != 1 || !ok {
		t.Errorf("EnsureWebhooks(create fails) left %d webhooks (secret of 30 kept: %v), want the moved one and its secret", len(hooks), ok)
	}
}
