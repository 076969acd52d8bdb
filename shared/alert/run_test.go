package alert_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

// The alerts of whole runs: the simulator's sheets, the bbolt store, the
// real Slack and Teams notifiers posting to local receivers.

// safeBuffer is a log sink shared by the runs' goroutines.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type alertStack struct {
	srv          *smartsim.Server
	client       *smartsheet.Client
	store        *bolt.Store
	setup        *demo.Setup
	auditID      int64
	slack, teams *receiver
	logs         *safeBuffer
}

func newAlertStack(t *testing.T) *alertStack {
	t.Helper()
	wednesday := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	srv := smartsimtest.Start(t, smartsim.Options{Clock: func() time.Time { return wednesday }})
	client, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "test-token", ChangeAgent: "billing-audit-test", RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store, err := bolt.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	setup, err := demo.Prepare(srv, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := pipeline.EnsureAuditSheet(context.Background(), client, store, 0, "Billing Audit Log")
	if err != nil {
		t.Fatal(err)
	}
	return &alertStack{srv: srv, client: client, store: store, setup: setup, auditID: id,
		slack: newReceiver(t, "/services/T0AUDIT/B0AUDIT/slackSecretToken42"),
		teams: newReceiver(t, "/workflows/4f2a/triggers/manual/paths/invoke?sig=teamsSecretSig42"),
		logs:  &safeBuffer{}}
}

// run is one `billing-audit run` with both channels.
func (s *alertStack) run(t *testing.T) pipeline.Summary {
	t.Helper()
	opts := alert.Options{Backoff: time.Millisecond, Attempts: 2}
	r, err := pipeline.New(s.client, s.store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{s.setup.Gen.FolderID}, AuditSheetID: s.auditID,
		Clock: s.srv.Now, Logger: slog.New(slog.NewJSONHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		ReadBackDelay: time.Millisecond, AlertTimeout: 10 * time.Second,
		Alerts: []pipeline.AlertChannel{
			{Name: "slack", Notifier: alert.NewSlack(s.slack.URL(), opts)},
			{Name: "teams", Notifier: alert.NewTeams(s.teams.URL(), opts)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := r.Run(context.Background())
	if err != nil {
		t.Fatalf("Run() = %v", err)
	}
	return sum
}

// edit raises the price of closed-week rows of the first sheet (skipping
// skip of them) by 5,000 as Kim: unauthorized, HIGH.
func (s *alertStack) edit(t *testing.T, skip, n int) []smartsheet.Row {
	t.Helper()
	sheet := s.setup.Gen.SheetIDs[0]
	cols := s.setup.Columns[sheet]
	sh, err := s.srv.Sheet(sheet)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	var edited []smartsheet.Row
	for _, row := range sh.Rows {
		if len(edited) == n {
			break
		}
		c := row.Cell(cols[smartsim.ColWeekEnding])
		if c == nil || c.Value.Text() != s.setup.ClosedWeek.Format(time.DateOnly) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		price := decimal.RequireFromString(row.Cell(cols[smartsim.ColTotalPrice]).Value.Text())
		if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row.ID, cols[smartsim.ColTotalPrice],
			smartsheet.NumberValue(price.Add(decimal.NewFromInt(5000)).StringFixed(2))); err != nil {
			t.Fatal(err)
		}
		edited = append(edited, row)
	}
	if len(edited) != n {
		t.Fatalf("found %d closed-week rows to edit, want %d", len(edited), n)
	}
	return edited
}

// checkNoSecrets fails if a webhook URL or its secret part was logged.
func (s *alertStack) checkNoSecrets(t *testing.T) {
	t.Helper()
	logs := s.logs.String()
	for _, secret := range []string{s.slack.URL(), s.teams.URL(), "slackSecretToken42", "teamsSecretSig42", "/services/T0AUDIT", "/workflows/4f2a"} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs contain %q", secret)
		}
	}
}

func TestRunAlerts(t *testing.T) {
	s := newAlertStack(t)
	s.run(t) // the baseline: nothing to alert
	if got := len(s.slack.take(t)) + len(s.teams.take(t)); got != 0 {
		t.Fatalf("the baseline run sent %d alerts, want 0", got)
	}

	// One unauthorized HIGH change: one message on each channel.
	row := s.edit(t, 0, 1)[0]
	sum := s.run(t)
	if sum.Run.Unauthorized != 1 {
		t.Fatalf("run found %d unauthorized changes, want 1", sum.Run.Unauthorized)
	}
	sheet := s.setup.Gen.SheetIDs[0]
	sh, _ := s.srv.Sheet(sheet)
	cols := s.setup.Columns[sheet]
	wr := row.Cell(cols[smartsim.ColWorkRequest]).Value.Text()
	old := row.Cell(cols[smartsim.ColTotalPrice]).Value.Text()
	ch := sum.Changes[0]
	wantFields := map[string]string{
		"Sheet": sh.Name, "Work Request #": wr, "Column": smartsim.ColTotalPrice,
		"Old → New": ch.OldValue + " → " + ch.NewValue, "Money": "+$5,000.00",
		"Who": "Kim Lee &lt;kim.lee@fieldops.example.com&gt;", "When": ch.Attribution.Time.UTC().Format("2006-01-02 15:04 MST"), "Risk": "HIGH",
	}
	if !strings.HasPrefix(ch.OldValue, strings.TrimSuffix(old, ".00")) {
		t.Errorf("change old value %q, want the row's price %q", ch.OldValue, old)
	}
	slackMsgs, teamsMsgs := s.slack.take(t), s.teams.take(t)
	if len(slackMsgs) != 1 || len(teamsMsgs) != 1 {
		t.Fatalf("sent %d Slack and %d Teams messages, want 1 each", len(slackMsgs), len(teamsMsgs))
	}
	blocks := slackBlocks(t, slackMsgs[0])
	if d := cmp.Diff(wantFields, slackFields(blocks)); d != "" {
		t.Errorf("Slack fields -want +got:\n%s", d)
	}
	links := buttons(blocks)
	if links["Open the source row"] != ch.Permalink || ch.Permalink == "" {
		t.Errorf("Slack source-row link = %q, want the row's permalink %q", links["Open the source row"], ch.Permalink)
	}
	auditLink := links["Open the audit row"]
	if auditLink == "" {
		t.Errorf("Slack message has no audit-row link: %v", links)
	}
	card := adaptiveCard(t, teamsMsgs[0])
	f := facts(card)
	for k, v := range wantFields {
		if k == "Sheet" || k == "Who" {
			v = strings.NewReplacer("&lt;", "<", "&gt;", ">").Replace(v)
		}
		if f[k] != v {
			t.Errorf("Teams fact %q = %q, want %q", k, f[k], v)
		}
	}
	if f["Change ID"] != ch.ChangeID {
		t.Errorf("Teams Change ID = %q, want %q", f["Change ID"], ch.ChangeID)
	}
	acts := cardActions(card)
	if acts["Open the source row"] != ch.Permalink || acts["Open the audit row"] != auditLink {
		t.Errorf("Teams actions = %v, want the source row %q and the audit row %q", acts, ch.Permalink, auditLink)
	}

	// Dedup across runs: nothing new, nothing sent.
	s.srv.AdvanceClock(time.Hour)
	s.run(t)
	if got := len(s.slack.take(t)) + len(s.teams.take(t)); got != 0 {
		t.Errorf("a run with nothing new sent %d messages, want 0", got)
	}

	// A failing endpoint: Slack answers 500. The run completes, Teams gets
	// its alert, Slack's is retried (with back-off) and left for the next run.
	s.slack.setStatus(http.StatusInternalServerError)
	before := s.slack.attempts()
	s.edit(t, 1, 1)
	sum = s.run(t)
	if sum.Run.AuditRows != 1 {
		t.Errorf("with Slack down the run wrote %d audit rows, want 1", sum.Run.AuditRows)
	}
	if got := s.slack.attempts() - before; got != 2 {
		t.Errorf("Slack was tried %d times, want 2 (Attempts)", got)
	}
	if got := len(s.teams.take(t)); got != 1 {
		t.Errorf("Teams got %d messages while Slack was down, want 1", got)
	}
	var slackRes pipeline.AlertResult
	for _, r := range sum.Alerts {
		if r.Channel == "slack" {
			slackRes = r
		}
	}
	if slackRes.Err == nil || slackRes.Notices != 0 {
		t.Errorf("Slack's result = %+v, want an error and no notice", slackRes)
	}
	s.slack.setStatus(http.StatusOK)
	s.srv.AdvanceClock(time.Hour)
	s.run(t)
	if got, gotTeams := len(s.slack.take(t)), len(s.teams.take(t)); got != 1 || gotTeams != 0 {
		t.Errorf("the next run sent %d Slack and %d Teams messages, want 1 (the owed one) and 0", got, gotTeams)
	}

	// More than ALERT_DIGEST_OVER (10) in a run: one digest per channel.
	s.edit(t, 2, 12)
	s.run(t)
	slackMsgs, teamsMsgs = s.slack.take(t), s.teams.take(t)
	if len(slackMsgs) != 1 || len(teamsMsgs) != 1 {
		t.Fatalf("12 changes sent %d Slack and %d Teams messages, want one digest each", len(slackMsgs), len(teamsMsgs))
	}
	blocks = slackBlocks(t, slackMsgs[0])
	if got := str(obj(blocks[0]["text"])["text"]); !strings.HasPrefix(got, "12 unauthorized changes, $60,000.00") {
		t.Errorf("Slack digest header = %q, want 12 changes, $60,000.00", got)
	}
	card = adaptiveCard(t, teamsMsgs[0])
	if got := str(obj(list(card["body"])[0])["text"]); !strings.HasPrefix(got, "12 unauthorized changes") {
		t.Errorf("Teams digest headline = %q", got)
	}
	if cardActions(card)["Open the audit log"] == "" {
		t.Errorf("Teams digest has no audit-log link: %v", cardActions(card))
	}
	s.checkNoSecrets(t)
}

// TestRefreshAlerts: the real-time path alerts as soon as a webhook
// refresh records the change, and the scan that sees it later does not
// alert it again.
func TestRefreshAlerts(t *testing.T) {
	s := newAlertStack(t)
	s.run(t)
	row := s.edit(t, 0, 1)[0]
	opts := alert.Options{Backoff: time.Millisecond, Attempts: 2}
	r, err := pipeline.New(s.client, s.store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{s.setup.Gen.FolderID}, AuditSheetID: s.auditID,
		Clock: s.srv.Now, Logger: slog.New(slog.NewJSONHandler(s.logs, nil)), ReadBackDelay: time.Millisecond,
		Alerts: []pipeline.AlertChannel{
			{Name: "slack", Notifier: alert.NewSlack(s.slack.URL(), opts)},
			{Name: "teams", Notifier: alert.NewTeams(s.teams.URL(), opts)},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := r.RefreshRows(context.Background(), s.setup.Gen.SheetIDs[0], []int64{row.ID}, nil)
	if err != nil || len(fresh) != 1 {
		t.Fatalf("RefreshRows() = %d changes, %v; want 1", len(fresh), err)
	}
	if got, gotTeams := len(s.slack.take(t)), len(s.teams.take(t)); got != 1 || gotTeams != 1 {
		t.Fatalf("the refresh sent %d Slack and %d Teams messages, want 1 each", got, gotTeams)
	}
	s.srv.AdvanceClock(time.Hour)
	s.run(t)
	if got := len(s.slack.take(t)) + len(s.teams.take(t)); got != 0 {
		t.Errorf("the scan after the refresh sent %d messages, want 0", got)
	}
	s.checkNoSecrets(t)
}

// TestFailureLogged: an endpoint that is down is logged by channel and
// status, without its URL.
func TestFailureLogged(t *testing.T) {
	s := newAlertStack(t)
	s.run(t)
	s.teams.setStatus(http.StatusServiceUnavailable)
	s.edit(t, 0, 1)
	s.run(t)
	logs := s.logs.String()
	if !strings.Contains(logs, "alert not delivered") || !strings.Contains(logs, `"channel":"teams"`) || !strings.Contains(logs, "status 503") {
		t.Errorf("the logs do not report Teams' failure by channel and status:\n%s", logs)
	}
	s.checkNoSecrets(t)
}
