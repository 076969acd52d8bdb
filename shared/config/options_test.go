package config

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

// Function-field fakes of the ports; the embedded interfaces are never
// called, they only make the types satisfy the ports.
type fakeRecords struct {
	records func(ctx context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error)
}

func (f fakeRecords) Records(ctx context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error) {
	return f.records(ctx, sheetID, rowID, columnID, from, to)
}

type fakeUsers struct {
	getUser func(ctx context.Context, id int64) (*smartsheet.UserProfile, error)
}

func (f fakeUsers) GetUser(ctx context.Context, id int64) (*smartsheet.UserProfile, error) {
	return f.getUser(ctx, id)
}

type (
	fakeWebhookAPI     struct{ pipeline.WebhookAPI }
	fakeWebhookSecrets struct{ pipeline.WebhookSecretStore }
	fakeSigner         struct{ pipeline.Signer }
	fakeDigests        struct{ pipeline.DigestStore }
)

// optionValues are the plain values of pipeline.Options, for cmp.
type optionValues struct {
	Track                              []string
	Zone                               string
	Grace                              time.Duration
	High, Medium                       string
	Sheets, Folders                    []int64
	AuditSheetID                       int64
	SkipHistory, SkipWriter, TestMode  bool
	PerMinute, HistoryPerMinute        int
	CallbackURL                        string
	HasWebhookAPI, HasWebhookSecrets   bool
	HasSigner, HasDigests, HasWebhooks bool
	AlertChannels                      []string
	AlertMinRisk                       audit.Risk
	AlertDigestOver                    int
}

func valuesOf(o pipeline.Options) optionValues {
	return optionValues{
		Track: o.Audit.TrackColumns, Zone: o.Audit.Location.String(), Grace: o.Audit.Grace,
		High: o.Audit.HighRisk.String(), Medium: o.Audit.MediumRisk.String(),
		Sheets: o.SourceSheetIDs, Folders: o.SourceFolderIDs, AuditSheetID: o.AuditSheetID,
		SkipHistory: o.SkipCellHistory, SkipWriter: o.SkipWriterInfo, TestMode: o.TestMode,
		PerMinute: o.RequestsPerMinute, HistoryPerMinute: o.HistoryPerMinute, CallbackURL: o.WebhookCallbackURL,
		HasWebhookAPI: o.WebhookAPI != nil, HasWebhookSecrets: o.WebhookSecrets != nil,
		HasSigner: o.Signer != nil, HasDigests: o.Digests != nil, HasWebhooks: o.Webhooks != nil,
		AlertChannels: channelNames(o.Alerts), AlertMinRisk: o.AlertMinRisk, AlertDigestOver: o.AlertDigestOver,
	}
}

func channelNames(cs []pipeline.AlertChannel) []string {
	var out []string
	for _, c := range cs {
		out = append(out, c.Name)
	}
	return out
}

type fakeNotifier struct{ pipeline.Notifier }

func TestPipelineOptions(t *testing.T) {
	settings := map[string]string{
		"SOURCE_SHEET_IDS": "11,12", "SOURCE_FOLDER_IDS": "9", "AUDIT_SHEET_ID": "77", "TRACK_COLUMNS": "Pole #",
		"AUDIT_TIMEZONE": "America/Chicago", "GRACE_PERIOD": "36h", "HIGH_RISK_THRESHOLD": "5000",
		"MEDIUM_RISK_THRESHOLD": "250", "SKIP_CELL_HISTORY": "true", "SKIP_WRITER_INFO": "true", "TEST_MODE": "true",
		"SMARTSHEET_REQUESTS_PER_MINUTE": "120", "SMARTSHEET_HISTORY_PER_MINUTE": "10",
		"WEBHOOK_CALLBACK_URL": "https://hooks.example.com/webhooks/smartsheet",
		"ALERT_MIN_RISK":       "MEDIUM", "ALERT_DIGEST_OVER": "3",
	}
	fromSettings := optionValues{
		Track: []string{"Pole #"}, Zone: "America/Chicago", Grace: 36 * time.Hour, High: "5000", Medium: "250",
		Sheets: []int64{11, 12}, Folders: []int64{9}, AuditSheetID: 77, SkipHistory: true, SkipWriter: true, TestMode: true,
		PerMinute: 120, HistoryPerMinute: 10, CallbackURL: "https://hooks.example.com/webhooks/smartsheet",
		AlertMinRisk: audit.RiskMedium, AlertDigestOver: 3,
	}
	records := fakeRecords{records: func(_ context.Context, sheetID, rowID, columnID int64, _, _ time.Time) ([]webhook.Record, error) {
		return []webhook.Record{{SheetID: sheetID, RowID: rowID, ColumnID: columnID, UserID: 42, Time: time.Date(2026, 11, 23, 14, 7, 31, 0, time.UTC)}}, nil
	}}
	users := fakeUsers{getUser: func(_ context.Context, id int64) (*smartsheet.UserProfile, error) {
		return &smartsheet.UserProfile{ID: id, Email: "dana.reyes@example.com", Name: "Dana Reyes"}, nil
	}}
	tests := []struct {
		name  string
		env   map[string]string
		ports Ports
		want  optionValues
	}{
		{name: "defaults, no adapters", env: map[string]string{},
			want: optionValues{Zone: "UTC", High: "1000", Medium: "100", PerMinute: DefaultRequestsPM, HistoryPerMinute: DefaultHistoryPM,
				AlertMinRisk: audit.RiskHigh, AlertDigestOver: 10}},
		{name: "CLI: every adapter", env: settings,
			ports: Ports{WebhookRecords: records, Users: users, WebhookAPI: fakeWebhookAPI{}, WebhookSecrets: fakeWebhookSecrets{},
				Signer: fakeSigner{}, Digests: fakeDigests{}},
			want: func() optionValues {
				v := fromSettings
				v.HasWebhookAPI, v.HasWebhookSecrets, v.HasSigner, v.HasDigests, v.HasWebhooks = true, true, true, true, true
				return v
			}()},
		{name: "analyze Lambda: attribution and alerts", env: settings,
			ports: Ports{WebhookRecords: records, Users: users, Alerts: []pipeline.AlertChannel{
				{Name: "slack", Notifier: fakeNotifier{}}, {Name: "sns", Notifier: fakeNotifier{}}}},
			want: func() optionValues {
				v := fromSettings
				v.HasWebhooks, v.AlertChannels = true, []string{"slack", "sns"}
				return v
			}()},
		{name: "CLI verify before setup: digests without a signer", env: settings,
			ports: Ports{WebhookRecords: records, Users: users, Digests: fakeDigests{}},
			want:  func() optionValues { v := fromSettings; v.HasWebhooks, v.HasDigests = true, true; return v }()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := Load(env(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			got := cfg.PipelineOptions(tt.ports)
			if diff := cmp.Diff(tt.want, valuesOf(got)); diff != "" {
				t.Errorf("PipelineOptions(%v) mismatch (-want +got):\n%s", tt.env, diff)
			}
		})
	}
}

// The first attributor of the chain reads the webhook records and names
// their users through the ports given.
func TestPipelineOptionsAttribution(t *testing.T) {
	at := time.Date(2026, 11, 23, 14, 7, 31, 0, time.UTC)
	records := fakeRecords{records: func(_ context.Context, sheetID, rowID, columnID int64, _, _ time.Time) ([]webhook.Record, error) {
		return []webhook.Record{{SheetID: sheetID, RowID: rowID, ColumnID: columnID, UserID: 42, Time: at}}, nil
	}}
	users := fakeUsers{getUser: func(_ context.Context, id int64) (*smartsheet.UserProfile, error) {
		if id != 42 {
			t.Errorf("GetUser(%d), want 42", id)
		}
		return &smartsheet.UserProfile{ID: id, Email: "dana.reyes@example.com", Name: "Dana Reyes"}, nil
	}}
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	opts := cfg.PipelineOptions(Ports{Logger: slog.New(slog.DiscardHandler), WebhookRecords: records, Users: users})
	c := &audit.Change{SheetID: 1, RowID: 2, ColumnID: 3, Kind: audit.KindValueChanged}
	got, ok, err := opts.Webhooks.Attribute(context.Background(), c)
	if err != nil || !ok || got.User != "dana.reyes@example.com" || got.Name != "Dana Reyes" {
		t.Errorf("Webhooks.Attribute(%+v) = %+v, %t, %v; want Dana Reyes from the webhook record", c, got, ok, err)
	}
}
