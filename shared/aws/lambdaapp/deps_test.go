package lambdaapp

import (
	"context"
	"strings"
	"testing"

	"github.com/fieldaudit/billing-audit/shared/config"
)

// Each function needs its own variables only, and a cold start without one
// fails before any AWS call, naming every one missing.
func TestNewNeeds(t *testing.T) {
	tests := []struct {
		name     string
		new      func(context.Context, config.Getenv) error
		env      map[string]string
		wantMiss []string
		wantNot  []string // variables of other functions, never asked for
	}{
		{name: "scan", new: func(ctx context.Context, g config.Getenv) error { _, err := newScan(ctx, g); return err },
			wantMiss: []string{config.EnvTable, config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvTokenSecretARN},
			wantNot:  []string{config.EnvReportBucket, config.EnvWebhookSecrets, config.EnvWebhookQueueURL, config.EnvDigestKeyID, config.EnvDigestBucket}},
		{name: "scan keeping webhooks", new: func(ctx context.Context, g config.Getenv) error { _, err := newScan(ctx, g); return err },
			env:      map[string]string{"WEBHOOK_CALLBACK_URL": "https://x.execute-api.us-east-1.amazonaws.com/webhooks/smartsheet"},
			wantMiss: []string{config.EnvWebhookSecrets}},
		{name: "analyze", new: func(ctx context.Context, g config.Getenv) error { _, err := newAnalyze(ctx, g); return err },
			wantMiss: []string{config.EnvTable, config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvTokenSecretARN},
			wantNot:  []string{config.EnvReportBucket, config.EnvWebhookSecrets, config.EnvWebhookQueueURL, config.EnvDigestKeyID}},
		{name: "report", new: func(ctx context.Context, g config.Getenv) error { _, err := newReport(ctx, g); return err },
			wantMiss: []string{config.EnvTable, config.EnvReportBucket, config.EnvDigestKeyID, config.EnvDigestBucket, config.EnvTokenSecretARN},
			wantNot:  []string{config.EnvAnalysisQueueURL, config.EnvEventBus, config.EnvWebhookSecrets, config.EnvWebhookQueueURL}},
		{name: "webhook", new: func(ctx context.Context, g config.Getenv) error { _, err := newWebhook(ctx, g); return err },
			wantMiss: []string{config.EnvTable, config.EnvWebhookQueueURL, config.EnvWebhookSecrets},
			wantNot:  []string{config.EnvTokenSecretARN, config.EnvAnalysisQueueURL, config.EnvReportBucket, config.EnvDigestKeyID}},
		{name: "bad LOG_LEVEL", new: func(ctx context.Context, g config.Getenv) error { _, err := newWebhook(ctx, g); return err },
			env:      map[string]string{config.EnvTable: "t", config.EnvWebhookQueueURL: "q", config.EnvWebhookSecrets: "s", config.EnvLogLevel: "TRACE"},
			wantMiss: []string{config.EnvLogLevel}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.new(context.Background(), env(tt.env))
			if err == nil {
				t.Fatalf("new%s(%v) error = nil, want one naming %v", tt.name, tt.env, tt.wantMiss)
			}
			for _, v := range tt.wantMiss {
				if !strings.Contains(err.Error(), v) {
					t.Errorf("new%s(%v) error = %q, want it to name %s", tt.name, tt.env, err, v)
				}
			}
			for _, v := range tt.wantNot {
				if strings.Contains(err.Error(), v) {
					t.Errorf("new%s(%v) error = %q, names %s, which this function does not use", tt.name, tt.env, err, v)
				}
			}
		})
	}
}
