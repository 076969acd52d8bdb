package alert_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/alert"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

var (
	edited   = time.Date(2026, 11, 25, 14, 5, 0, 0, time.UTC)
	oneAlert = pipeline.Alert{
		ChangeID: "c0ffee", Kind: audit.KindValueChanged, SheetID: 7, Sheet: "Crew A <North>", RowNumber: 12,
		WorkRequest: "WR-1001", Column: "Units Total Price", Old: "1200.00", New: "6200.00",
		Impact: decimal.NewFromInt(5000), Risk: audit.RiskHigh, Who: "Kim Lee <kim.lee@fieldops.example.com>",
		When: edited, DetectedAt: edited.Add(time.Hour),
		SourceRowURL: "https://app.smartsheet.com/sheets/abc?rowId=12", AuditRowURL: "https://app.smartsheet.com/sheets/log?rowId=99",
	}
)

func fastOptions() alert.Options { return alert.Options{Backoff: time.Millisecond, Attempts: 3} }

func TestSlackAlert(t *testing.T) {
	rcv := newReceiver(t, "/services/T0001/B0001/s3cr3tSlackToken")
	n := pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}, Total: oneAlert.Impact, AuditSheetURL: "https://app.smartsheet.com/sheets/log"}
	if err := alert.NewSlack(rcv.URL(), fastOptions()).Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	msgs := rcv.take(t)
	if len(msgs) != 1 {
		t.Fatalf("Slack got %d messages, want 1", len(msgs))
	}
	blocks := slackBlocks(t, msgs[0])
	if got, want := blockTypes(blocks), []string{"header", "section", "context", "actions"}; !cmp.Equal(got, want) {
		t.Errorf("block types = %v, want %v", got, want)
	}
	if got, want := str(obj(blocks[0]["text"])["text"]), "HIGH risk unauthorized change: +$5,000.00 on Crew A <North>"; got != want {
		t.Errorf("header = %q, want %q", got, want)
	}
	wantFields := map[string]string{
		"Sheet": "Crew A &lt;North&gt;", "Work Request #": "WR-1001", "Column": "Units Total Price",
		"Old → New": "1200.00 → 6200.00", "Money": "+$5,000.00", "Who": "Kim Lee &lt;kim.lee@fieldops.example.com&gt;",
		"When": "2026-11-25 14:05 UTC", "Risk": "HIGH",
	}
	if d := cmp.Diff(wantFields, slackFields(blocks)); d != "" {
		t.Errorf("section fields -want +got:\n%s", d)
	}
	if got := str(obj(list(blocks[2]["elements"])[0])["text"]); !strings.Contains(got, "c0ffee") {
		t.Errorf("context = %q, want the Change ID", got)
	}
	wantButtons := map[string]string{"Open the source row": oneAlert.SourceRowURL, "Open the audit row": oneAlert.AuditRowURL}
	if d := cmp.Diff(wantButtons, buttons(blocks)); d != "" {
		t.Errorf("buttons -want +got:\n%s", d)
	}
	if got := str(msgs[0]["text"]); !strings.Contains(got, "WR-1001") || !strings.Contains(got, "Kim Lee") {
		t.Errorf("text = %q, want the Work Request # and who", got)
	}
}

func TestTeamsAlert(t *testing.T) {
	rcv := newReceiver(t, "/workflows/abc/triggers/manual/paths/invoke")
	n := pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}, Total: oneAlert.Impact}
	if err := alert.NewTeams(rcv.URL(), fastOptions()).Notify(context.Background(), n); err != nil {
		t.Fatalf("Notify() = %v", err)
	}
	msgs := rcv.take(t)
	if len(msgs) != 1 {
		t.Fatalf("Teams got %d messages, want 1", len(msgs))
	}
	card := adaptiveCard(t, msgs[0])
	if got := str(card["version"]); got != alert.AdaptiveCardVersion {
		t.Errorf("version = %q, want %q", got, alert.AdaptiveCardVersion)
	}
	if got, want := str(obj(list(card["body"])[0])["text"]), "HIGH risk unauthorized change: +$5,000.00 on Crew A <North>"; got != want {
		t.Errorf("headline = %q, want %q", got, want)
	}
	wantFacts := map[string]string{
		"Sheet": "Crew A <North>", "Work Request #": "WR-1001", "Column": "Units Total Price",
		"Old → New": "1200.00 → 6200.00", "Money": "+$5,000.00", "Who": "Kim Lee <kim.lee@fieldops.example.com>",
		"When": "2026-11-25 14:05 UTC", "Risk": "HIGH", "Change ID": "c0ffee",
	}
	if d := cmp.Diff(wantFacts, facts(card)); d != "" {
		t.Errorf("facts -want +got:\n%s", d)
	}
	wantActions := map[string]string{"Open the source row": oneAlert.SourceRowURL, "Open the audit row": oneAlert.AuditRowURL}
	if d := cmp.Diff(wantActions, cardActions(card)); d != "" {
		t.Errorf("actions -want +got:\n%s", d)
	}
}

func digestNotice(n int) pipeline.Notice {
	d := pipeline.Notice{Digest: true, Total: decimal.Zero, AuditSheetURL: "https://app.smartsheet.com/sheets/log"}
	for i := range n {
		a := oneAlert
		a.ChangeID = fmt.Sprintf("c%03d", i)
		a.WorkRequest = fmt.Sprintf("WR-%d", 2000+i)
		d.Alerts = append(d.Alerts, a)
		d.Total = d.Total.Add(a.Impact)
	}
	return d
}

func TestDigest(t *testing.T) {
	tests := []struct {
		name      string
		alerts    int
		wantShown int
		wantRest  string
	}{
		{name: "all listed", alerts: 12, wantShown: 12},
		{name: "the rest counted", alerts: 40, wantShown: 15, wantRest: "and 25 more on the audit log"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			slack, teams := newReceiver(t, "/s/secret"), newReceiver(t, "/t/secret")
			n := digestNotice(tt.alerts)
			for _, ch := range []pipeline.Notifier{alert.NewSlack(slack.URL(), fastOptions()), alert.NewTeams(teams.URL(), fastOptions())} {
				if err := ch.Notify(context.Background(), n); err != nil {
					t.Fatalf("Notify() = %v", err)
				}
			}
			wantTitle := fmt.Sprintf("%d unauthorized changes, %s in all", tt.alerts, audit.MoneyText(n.Total))

			blocks := slackBlocks(t, slack.take(t)[0])
			if got := str(obj(blocks[0]["text"])["text"]); got != wantTitle {
				t.Errorf("Slack header = %q, want %q", got, wantTitle)
			}
			sections := 0
			for _, b := range blocks {
				if str(b["type"]) == "section" {
					sections++
					if txt := str(obj(b["text"])["text"]); !strings.Contains(txt, oneAlert.AuditRowURL) || !strings.Contains(txt, "WR-") {
						t.Errorf("digest line %q lacks its Work Request # or audit-row link", txt)
					}
				}
			}
			if sections != tt.wantShown {
				t.Errorf("Slack digest lists %d changes, want %d", sections, tt.wantShown)
			}
			if got := buttons(blocks)["Open the audit log"]; got != n.AuditSheetURL {
				t.Errorf("Slack audit-log button = %q, want %q", got, n.AuditSheetURL)
			}
			if tt.wantRest != "" && !strings.Contains(fmt.Sprint(blocks), tt.wantRest) {
				t.Errorf("Slack digest lacks %q", tt.wantRest)
			}

			card := adaptiveCard(t, teams.take(t)[0])
			body := list(card["body"])
			if got := str(obj(body[0])["text"]); got != wantTitle {
				t.Errorf("Teams headline = %q, want %q", got, wantTitle)
			}
			want := 1 + tt.wantShown
			if tt.wantRest != "" {
				want++
				if got := str(obj(body[len(body)-1])["text"]); got != tt.wantRest {
					t.Errorf("Teams last line = %q, want %q", got, tt.wantRest)
				}
			}
			if len(body) != want {
				t.Errorf("Teams body has %d elements, want %d", len(body), want)
			}
			if got := cardActions(card)["Open the audit log"]; got != n.AuditSheetURL {
				t.Errorf("Teams audit-log action = %q, want %q", got, n.AuditSheetURL)
			}
		})
	}
}

// TestRetries: transient failures are retried with back-off, a 4xx is
// final, and no error quotes the URL.
func TestRetries(t *testing.T) {
	tests := []struct {
		name         string
		status       int
		recoverAfter int // tries before the endpoint answers 200 (0: never)
		wantErr      bool
		wantTries    int
	}{
		{name: "5xx then delivered", status: http.StatusInternalServerError, recoverAfter: 2, wantTries: 3},
		{name: "5xx throughout", status: http.StatusInternalServerError, wantErr: true, wantTries: 3},
		{name: "429 retried", status: http.StatusTooManyRequests, recoverAfter: 1, wantTries: 2},
		{name: "4xx final", status: http.StatusBadRequest, wantErr: true, wantTries: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rcv := newReceiver(t, "/services/T1/B1/topSecretToken")
			rcv.setStatus(tt.status)
			var ch pipeline.Notifier = alert.NewSlack(rcv.URL(), alert.Options{Backoff: time.Millisecond, Attempts: 3,
				Client: &http.Client{Transport: recoverAfter(rcv, tt.recoverAfter)}})
			err := ch.Notify(context.Background(), pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Notify() = %v, want error %v", err, tt.wantErr)
			}
			if got := rcv.attempts(); got != tt.wantTries {
				t.Errorf("tries = %d, want %d", got, tt.wantTries)
			}
			if err != nil && (strings.Contains(err.Error(), "topSecretToken") || strings.Contains(err.Error(), rcv.srv.URL)) {
				t.Errorf("error %q quotes the webhook URL", err)
			}
			if err != nil && !strings.Contains(err.Error(), fmt.Sprint(tt.status)) {
				t.Errorf("error %q does not say the status %d", err, tt.status)
			}
		})
	}
}

// recoverAfter is a transport that sets rcv back to 200 after n tries.
func recoverAfter(rcv *receiver, n int) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		if n > 0 && rcv.attempts() == n {
			rcv.setStatus(http.StatusOK)
		}
		return http.DefaultTransport.RoundTrip(req)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestUnreachable: a refused connection and a deadline end in errors that
// do not quote the URL, within the caller's time.
func TestUnreachable(t *testing.T) {
	rcv := newReceiver(t, "/services/T2/B2/anotherSecret")
	url := rcv.URL()
	rcv.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	start := time.Now()
	err := alert.NewTeams(url, alert.Options{Backoff: 10 * time.Millisecond}).Notify(ctx, pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}})
	if err == nil {
		t.Fatal("Notify() to a closed endpoint = nil, want an error")
	}
	if strings.Contains(err.Error(), "anotherSecret") || strings.Contains(err.Error(), url) {
		t.Errorf("error %q quotes the webhook URL", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Notify took %v, past the caller's deadline", d)
	}
}

func TestText(t *testing.T) {
	subject, body := alert.Text(pipeline.Notice{Alerts: []pipeline.Alert{oneAlert}, AuditSheetURL: "https://x/log"}, nil)
	if want := "HIGH risk unauthorized change: +$5,000.00 on Crew A <North>"; subject != want {
		t.Errorf("subject = %q, want %q", subject, want)
	}
	for _, want := range []string{"Work Request #: WR-1001", "Column: Units Total Price", "Change: 1200.00 → 6200.00",
		"Money: +$5,000.00", "Who: Kim Lee", "When: 2026-11-25 14:05 UTC", "Risk: HIGH",
		"Source row: " + oneAlert.SourceRowURL, "Audit row: " + oneAlert.AuditRowURL, "Audit log: https://x/log"} {
		if !strings.Contains(body, want) {
			t.Errorf("body lacks %q:\n%s", want, body)
		}
	}
	_, body = alert.Text(digestNotice(3), time.UTC)
	if got := strings.Count("\n"+body, "\n- "); got != 3 {
		t.Errorf("digest body has %d lines, want 3:\n%s", got, body)
	}
}
