package config

import (
	"errors"
	"fmt"
	"strings"
)

// Names of the Lambda functions' own variables (template.yaml sets them).
const (
	EnvTable            = "AUDIT_TABLE"
	EnvAnalysisQueueURL = "ANALYSIS_QUEUE_URL"
	EnvReportBucket     = "REPORT_BUCKET"
	EnvEventBus         = "EVENT_BUS_NAME"
	EnvWebhookQueueURL  = "WEBHOOK_QUEUE_URL"
	EnvTokenSecretARN   = "SMARTSHEET_TOKEN_SECRET_ARN"
	EnvWebhookSecrets   = "WEBHOOK_SECRETS_ARN"
	EnvRetentionDays    = "RETENTION_DAYS"
)

// Function is the configuration of a Lambda function: the audit settings of
// Config plus the names of the AWS resources it uses.
type Function struct {
	Config
	Table             string
	AnalysisQueueURL  string
	ReportBucket      string
	EventBus          string
	WebhookQueueURL   string
	TokenSecretARN    string
	WebhookSecretsARN string
	RetentionDays     int
}

// LoadFunction reads a function's configuration; the variables in need must
// be set. Errors name every variable at fault.
func LoadFunction(getenv Getenv, need ...string) (Function, error) {
	cfg, err := Load(getenv)
	errs := []error{err}
	p := parser{getenv: getenv}
	f := Function{
		Config:            cfg,
		Table:             p.raw(EnvTable),
		AnalysisQueueURL:  p.raw(EnvAnalysisQueueURL),
		ReportBucket:      p.raw(EnvReportBucket),
		EventBus:          p.raw(EnvEventBus),
		WebhookQueueURL:   p.raw(EnvWebhookQueueURL),
		TokenSecretARN:    p.raw(EnvTokenSecretARN),
		WebhookSecretsARN: p.raw(EnvWebhookSecrets),
		RetentionDays:     p.positive(EnvRetentionDays, 400),
	}
	var missing []string
	for _, n := range need {
		if p.raw(n) == "" {
			missing = append(missing, n)
		}
	}
	if len(missing) > 0 {
		errs = append(errs, fmt.Errorf("%s not set", strings.Join(missing, ", ")))
	}
	errs = append(errs, p.errs...)
	return f, errors.Join(errs...)
}
