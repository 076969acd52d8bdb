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
