// Package config reads the operator CLI's settings from environment variables
// (and an optional .env file) into one typed struct, failing fast with the
// variable's name, and the Lambda functions' (LoadFunction). Every variable is
// documented in README.md and .env.example. It also turns the settings into
// the pipeline's options (PipelineOptions), the one builder the CLI and the
// Lambdas share.
package config

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/shopspring/decimal"
)

// Defaults.
const (
	DefaultBaseURL       = "https://api.smartsheet.com/2.0"
	DefaultChangeAgent   = "billing-audit"
	DefaultAuditSheet    = "Billing Audit Log"
	DefaultStateDir      = ".state"
	DefaultOutputDir     = "out"
	DefaultRetryBudget   = 3 * time.Minute
	DefaultRequestsPM    = 300
	DefaultHistoryPM     = 30
	DefaultSecretOverlap = 10 * time.Minute
	defaultHighRisk      = "1000"
	defaultMediumRisk    = "100"
	defaultAuditTZ       = "UTC"
	envFileDefaultName   = ".env"
	secretRedactedValue  = "[redacted]"
)

// Config is every setting of a run.
type Config struct {
	Token             Secret
	BaseURL           string
	ChangeAgent       string
	AuditSheetID      int64
	AuditSheetName    string
	SourceSheetIDs    []int64
	SourceFolderIDs   []int64
	TrackColumns      []string
	Location          *time.Location
	Grace             time.Duration
	HighRisk          decimal.Decimal
	MediumRisk        decimal.Decimal
	SkipCellHistory   bool
	SkipWriterInfo    bool
	StateDir          string
	OutputDir         string
	TestMode          bool
	RetryBudget       time.Duration
	RequestsPerMinute int
	HistoryPerMinute  int
	AnonymizeUsers    bool
	AnonymizeKey      Secret
	// WebhookCallbackURL, when set, makes every run register one webhook per
	// source sheet calling it (empty: no webhooks, the scan alone).
	WebhookCallbackURL string
	// WebhookSecretOverlap is how long a rotated webhook secret stays valid.
	WebhookSecretOverlap time.Duration
	// AlertSlackWebhookURL and AlertTeamsWebhookURL are the alert channels'
	// webhooks (empty: that channel off). They are credentials: Secret, so
	// never printed; in AWS they come from Secrets Manager instead
	// (ALERT_WEBHOOKS_SECRET_ARN).
	AlertSlackWebhookURL Secret
	AlertTeamsWebhookURL Secret
	// AlertMinRisk is the least risk of an unauthorized change alerted;
	// AlertDigestOver the most alerts of one send posted one by one.
	AlertMinRisk    audit.Risk
	AlertDigestOver int
}

// Secret is a string that never prints.
type Secret string

// String redacts.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return secretRedactedValue
}

// GoString redacts.
func (s Secret) GoString() string { return s.String() }

// LogValue redacts for log/slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Reveal returns the secret for the one place that needs it.
func (s Secret) Reveal() string { return string(s) }

// Getenv looks a variable up; os.Getenv fits, and so does a map in tests.
type Getenv func(string) string

// Load reads the configuration. Errors name the variable at fault; all of them
// are reported together.
func Load(getenv Getenv) (Config, error) {
	p := parser{getenv: getenv}
	c := Config{
		Token:                Secret(strings.TrimSpace(getenv("SMARTSHEET_API_TOKEN"))),
		BaseURL:              p.str("SMARTSHEET_BASE_URL", DefaultBaseURL),
		ChangeAgent:          p.str("SMARTSHEET_CHANGE_AGENT", DefaultChangeAgent),
		AuditSheetID:         p.int64("AUDIT_SHEET_ID"),
		AuditSheetName:       p.str("AUDIT_SHEET_NAME", DefaultAuditSheet),
		SourceSheetIDs:       p.ids("SOURCE_SHEET_IDS"),
		SourceFolderIDs:      p.ids("SOURCE_FOLDER_IDS"),
		TrackColumns:         p.list("TRACK_COLUMNS"),
		Location:             p.location("AUDIT_TIMEZONE"),
		Grace:                p.duration("GRACE_PERIOD", 0),
		HighRisk:             p.decimal("HIGH_RISK_THRESHOLD", defaultHighRisk),
		MediumRisk:           p.decimal("MEDIUM_RISK_THRESHOLD", defaultMediumRisk),
		SkipCellHistory:      p.bool("SKIP_CELL_HISTORY"),
		SkipWriterInfo:       p.bool("SKIP_WRITER_INFO"),
		StateDir:             p.str("STATE_DIR", DefaultStateDir),
		OutputDir:            p.str("OUTPUT_DIR", DefaultOutputDir),
		TestMode:             p.bool("TEST_MODE"),
		RetryBudget:          p.duration("SMARTSHEET_RETRY_BUDGET", DefaultRetryBudget),
		RequestsPerMinute:    p.positive("SMARTSHEET_REQUESTS_PER_MINUTE", DefaultRequestsPM),
		HistoryPerMinute:     p.positive("SMARTSHEET_HISTORY_PER_MINUTE", DefaultHistoryPM),
		AnonymizeUsers:       p.bool("ANONYMIZE_USERS"),
		AnonymizeKey:         Secret(getenv("ANONYMIZE_KEY")),
		WebhookCallbackURL:   p.str("WEBHOOK_CALLBACK_URL", ""),
		WebhookSecretOverlap: p.duration("WEBHOOK_SECRET_OVERLAP", DefaultSecretOverlap),
		AlertSlackWebhookURL: Secret(strings.TrimSpace(getenv("ALERT_SLACK_WEBHOOK_URL"))),
		AlertTeamsWebhookURL: Secret(strings.TrimSpace(getenv("ALERT_TEAMS_WEBHOOK_URL"))),
		AlertMinRisk:         audit.Risk(strings.ToUpper(p.str("ALERT_MIN_RISK", string(pipeline.DefaultAlertMinRisk)))),
		AlertDigestOver:      p.positive("ALERT_DIGEST_OVER", pipeline.DefaultAlertDigestOver),
	}
	if err := checkBaseURL(c.BaseURL); err != nil {
		p.fail("SMARTSHEET_BASE_URL", err.Error())
	}
	if c.MediumRisk.GreaterThan(c.HighRisk) {
		p.fail("MEDIUM_RISK_THRESHOLD", "must not exceed HIGH_RISK_THRESHOLD")
	}
	if u := c.WebhookCallbackURL; u != "" && !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
		p.fail("WEBHOOK_CALLBACK_URL", "must start with http:// or https://")
	}
	if c.WebhookSecretOverlap <= 0 {
		p.fail("WEBHOOK_SECRET_OVERLAP", "must be positive")
	}
	for name, u := range map[string]Secret{"ALERT_SLACK_WEBHOOK_URL": c.AlertSlackWebhookURL, "ALERT_TEAMS_WEBHOOK_URL": c.AlertTeamsWebhookURL} {
		if u != "" {
			if err := CheckAlertURL(u.Reveal()); err != nil {
				p.fail(name, err.Error())
			}
		}
	}
	if !slices.Contains([]audit.Risk{audit.RiskLow, audit.RiskMedium, audit.RiskHigh}, c.AlertMinRisk) {
		p.fail("ALERT_MIN_RISK", "must be LOW, MEDIUM or HIGH")
	}
	if c.Grace < 0 {
		p.fail("GRACE_PERIOD", "must not be negative")
	}
	if c.AnonymizeUsers && c.AnonymizeKey == "" {
		p.fail("ANONYMIZE_KEY", "is required when ANONYMIZE_USERS=true")
	}
	return c, errors.Join(p.errs...)
}

// RequireToken reports a missing SMARTSHEET_API_TOKEN.
func (c Config) RequireToken() error {
	if c.Token == "" {
		return errors.New("SMARTSHEET_API_TOKEN is not set")
	}
	return nil
}

// RequireSources reports a run with nothing to scan.
func (c Config) RequireSources() error {
	if len(c.SourceSheetIDs) == 0 && len(c.SourceFolderIDs) == 0 {
		return errors.New("SOURCE_SHEET_IDS or SOURCE_FOLDER_IDS must name at least one sheet or folder")
	}
	return nil
}

type parser struct {
	getenv Getenv
	errs   []error
}

// checkBaseURL refuses an API root the token would cross a network to in
// clear text: every request carries it in its Authorization header. So https://
// always, and http:// only to this machine (127.0.0.0/8, ::1, localhost), which
// is where the simulator and the tests' servers listen.
func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("must be an absolute URL such as %s, got %q", DefaultBaseURL, raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("must start with https:// (http:// is allowed to a loopback host only: 127.0.0.0/8, ::1, "+
			"localhost), got host %q: the API token would cross the network in clear text", u.Hostname())
	default:
		return fmt.Errorf("must start with https:// (or http:// to a loopback host), got %q", raw)
	}
}

// CheckAlertURL refuses an alert webhook URL that would carry its secret
// (the URL's path is the credential) or the alert's content across a network
// in clear text: https:// always, http:// only to this machine, where local
// receivers listen. Its error never quotes the URL, which is a secret.
func CheckAlertURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("must be an absolute https:// URL")
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return nil
	case u.Scheme == "http":
		return fmt.Errorf("must start with https:// (http:// is allowed to a loopback host only), got host %q: "+
			"the webhook URL and the alert would cross the network in clear text", u.Hostname())
	default:
		return errors.New("must start with https:// (or http:// to a loopback host)")
	}
}

// isLoopback says whether host names this machine: localhost, or an address
// of 127.0.0.0/8 or ::1 (an IPv4-mapped one included). Other names are not
// trusted to resolve to it.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func (p *parser) fail(name, msg string) {
	p.errs = append(p.errs, fmt.Errorf("%s %s", name, msg))
}

func (p *parser) raw(name string) string { return strings.TrimSpace(p.getenv(name)) }

func (p *parser) str(name, def string) string {
	if v := p.raw(name); v != "" {
		return v
	}
	return def
}

func (p *parser) int64(name string) int64 {
	v := p.raw(name)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		p.fail(name, fmt.Sprintf("must be a positive integer id, got %q", v))
		return 0
	}
	return n
}

func (p *parser) positive(name string, def int) int {
	v := p.raw(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		p.fail(name, fmt.Sprintf("must be a positive integer, got %q", v))
		return def
	}
	return n
}

func (p *parser) list(name string) []string {
	var out []string
	for _, part := range strings.Split(p.raw(name), ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

func (p *parser) ids(name string) []int64 {
	var out []int64
	for _, part := range p.list(name) {
		n, err := strconv.ParseInt(part, 10, 64)
		if err != nil || n <= 0 {
			p.fail(name, fmt.Sprintf("must be a comma-separated list of ids, got %q", part))
			continue
		}
		out = append(out, n)
	}
	return out
}

func (p *parser) bool(name string) bool {
	v := p.raw(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be true or false, got %q", v))
	}
	return b
}

func (p *parser) duration(name string, def time.Duration) time.Duration {
	v := p.raw(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be a duration like 0s, 90m or 24h, got %q", v))
		return def
	}
	return d
}

func (p *parser) decimal(name, def string) decimal.Decimal {
	v := p.str(name, def)
	d, err := decimal.NewFromString(v)
	if err != nil || d.IsNegative() {
		p.fail(name, fmt.Sprintf("must be a non-negative amount, got %q", v))
		return decimal.RequireFromString(def)
	}
	return d
}

func (p *parser) location(name string) *time.Location {
	v := p.str(name, defaultAuditTZ)
	loc, err := time.LoadLocation(v)
	if err != nil {
		p.fail(name, fmt.Sprintf("must be an IANA time zone like America/Chicago, got %q", v))
		return time.UTC
	}
	return loc
}

// ReadEnvFile reads KEY=VALUE lines (comments with #, optional quotes, optional
// `export `) and returns them. A missing file is not an error.
func ReadEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]string{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open env file: %w", err)
	}
	defer f.Close()
	return parseEnv(f, path)
}

func parseEnv(r io.Reader, name string) (map[string]string, error) {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%s:%d: expected KEY=VALUE", name, n)
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' && v[len(v)-1] == '"' || v[0] == '\'' && v[len(v)-1] == '\'') {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out, sc.Err()
}

// Environ layers the process environment over a .env file: a variable set in
// the environment wins.
func Environ(envFile string) (Getenv, error) {
	if envFile == "" {
		envFile = envFileDefaultName
	}
	file, err := ReadEnvFile(envFile)
	if err != nil {
		return nil, err
	}
	return func(k string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return file[k]
	}, nil
}
