package config

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) Getenv { return func(k string) string { return m[k] } }

func TestLoadDefaults(t *testing.T) {
	c, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty) error = %v, want nil", err)
	}
	if c.BaseURL != DefaultBaseURL || c.Location != time.UTC || c.Grace != 0 ||
		c.HighRisk.String() != "1000" || c.MediumRisk.String() != "100" || c.StateDir != DefaultStateDir ||
		c.WebhookCallbackURL != "" || c.WebhookSecretOverlap != DefaultSecretOverlap ||
		c.AlertSlackWebhookURL != "" || c.AlertTeamsWebhookURL != "" || c.AlertMinRisk != "HIGH" || c.AlertDigestOver != 10 {
		t.Errorf("Load(empty) = %+v, want defaults", c)
	}
}

func TestLoadValues(t *testing.T) {
	c, err := Load(env(map[string]string{
		"SMARTSHEET_API_TOKEN": "tok-123", "SOURCE_SHEET_IDS": "1, 2,3", "SOURCE_FOLDER_IDS": "9",
		"TRACK_COLUMNS": "Pole #, Work Type", "AUDIT_TIMEZONE": "America/Chicago", "GRACE_PERIOD": "36h",
		"HIGH_RISK_THRESHOLD": "5000", "MEDIUM_RISK_THRESHOLD": "250.50", "SKIP_CELL_HISTORY": "true",
		"SKIP_WRITER_INFO": "TRUE",
		"TEST_MODE":        "1", "AUDIT_SHEET_ID": "77",
		"WEBHOOK_CALLBACK_URL": "https://hooks.example.com/webhooks/smartsheet", "WEBHOOK_SECRET_OVERLAP": "30m",
		"ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T0/B0/x", "ALERT_TEAMS_WEBHOOK_URL": " https://prod.example.com/workflows/1 ",
		"ALERT_MIN_RISK": "medium", "ALERT_DIGEST_OVER": "25",
	}))
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	if got := fmt.Sprint(c.SourceSheetIDs, c.SourceFolderIDs, c.TrackColumns); got != "[1 2 3] [9] [Pole # Work Type]" {
		t.Errorf("ids/columns = %s", got)
	}
	if c.Location.String() != "America/Chicago" || c.Grace != 36*time.Hour || !c.SkipCellHistory || !c.SkipWriterInfo || !c.TestMode ||
		c.AuditSheetID != 77 || c.MediumRisk.String() != "250.5" ||
		c.WebhookCallbackURL != "https://hooks.example.com/webhooks/smartsheet" || c.WebhookSecretOverlap != 30*time.Minute ||
		c.AlertSlackWebhookURL.Reveal() != "https://hooks.slack.com/services/T0/B0/x" ||
		c.AlertTeamsWebhookURL.Reveal() != "https://prod.example.com/workflows/1" || c.AlertMinRisk != "MEDIUM" || c.AlertDigestOver != 25 {
		t.Errorf("Load() = %+v", c)
	}
}

func TestLoadErrorsNameTheVariable(t *testing.T) {
	tests := []struct {
		name, key, value string
	}{
		{"bad ids", "SOURCE_SHEET_IDS", "12,abc"},
		{"bad zone", "AUDIT_TIMEZONE", "Mars/Olympus"},
		{"bad grace", "GRACE_PERIOD", "two days"},
		{"bad money", "HIGH_RISK_THRESHOLD", "$1,2O0"},
		{"negative money", "MEDIUM_RISK_THRESHOLD", "-5"},
		{"bad bool", "SKIP_CELL_HISTORY", "perhaps"},
		{"bad sheet id", "AUDIT_SHEET_ID", "-3"},
		{"bad url", "SMARTSHEET_BASE_URL", "ftp://x"},
		{"bad rate", "SMARTSHEET_REQUESTS_PER_MINUTE", "0"},
		{"bad callback", "WEBHOOK_CALLBACK_URL", "hooks.example.com/x"},
		{"bad overlap", "WEBHOOK_SECRET_OVERLAP", "0s"},
		{"bad slack url", "ALERT_SLACK_WEBHOOK_URL", "hooks.slack.com/services/x"},
		{"bad teams url", "ALERT_TEAMS_WEBHOOK_URL", "ftp://x"},
		{"bad risk", "ALERT_MIN_RISK", "SEVERE"},
		{"bad digest", "ALERT_DIGEST_OVER", "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(env(map[string]string{tt.key: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.key) {
				t.Errorf("Load(%s=%q) error = %v, want one naming %s", tt.key, tt.value, err, tt.key)
			}
		})
	}
}

// TestCheckAlertURL: an alert webhook URL is a credential (its path) and
// carries the alert; it goes over https, or plain http to this machine only
// (the tests' receivers), and the error never quotes it.
func TestCheckAlertURL(t *testing.T) {
	tests := []struct {
		name, url string
		wantErr   string // "" when accepted
	}{
		{name: "slack", url: "https://hooks.slack.com/services/T0/B0/secret"},
		{name: "teams workflow", url: "https://prod-01.westus.logic.azure.com/workflows/1/triggers/manual/paths/invoke?sig=secret"},
		{name: "local receiver", url: "http://127.0.0.1:9999/slack"},
		{name: "http to slack", url: "http://hooks.slack.com/services/T0/B0/secret", wantErr: `got host "hooks.slack.com"`},
		{name: "http to a private address", url: "http://10.1.2.3/hook/secret", wantErr: "in clear text"},
		{name: "another scheme", url: "ftp://hooks.slack.com/secret", wantErr: "must start with https://"},
		{name: "no scheme", url: "hooks.slack.com/services/secret", wantErr: "must be an absolute https:// URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckAlertURL(tt.url)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckAlertURL(%q) = %v, want nil", tt.url, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("CheckAlertURL(%q) = %v, want an error with %q", tt.url, err, tt.wantErr)
			case err != nil && strings.Contains(err.Error(), "secret"):
				t.Errorf("CheckAlertURL error %q quotes the URL", err)
			}
		})
	}
}

// TestLoadBaseURLKeepsTheTokenOffClearText: every request carries the token,
// so the API root is https://, or http:// to this machine only.
func TestLoadBaseURLKeepsTheTokenOffClearText(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		wantErr string // "" when accepted; otherwise part of the error, which always names the variable
	}{
		{name: "default", url: DefaultBaseURL},
		{name: "EU region", url: "https://api.smartsheet.eu/2.0"},
		{name: "https to an address", url: "https://10.0.0.5:8443/2.0"},
		{name: "simulator on 127.0.0.1", url: "http://127.0.0.1:8089/2.0"},
		{name: "anywhere in 127.0.0.0/8", url: "http://127.9.9.9:8089"},
		{name: "localhost", url: "http://localhost:8089/2.0"},
		{name: "localhost in capitals", url: "http://LOCALHOST:8089"},
		{name: "IPv6 loopback", url: "http://[::1]:8089/2.0"},
		{name: "IPv4-mapped loopback", url: "http://[::ffff:127.0.0.1]:8089"},
		{name: "http to Smartsheet", url: "http://api.smartsheet.com/2.0", wantErr: `got host "api.smartsheet.com"`},
		{name: "http to a private address", url: "http://10.0.0.5:8089/2.0", wantErr: "in clear text"},
		{name: "http just outside 127.0.0.0/8", url: "http://128.0.0.1:8089", wantErr: "in clear text"},
		{name: "http to a name that only starts like localhost", url: "http://localhost.example.com", wantErr: "in clear text"},
		{name: "http to a name that embeds a loopback address", url: "http://127.0.0.1.nip.io", wantErr: "in clear text"},
		{name: "http to an IPv6 address", url: "http://[2001:db8::1]:8089", wantErr: "in clear text"},
		{name: "another scheme", url: "ftp://api.smartsheet.com", wantErr: "must start with https://"},
		{name: "no scheme", url: "api.smartsheet.com/2.0", wantErr: "must be an absolute URL"},
		{name: "no host", url: "https://", wantErr: "must be an absolute URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(env(map[string]string{"SMARTSHEET_BASE_URL": tt.url}))
			if tt.wantErr == "" {
				if err != nil || c.BaseURL != tt.url {
					t.Errorf("Load(SMARTSHEET_BASE_URL=%q) = %q, %v, want %q, nil", tt.url, c.BaseURL, err, tt.url)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "SMARTSHEET_BASE_URL") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Load(SMARTSHEET_BASE_URL=%q) error = %v, want one naming SMARTSHEET_BASE_URL with %q", tt.url, err, tt.wantErr)
			}
		})
	}
}

func TestSecretNeverPrints(t *testing.T) {
	c, _ := Load(env(map[string]string{"SMARTSHEET_API_TOKEN": "very-secret-token",
		"ALERT_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/very-secret-slack", "ALERT_TEAMS_WEBHOOK_URL": "https://x/very-secret-teams"}))
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%+v", c), fmt.Sprintf("%#v", c), c.Token.String()} {
		for _, secret := range []string{"very-secret-token", "very-secret-slack", "very-secret-teams"} {
			if strings.Contains(s, secret) {
				t.Fatalf("formatted config leaks %s: %s", secret, s)
			}
		}
	}
	// A bad URL is reported without its value.
	_, err := Load(env(map[string]string{"ALERT_SLACK_WEBHOOK_URL": "hooks.slack.com/very-secret-slack"}))
	if err == nil || strings.Contains(err.Error(), "very-secret-slack") {
		t.Errorf("Load(bad ALERT_SLACK_WEBHOOK_URL) error = %v, want one without the value", err)
	}
	if c.Token.Reveal() != "very-secret-token" {
		t.Errorf("Reveal() = %q", c.Token.Reveal())
	}
}

func TestParseEnv(t *testing.T) {
	got, err := parseEnv(strings.NewReader("# comment\nexport A=1\nB = \"two words\"\n\nC='x=y'\n"), "t")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != "map[A:1 B:two words C:x=y]" {
		t.Errorf("parseEnv() = %v", got)
	}
	if _, err := parseEnv(strings.NewReader("NOVALUE\n"), "t"); err == nil || !strings.Contains(err.Error(), "t:1") {
		t.Errorf("parseEnv(bad) error = %v, want line number", err)
	}
}

func TestLoadFunction(t *testing.T) {
	f, err := LoadFunction(env(map[string]string{EnvTable: "audit", EnvAnalysisQueueURL: "http://q", "AUDIT_TIMEZONE": "America/Chicago"}), EnvTable, EnvAnalysisQueueURL)
	if err != nil || f.Table != "audit" || f.AnalysisQueueURL != "http://q" || f.Location.String() != "America/Chicago" || f.RetentionDays != 400 {
		t.Fatalf("LoadFunction() = %+v, %v", f, err)
	}
	_, err = LoadFunction(env(map[string]string{EnvTable: "audit", "RETENTION_DAYS": "x"}), EnvTable, EnvEventBus, EnvTokenSecretARN)
	for _, want := range []string{EnvEventBus, EnvTokenSecretARN, "RETENTION_DAYS"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadFunction(missing) error = %v, want it to name %s", err, want)
		}
	}
}
