// Package alert is the HTTP adapter of the pipeline's alert channels: a
// Slack incoming webhook (Block Kit) and a Teams Workflows webhook (an
// Adaptive Card in a message), each a pipeline.Notifier. It also holds the
// plain-text form of a notice (Text) that the SNS adapter and `demo` print.
//
// A webhook URL is a credential (whoever has it can post to the channel):
// it is never logged and never appears in an error; Notify's errors say
// which channel failed and how (status, Slack's or Teams' answer).
package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// Options tune a webhook channel. The zero value is valid.
type Options struct {
	// Client posts the messages (default: a client with a 10 s timeout).
	Client *http.Client
	// Attempts is the most posts of one notice (default 4): a 429, a 5xx
	// or a network error is retried, any other status is final.
	Attempts int
	// Backoff is the first wait between attempts, doubled each time up to
	// 4 s (default 500 ms); a 429's Retry-After wins when it is longer. The
	// caller's context bounds the whole: no wait outlives its deadline.
	Backoff time.Duration
	// Location shows the times (default UTC).
	Location *time.Location
	// DigestItems is how many changes a digest lists (default 15); the
	// rest are counted and on the audit sheet.
	DigestItems int
}

func (o Options) withDefaults() Options {
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = 500 * time.Millisecond
	}
	if o.Location == nil {
		o.Location = time.UTC
	}
	if o.DigestItems <= 0 {
		o.DigestItems = 15
	}
	return o
}

const maxBackoff = 4 * time.Second

// webhook posts JSON to a secret URL with retries.
type webhook struct {
	channel string
	url     string
	opts    Options
}

// redacted replaces the URL wherever it appears in s.
func (w webhook) redacted(s string) string {
	if w.url == "" {
		return s
	}
	s = strings.ReplaceAll(s, w.url, "[redacted]")
	if u, err := url.Parse(w.url); err == nil {
		for _, part := range []string{u.Path, u.RawQuery} {
			if len(part) > 1 { // not "" or "/"
				s = strings.ReplaceAll(s, part, "[redacted]")
			}
		}
	}
	return s
}

// errorf is an error of this channel whose text cannot hold the URL.
func (w webhook) errorf(format string, args ...any) error {
	return errors.New(w.redacted(fmt.Sprintf("%s webhook: "+format, append([]any{w.channel}, args...)...)))
}

// post sends body, retrying transient failures within ctx.
func (w webhook) post(ctx context.Context, body []byte) error {
	wait := w.opts.Backoff
	var last error
	for attempt := 1; ; attempt++ {
		retryAfter, err := w.postOnce(ctx, body)
		if err == nil {
			return nil
		}
		last = err
		var perm permanent
		if errors.As(err, &perm) || attempt >= w.opts.Attempts {
			break
		}
		d := max(wait, retryAfter)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			break // no time left for another try: the next run retries
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return w.errorf("gave up (%v) after: %s", ctx.Err(), last.Error())
		case <-t.C:
		}
		wait = min(2*wait, maxBackoff)
	}
	return last
}

// permanent marks a failure a retry cannot cure (a 4xx other than 429).
type permanent struct{ error }

// postOnce is one POST; retryAfter is a 429's Retry-After.
func (w webhook) postOnce(ctx context.Context, body []byte) (retryAfter time.Duration, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		// The error of a malformed URL quotes it.
		return 0, permanent{w.errorf("bad URL")}
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.opts.Client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error quotes the URL
		}
		return 0, w.errorf("post: %v", err)
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return 0, nil
	}
	err = w.errorf("status %d: %s", resp.StatusCode, strings.TrimSpace(string(answer)))
	switch {
	case resp.StatusCode == http.StatusTooManyRequests:
		if s, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && s > 0 {
			retryAfter = time.Duration(s) * time.Second
		}
		return retryAfter, err
	case resp.StatusCode >= 500:
		return 0, err
	}
	return 0, permanent{err}
}

func (w webhook) send(ctx context.Context, payload any) error {
	body, err := json.Marshal(payload)
	if err != nil {
		return w.errorf("encode: %v", err)
	}
	return w.post(ctx, body)
}

// The words of a notice, shared by every channel.

// Title is an alert's headline: "HIGH risk unauthorized change: +$5,000.00 on Crew A".
func Title(a pipeline.Alert) string {
	return fmt.Sprintf("%s risk unauthorized change: %s on %s", a.Risk, Money(a), a.Sheet)
}

// DigestTitle is a digest's headline.
func DigestTitle(n pipeline.Notice) string {
	return fmt.Sprintf("%d unauthorized changes, %s in all", len(n.Alerts), audit.MoneyText(n.Total))
}

// Money is an alert's money impact: "+$5,000.00", "≈ -$20.00 (estimated)",
// "not valued".
func Money(a pipeline.Alert) string {
	if a.Unvalued {
		return "not valued"
	}
	s := audit.MoneyText(a.Impact)
	if a.Impact.IsPositive() {
		s = "+" + s
	}
	if a.Estimated {
		s = "≈ " + s + " (estimated)"
	}
	return s
}

// What is the change itself: the column (or the kind of a row change) and
// old → new.
func What(a pipeline.Alert) string {
	col := a.Column
	if col == "" {
		col = kindText(a.Kind)
	}
	return fmt.Sprintf("%s: %s → %s", col, orBlank(a.Old), orBlank(a.New))
}

func kindText(k audit.Kind) string {
	switch k {
	case audit.KindRowDeleted:
		return "row deleted"
	case audit.KindRowAddedLate:
		return "row added late"
	case audit.KindWeekMoved:
		return "week moved"
	}
	return string(k)
}

func orBlank(s string) string {
	if s == "" {
		return "(blank)"
	}
	return s
}

// Who is who made the change ("unknown" when nobody is named).
func Who(a pipeline.Alert) string {
	if a.Who == "" {
		return "unknown"
	}
	return a.Who
}

// When is when the change was made, in loc: its time, or the window it is
// known to within.
func When(a pipeline.Alert, loc *time.Location) string {
	const form = "2006-01-02 15:04 MST"
	switch {
	case !a.When.IsZero():
		return a.When.In(loc).Format(form)
	case !a.WindowStart.IsZero() && !a.WindowEnd.IsZero():
		return "between " + a.WindowStart.In(loc).Format(form) + " and " + a.WindowEnd.In(loc).Format(form)
	case !a.DetectedAt.IsZero():
		return "before " + a.DetectedAt.In(loc).Format(form)
	}
	return "unknown"
}

// WorkRequest is the row's Work Request # (or its row number when it has none).
func WorkRequest(a pipeline.Alert) string {
	if a.WorkRequest != "" {
		return a.WorkRequest
	}
	return fmt.Sprintf("(none; row %d)", a.RowNumber)
}

// Line is an alert in one line, for a digest and for plain text.
func Line(a pipeline.Alert, loc *time.Location) string {
	return fmt.Sprintf("%s · WR %s · %s · %s · %s by %s, %s", a.Sheet, WorkRequest(a), What(a), Money(a), a.Risk,
		Who(a), When(a, loc))
}

// Text is a notice as a subject and a plain-text body with the links
// spelled out: what SNS e-mails and texts, and what `demo` prints.
func Text(n pipeline.Notice, loc *time.Location) (subject, body string) {
	if loc == nil {
		loc = time.UTC
	}
	var b strings.Builder
	if n.Digest {
		subject = DigestTitle(n)
		for _, a := range n.Alerts {
			fmt.Fprintf(&b, "- %s\n", Line(a, loc))
		}
	} else if len(n.Alerts) == 1 {
		a := n.Alerts[0]
		subject = Title(a)
		fmt.Fprintf(&b, "Sheet: %s\nWork Request #: %s\nColumn: %s\nChange: %s → %s\nMoney: %s\nWho: %s\nWhen: %s\nRisk: %s\nChange ID: %s\n",
			a.Sheet, WorkRequest(a), orBlank(a.Column), orBlank(a.Old), orBlank(a.New), Money(a), Who(a), When(a, loc), a.Risk, a.ChangeID)
		if a.SourceRowURL != "" {
			fmt.Fprintf(&b, "Source row: %s\n", a.SourceRowURL)
		}
		if a.AuditRowURL != "" {
			fmt.Fprintf(&b, "Audit row: %s\n", a.AuditRowURL)
		}
	}
	if n.AuditSheetURL != "" {
		fmt.Fprintf(&b, "Audit log: %s\n", n.AuditSheetURL)
	}
	return subject, b.String()
}

// Channels are the webhook channels whose URL is set, named as the store
// records them ("slack", "teams"): the one builder of the CLI and the
// functions.
func Channels(slackURL, teamsURL string, opts Options) []pipeline.AlertChannel {
	var out []pipeline.AlertChannel
	if slackURL != "" {
		out = append(out, pipeline.AlertChannel{Name: "slack", Notifier: NewSlack(slackURL, opts)})
	}
	if teamsURL != "" {
		out = append(out, pipeline.AlertChannel{Name: "teams", Notifier: NewTeams(teamsURL, opts)})
	}
	return out
}

// Console is a channel that prints each notice as text (see [Text]), as a
// channel would post it: what `billing-audit demo` shows instead of posting.
type Console struct {
	W        io.Writer
	Location *time.Location
}

// Notify implements pipeline.Notifier.
func (c Console) Notify(_ context.Context, n pipeline.Notice) error {
	subject, body := Text(n, c.Location)
	_, err := fmt.Fprintf(c.W, "  ┌ alert: %s\n  │ %s\n", subject, strings.ReplaceAll(strings.TrimRight(body, "\n"), "\n", "\n  │ "))
	return err
}
