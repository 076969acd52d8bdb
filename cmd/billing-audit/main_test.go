package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/xlsx"
	"github.com/xuri/excelize/v2"
)

func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// cleanEnv isolates a test from the developer's environment and .env file.
func cleanEnv(t *testing.T) {
	t.Chdir(t.TempDir())
	for _, k := range []string{"SMARTSHEET_API_TOKEN", "SMARTSHEET_BASE_URL", "AUDIT_SHEET_ID", "SOURCE_SHEET_IDS", "SOURCE_FOLDER_IDS",
		"TRACK_COLUMNS", "AUDIT_TIMEZONE", "GRACE_PERIOD", "HIGH_RISK_THRESHOLD", "MEDIUM_RISK_THRESHOLD", "SKIP_CELL_HISTORY", "SKIP_WRITER_INFO",
		"STATE_DIR", "TEST_MODE", "OUTPUT_DIR", "ANONYMIZE_USERS", "ANONYMIZE_KEY", "WEBHOOK_CALLBACK_URL", "WEBHOOK_SECRET_OVERLAP",
		"ALERT_SLACK_WEBHOOK_URL", "ALERT_TEAMS_WEBHOOK_URL", "ALERT_MIN_RISK", "ALERT_DIGEST_OVER"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestDemoCommand(t *testing.T) {
	cleanEnv(t)
	out := t.TempDir()
	code, stdout, stderr := runCLI(t, "demo", "-out", out)
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"Found 10 of 10 expected changes; 10 change rows now on the audit-log sheet",
		"┌ alert: HIGH risk unauthorized change: +$1,387.50 on Billing Log - Crew A",
		"Reversal: change ",
		"both rows are now Disposition Reversed",
		"Audit log: TAMPERING DETECTED: 3 problems (1 ALTERED_CELL, 1 DELETED_ROW, 1 FORGED_ROW)",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	for _, want := range []string{
		`baseline taken for 3 sheets \(\d+ rows\): changes to them are measured from the next run`,
		`audit log verified: (\d+) audit rows match (\d+) ledger entries`,
		`Dispositions sealed in the ledger: \d+ \(Priya Shah's review`,
	} {
		if !regexp.MustCompile(want).MatchString(stdout) {
			t.Errorf("demo output lacks /%s/:\n%s", want, stdout)
		}
	}
	checkDemoHistory(t, stdout, out)
	if _, err := os.Stat(filepath.Join(out, "smartsim-state.json")); err != nil {
		t.Errorf("demo did not save the simulator state: %v", err)
	}
	// The change lists fit 100 columns (run --wide has every field).
	table := false
	for _, line := range strings.Split(stdout, "\n") {
		switch {
		case strings.HasPrefix(line, "SHEET "):
			table = true
		case line == "" || strings.HasPrefix(line, " "):
			table = false
		}
		if n := len([]rune(line)); table && n > 100 {
			t.Errorf("change list line of %d columns, want <= 100: %q", n, line)
		}
	}
	if !strings.Contains(stdout, "put back: Units Total Price") {
		t.Errorf("demo output does not list the reversal as put back:\n%s", stdout)
	}
}

// checkDemoHistory checks the demo's weeks of history: each week's audits
// found exactly the edits made, and the last workbook's trend, editors and
// weekday/hour grid show weeks of them, not one spike.
func checkDemoHistory(t *testing.T, stdout, out string) {
	t.Helper()
	week := regexp.MustCompile(`week of \d{4}-\d\d-\d\d: +(\d+) edits \((.*)\) → +(\d+) changes found`)
	weeks := week.FindAllStringSubmatch(stdout, -1)
	if len(weeks) != 11 {
		t.Errorf("demo history has %d weeks, want 11:\n%s", len(weeks), stdout)
	}
	for _, w := range weeks {
		if w[1] != w[3] || w[1] == "0" {
			t.Errorf("history week %q: %s edits, %s changes found; want the same, not 0", w[0], w[1], w[3])
		}
	}
	books, _ := filepath.Glob(filepath.Join(out, "billing-audit-we-*.xlsx"))
	if len(books) == 0 {
		t.Fatal("demo wrote no workbook")
	}
	slices.Sort(books) // names end with the run id, which starts with its time
	f, err := excelize.OpenFile(books[len(books)-1])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(xlsx.SheetTrends)
	if err != nil {
		t.Fatal(err)
	}
	busyWeeks, editors, days := 0, 0, 0
	section := ""
	for _, r := range rows {
		if len(r) == 0 {
			continue
		}
		switch {
		case r[0] == "Week ending", r[0] == "User", r[0] == "Weekday":
			section = r[0]
			continue
		case strings.HasPrefix(r[0], "Top editors"), strings.HasPrefix(r[0], "Changes by weekday"), strings.HasPrefix(r[0], "Projection"):
			section = ""
			continue
		}
		last := r[len(r)-1]
		switch section {
		case "Week ending":
			if len(r) > 1 && r[1] != "0" && r[1] != "" {
				busyWeeks++
			}
		case "User":
			editors++
		case "Weekday":
			if last != "0" && last != "" {
				days++
			}
		}
	}
	if busyWeeks < 11 || editors < 5 || days < 4 {
		t.Errorf("last workbook's trends: %d weeks with changes, %d editors, %d weekdays with edits; want >= 11, 5, 4", busyWeeks, editors, days)
	}
}

func TestUsageErrors(t *testing.T) {
	cleanEnv(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no command", nil, 2, "Usage:"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"bad flag is named", []string{"run", "--nope"}, 2, "billing-audit run: flag provided but not defined: -nope\n\nUsage:\n  billing-audit run [--test]"},
		{"bad value is named", []string{"listen", "--scan-every", "soon"}, 2, `invalid value "soon" for flag -scan-every`},
		{"extra argument", []string{"verify", "now"}, 2, `billing-audit verify: unexpected argument "now"`},
		{"no sources", []string{"run"}, 1, "SOURCE_SHEET_IDS or SOURCE_FOLDER_IDS"},
		{"help", []string{"help"}, 0, "Usage:"},
		{"run --help", []string{"run", "--help"}, 0, "Usage:\n  billing-audit run [--test] [--force-report] [--wide]\n"},
		{"setup -h", []string{"setup", "-h"}, 0, "Usage:\n  billing-audit setup\n"},
		{"listen --help lists its flags", []string{"listen", "--help"}, 0, "-scan-every duration"},
		{"webhooks --help", []string{"webhooks", "--help"}, 0, "billing-audit webhooks list | ensure | reset-secret ID"},
		{"webhooks alone", []string{"webhooks"}, 2, "billing-audit webhooks: which: list, ensure or reset-secret ID?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, tt.args...)
			out := stderr
			if tt.code == 0 {
				out = stdout // help goes to stdout
			}
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("billing-audit %v = exit %d, stdout %q, stderr %q; want exit %d containing %q", tt.args, code, stdout, stderr, tt.code, tt.want)
			}
		})
	}
}

func TestConfigErrorsNameTheVariable(t *testing.T) {
	tests := []struct{ key, value string }{
		{"SMARTSHEET_API_TOKEN", ""},
		{"AUDIT_TIMEZONE", "Mars/Olympus"},
		{"HIGH_RISK_THRESHOLD", "$1,2O0"},
		{"SOURCE_SHEET_IDS", "12,x"},
		{"GRACE_PERIOD", "a week"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			cleanEnv(t)
			t.Setenv("SMARTSHEET_API_TOKEN", "tok")
			t.Setenv("SOURCE_SHEET_IDS", "1")
			t.Setenv(tt.key, tt.value)
			code, _, stderr := runCLI(t, "run")
			if code != 1 || !strings.Contains(stderr, tt.key) {
				t.Errorf("run with %s=%q = exit %d, stderr %q; want exit 1 naming %s", tt.key, tt.value, code, stderr, tt.key)
			}
			if strings.Contains(stderr, "tok") && tt.key != "SMARTSHEET_API_TOKEN" {
				t.Errorf("stderr leaks the token: %q", stderr)
			}
		})
	}
}

func TestSetupAndRunAgainstSimulator(t *testing.T) {
	cleanEnv(t)
	srv := smartsimtest.Start(t, smartsim.Options{Clock: func() time.Time { return time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC) }})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: 2, Rows: 200, Weeks: 3})
	if err != nil {
		t.Fatal(err)
	}
	// A Slack webhook: a local receiver counting the posts.
	var posts atomic.Int32
	slack := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/services/T0/B0/slack-secret-456" {
			posts.Add(1)
		}
	}))
	t.Cleanup(slack.Close)
	// Settings from a .env file, the way an operator keeps them.
	env := "SMARTSHEET_API_TOKEN=secret-token-123\nSMARTSHEET_BASE_URL=" + srv.URL() +
		"\nSOURCE_FOLDER_IDS=" + strconv.FormatInt(gen.FolderID, 10) + "\nSTATE_DIR=state\n" +
		"ALERT_SLACK_WEBHOOK_URL=" + slack.URL + "/services/T0/B0/slack-secret-456\n"
	if err := os.WriteFile(".env", []byte(env), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out1, stderr := runCLI(t, "setup")
	if code != 0 {
		t.Fatalf("setup exit %d: %s", code, stderr)
	}
	code, out2, _ := runCLI(t, "setup")
	re := regexp.MustCompile(`AUDIT_SHEET_ID=(\d+)`)
	m1, m2 := re.FindStringSubmatch(out1), re.FindStringSubmatch(out2)
	if code != 0 || m1 == nil || m2 == nil || m1[1] != m2[1] || !strings.Contains(out1, "created") || !strings.Contains(out2, "found") {
		t.Fatalf("setup twice: %q then %q; want created then found, same id", out1, out2)
	}
	if n := len(srv.SheetIDs()); n != 3 {
		t.Errorf("simulator holds %d sheets after two setups, want 3 (2 sources + 1 audit)", n)
	}

	code, out, stderr := runCLI(t, "run", "--test")
	if code != 0 || !strings.Contains(out, "test mode: nothing written") || !strings.Contains(out, "rows read 400") {
		t.Fatalf("run --test = exit %d\n%s\n%s", code, out, stderr)
	}
	if _, err := os.Stat(filepath.Join("state", "billing-audit.db")); err != nil {
		t.Fatalf("state store missing: %v", err)
	}
	code, out, stderr = runCLI(t, "run")
	if code != 0 || !strings.Contains(out, "rows read 400, changes 0") {
		t.Fatalf("run = exit %d\n%s\n%s", code, out, stderr)
	}
	if strings.Contains(out+stderr, "secret-token-123") {
		t.Error("the token appears in the output")
	}

	// An untouched log verifies (exit 0); an edited one is named (exit 3).
	code, out, stderr = runCLI(t, "verify")
	if code != 0 || !strings.Contains(out, "Audit log: verified") {
		t.Fatalf("verify = exit %d\n%s\n%s", code, out, stderr)
	}
	sheet := gen.SheetIDs[0]
	sh, _ := srv.Sheet(sheet)
	var price int64
	for _, c := range sh.Columns {
		if c.Title == smartsim.ColTotalPrice {
			price = c.ID
		}
	}
	if _, err := srv.SetCell(smartsim.Edit{User: smartsheet.User{Name: "Kim", Email: "kim@example.com"}, At: time.Now().UTC().Add(time.Minute)},
		sheet, sh.Rows[0].ID, price, smartsheet.NumberValue("99999.00")); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "run")
	if code != 0 || !strings.Contains(out, "audit rows written 1") || !strings.Contains(out, "audit log verified: 1 audit row matches 1 ledger entry") {
		t.Fatalf("run after an edit = exit %d\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(out, "alerts on slack: 1 sent") || posts.Load() != 1 {
		t.Errorf("run after an unauthorized edit: %d Slack posts, output\n%s\nwant one alert", posts.Load(), out)
	}
	if strings.Contains(out+stderr, "slack-secret-456") {
		t.Error("the Slack webhook URL appears in the output")
	}
	auditID, _ := strconv.ParseInt(m1[1], 10, 64)
	audited, _ := srv.Sheet(auditID)
	var impact int64
	for _, c := range audited.Columns {
		if c.Title == "Money Impact" {
			impact = c.ID
		}
	}
	if _, err := srv.SetCell(smartsim.Edit{User: smartsheet.User{Name: "Dana", Email: "dana@example.com"}}, auditID, audited.Rows[0].ID, impact, smartsheet.NumberValue("0")); err != nil {
		t.Fatal(err)
	}
	code, out, stderr = runCLI(t, "verify")
	if code != 3 || !strings.Contains(out, "TAMPERING DETECTED: 1 problem (1 ALTERED_CELL)") || !strings.Contains(out, `Money Impact is "0" on the sheet`) {
		t.Errorf("verify after an edit of the log = exit %d\n%s\n%s; want exit 3 naming the altered cell", code, out, stderr)
	}
	code, out, _ = runCLI(t, "verify", "--json")
	if code != 3 || !strings.Contains(out, `"kind": "ALTERED_CELL"`) {
		t.Errorf("verify --json = exit %d\n%s", code, out)
	}
	code, out, stderr = runCLI(t, "run")
	if code != 3 || !strings.Contains(out, "audit log TAMPERING DETECTED") || !strings.Contains(stderr, "failed verification") {
		t.Errorf("run after an edit of the log = exit %d\n%s\n%s; want exit 3 saying so", code, out, stderr)
	}
	digests, _ := filepath.Glob(filepath.Join("out", "digests", "*.json"))
	if len(digests) != 3 {
		t.Errorf("digests written = %v, want one per run (3)", digests)
	}
}
