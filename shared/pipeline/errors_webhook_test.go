package pipeline

import (
	"context"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The error paths of the webhook side (the sink, the registration) and of
// the queue envelope: each names the webhook, sheet or batch and the step.

const callbackURL = "https://audit.example.com/webhook"

func TestWebhookSinkErrors(t *testing.T) {
	edit := webhook.Callback{WebhookID: 9, SheetID: sourceID, Time: t0,
		Events: []webhook.Event{{ObjectType: "cell", EventType: "updated", RowID: 501, ColumnID: 13, UserID: 7, Time: t0}}}
	disabled := webhook.Callback{WebhookID: 9, SheetID: sourceID, Time: t0, NewStatus: "DISABLED_VERIFICATION_FAILED"}
	tests := []struct {
		name  string
		cb    webhook.Callback
		setup func(s *fakeStore, recs *fakeRecords, q *fakeRefreshQueue)
		want  string
	}{
		{
			name: "record a status change", cb: disabled,
			setup: func(s *fakeStore, _ *fakeRecords, _ *fakeRefreshQueue) {
				s.PutMetaFunc = func(context.Context, string, string) error { return errBoom }
			},
			want: "record the status of webhook 9: ",
		},
		{
			name: "store the records", cb: edit,
			setup: func(_ *fakeStore, recs *fakeRecords, _ *fakeRefreshQueue) {
				recs.PutRecordsFunc = func(context.Context, []webhook.Record) error { return errBoom }
			},
			want: "store the records of webhook 9 for sheet 5: ",
		},
		{
			name: "queue the refresh", cb: edit,
			setup: func(_ *fakeStore, _ *fakeRecords, q *fakeRefreshQueue) {
				q.SendRefreshFunc = func(context.Context, Refresh) error { return errBoom }
			},
			want: "queue refresh of sheet 5: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, _ := newFakeStore()
			recs := &fakeRecords{PutRecordsFunc: func(context.Context, []webhook.Record) error { return nil }}
			q := &fakeRefreshQueue{SendRefreshFunc: func(context.Context, Refresh) error { return nil }}
			tt.setup(store, recs, q)
			sink := &WebhookSink{Records: recs, Queue: q, Meta: store, Logger: newFixture(t).opts.Logger}
			checkErr(t, "Accept()", sink.Accept(context.Background(), tt.cb), tt.want, errBoom)
		})
	}
}

func TestLastWebhookStatusErrors(t *testing.T) {
	store, _ := newFakeStore()
	store.MetaFunc = func(context.Context, string) (string, bool, error) { return "", false, errBoom }
	_, _, err := LastWebhookStatus(context.Background(), store, 9)
	checkErr(t, "LastWebhookStatus(9)", err, "read the status of webhook 9: ", errBoom)
}

func TestEnsureWebhooksErrors(t *testing.T) {
	target := []WebhookTarget{{Sheet: SheetRef{ID: sourceID}, ColumnIDs: []int64{13, 14}}}
	stray := smartsheet.Webhook{ID: 42, CallbackURL: callbackURL, Scope: "sheet", ScopeObjectID: 6, Status: smartsheet.WebhookEnabled}
	tests := []struct {
		name  string
		have  []smartsheet.Webhook
		setup func(api *fakeWebhookAPI, secrets *fakeSecrets)
		want  string
	}{
		{
			name: "list",
			setup: func(api *fakeWebhookAPI, _ *fakeSecrets) {
				api.ListWebhooksFunc = func(context.Context) ([]smartsheet.Webhook, error) { return nil, errBoom }
			},
			want: "ensure webhooks: list webhooks: ",
		},
		{
			name: "create",
			setup: func(api *fakeWebhookAPI, _ *fakeSecrets) {
				api.CreateWebhookFunc = func(context.Context, smartsheet.Webhook) (*smartsheet.Webhook, error) { return nil, errBoom }
			},
			want: "webhook of sheet 5: create the webhook: ",
		},
		{
			name: "store the new secret",
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.PutSecretSetFunc = func(context.Context, int64, webhook.SecretSet) error { return errBoom }
			},
			want: "webhook of sheet 5: store secret of webhook 41: ",
		},
		{
			name: "enable",
			setup: func(api *fakeWebhookAPI, _ *fakeSecrets) {
				api.UpdateWebhookFunc = func(context.Context, int64, smartsheet.WebhookUpdate) (*smartsheet.Webhook, error) {
					return nil, errBoom
				}
			},
			want: "webhook of sheet 5: enable webhook 41: ",
		},
		{
			name: "record the sheet of a webhook stored without it",
			have: []smartsheet.Webhook{{ID: 30, CallbackURL: callbackURL, Scope: "sheet", ScopeObjectID: sourceID}},
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.SecretSetFunc = func(context.Context, int64) (webhook.SecretSet, bool, error) {
					return webhook.SecretSet{Current: "s"}, true, nil
				}
				secrets.PutSecretSetFunc = func(context.Context, int64, webhook.SecretSet) error { return errBoom }
			},
			want: "webhook of sheet 5: record the sheet of webhook 30: ",
		},
		{
			name: "read the secret of a webhook at another URL",
			have: []smartsheet.Webhook{{ID: 31, CallbackURL: "https://someone.else", Scope: "sheet", ScopeObjectID: 6}},
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.SecretSetFunc = func(context.Context, int64) (webhook.SecretSet, bool, error) {
					return webhook.SecretSet{}, false, errBoom
				}
			},
			want: "read the secret of webhook 31 (callback URL changed?): ",
		},
		{
			name: "delete the webhook of a sheet no longer scanned", have: []smartsheet.Webhook{stray},
			setup: func(api *fakeWebhookAPI, _ *fakeSecrets) {
				api.DeleteWebhookFunc = func(context.Context, int64) error { return errBoom }
			},
			want: "delete webhook 42 of sheet 6: ",
		},
		{
			name: "delete its secret", have: []smartsheet.Webhook{stray},
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.DeleteSecretSetFunc = func(context.Context, int64) error { return errBoom }
			},
			want: "delete the secret of webhook 42: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, secrets := newFakeWebhookAPI(tt.have...), newFakeSecrets()
			tt.setup(api, secrets)
			_, err := EnsureWebhooks(context.Background(), api, secrets, callbackURL, target)
			checkErr(t, "EnsureWebhooks()", err, tt.want, errBoom)
		})
	}
}

// TestRunnerEnsureWebhooksErrors: the targets of a never-scanned sheet come
// from its columns; failing to read them names the sheet.
func TestRunnerEnsureWebhooksErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(f *fixture)
		want  string
	}{
		{
			name: "the sheet's state",
			setup: func(f *fixture) {
				f.store.SheetStateFunc = func(context.Context, int64) (SheetState, bool, error) { return SheetState{}, false, errBoom }
			},
			want: "ensure webhooks: read the state of sheet 5: ",
		},
		{
			name: "the sheet's columns",
			setup: func(f *fixture) {
				f.sources.GetSheetFunc = func(context.Context, int64, smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
					return nil, false, errBoom
				}
			},
			want: "ensure webhooks: read the columns of sheet 5: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.opts.WebhookCallbackURL, f.opts.WebhookAPI, f.opts.WebhookSecrets = callbackURL, newFakeWebhookAPI(), newFakeSecrets()
			tt.setup(f)
			_, err := f.runner(t).EnsureWebhooks(context.Background(), []SheetRef{{ID: sourceID}})
			checkErr(t, "EnsureWebhooks(5)", err, tt.want, errBoom)
		})
	}
}

func TestResetWebhookSecretErrors(t *testing.T) {
	tests := []struct {
		name  string
		setup func(api *fakeWebhookAPI, secrets *fakeSecrets)
		want  string
	}{
		{
			name: "read the secret",
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.SecretSetFunc = func(context.Context, int64) (webhook.SecretSet, bool, error) {
					return webhook.SecretSet{}, false, errBoom
				}
			},
			want: "read the secret of webhook 41: ",
		},
		{
			name: "reset it",
			setup: func(api *fakeWebhookAPI, _ *fakeSecrets) {
				api.ResetSharedSecretFunc = func(context.Context, int64) (string, error) { return "", errBoom }
			},
			want: "reset the secret of webhook 41: ",
		},
		{
			name: "store the new one",
			setup: func(_ *fakeWebhookAPI, secrets *fakeSecrets) {
				secrets.PutSecretSetFunc = func(context.Context, int64, webhook.SecretSet) error { return errBoom }
			},
			want: "store new secret of webhook 41: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api, secrets := newFakeWebhookAPI(), newFakeSecrets()
			tt.setup(api, secrets)
			err := ResetWebhookSecret(context.Background(), api, secrets, 41, time.Minute, t0)
			checkErr(t, "ResetWebhookSecret(41)", err, tt.want, errBoom)
		})
	}
}

func TestSheetWorkEnvelope(t *testing.T) {
	w := SheetWork{RunID: runR1, Sheet: SheetRef{ID: sourceID, Name: "Crew A"}, StartedAt: t0, Resume: true, Attempt: 3}
	body, err := EncodeSheetWork(w)
	if err != nil {
		t.Fatal(err)
	}
	got, ok, err := DecodeSheetWork(body)
	w.Attempt = 0 // the delivery's, not the message's
	if !ok || err != nil || got != w {
		t.Errorf("DecodeSheetWork(EncodeSheetWork(w)) = %+v, %v, %v; want %+v", got, ok, err, w)
	}
	tests := []struct {
		body   string
		wantOK bool
	}{
		{body: `{"kind":"refresh","sheetId":5}`},
		{body: `not json`},
		{body: `{"kind":"sheet","sheet":{"id":5}}`, wantOK: true},
		{body: `{"kind":"sheet","runId":"r"}`, wantOK: true},
	}
	for _, tt := range tests {
		_, ok, err := DecodeSheetWork([]byte(tt.body))
		if ok != tt.wantOK || (ok && err == nil) {
			t.Errorf("DecodeSheetWork(%s) = ok %v, %v; want ok %v and an error when ok", tt.body, ok, err, tt.wantOK)
		}
	}
}
