package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// Alerts tell people about unauthorized changes as they are found: Slack,
// Teams and, in AWS, an SNS topic (e-mail, SMS). The pipeline decides what
// to send and when; each channel's adapter only formats and delivers a
// Notice (shared/alert, shared/aws/snsalert).
//
// Which changes: unauthorized ones at or above Options.AlertMinRisk, each
// alerted once ever per channel, recorded in the store (AlertLog) only once
// the channel accepted it, so a channel that was down gets it on the next
// run. When are they sent: at the end of a run (Run; CompleteRun in AWS),
// after the audit rows are written and the run recorded, over every change
// detected within Options.AlertLookback (which is how a failed alert is
// retried), and right after a webhook refresh (RefreshRows) for its fresh
// changes. More than Options.AlertDigestOver in one send become one digest.
// Sending never fails the audit: it is bounded by Options.AlertTimeout and
// its errors are logged (the adapters keep the webhook URLs out of them).

// Notifier delivers one notice to one channel. It retries a transient
// failure within ctx's deadline; an error means the notice was not
// delivered (it is sent again on the next run). Its errors must not contain
// the channel's secret URL.
type Notifier interface {
	Notify(ctx context.Context, n Notice) error
}

// AlertChannel is a named Notifier: the name keys the store's record of what
// the channel delivered ("slack", "teams", "sns"), so each channel gets each
// change once, whatever the others do.
type AlertChannel struct {
	Name     string
	Notifier Notifier
}

// AlertLog records which changes each alert channel has delivered.
type AlertLog interface {
	// AlertsSent returns those of changeIDs that channel delivered, with
	// when; unknown ids are absent.
	AlertsSent(ctx context.Context, channel string, changeIDs []string) (map[string]time.Time, error)
	// MarkAlertsSent records changeIDs as delivered by channel at at; an id
	// already recorded keeps its first time.
	MarkAlertsSent(ctx context.Context, channel string, changeIDs []string, at time.Time) error
}

// Alert is one unauthorized change as people read it.
type Alert struct {
	ChangeID    string
	Kind        audit.Kind
	SheetID     int64
	Sheet       string
	RowNumber   int
	WorkRequest string
	// Column is empty for a row change (deleted, added late).
	Column   string
	Old, New string
	// Impact is the change in billed money; Unvalued when it could not be
	// computed, Estimated when derived from quantity × unit price.
	Impact    decimal.Decimal
	Estimated bool
	Unvalued  bool
	Risk      audit.Risk
	// Who is "Name <email>", either alone, or "" when unknown.
	Who string
	// When is the edit's time; zero when only a window is known (WindowStart
	// to WindowEnd).
	When                   time.Time
	WindowStart, WindowEnd time.Time
	DetectedAt             time.Time
	// SourceRowURL and AuditRowURL are the Smartsheet permalinks of the
	// source row and of its audit-log row ("" when not known).
	SourceRowURL string
	AuditRowURL  string
}

// Notice is what a channel is asked to deliver: one alert, or a digest of
// more than Options.AlertDigestOver of them.
type Notice struct {
	Alerts []Alert
	Digest bool
	// Total is the sum of the alerts' impacts.
	Total decimal.Decimal
	// AuditSheetURL is the audit-log sheet's permalink ("" when unknown).
	AuditSheetURL string
}

// Defaults of the alert options.
const (
	DefaultAlertMinRisk    = audit.RiskHigh
	DefaultAlertDigestOver = 10
	// DefaultAlertTimeout bounds one send over every channel, retries
	// included: what an unreachable endpoint can add to a run.
	DefaultAlertTimeout = 20 * time.Second
	// DefaultAlertLookback is how far back a run looks for changes whose
	// alert is still owed: a channel down for less than this gets them.
	DefaultAlertLookback = 7 * 24 * time.Hour
)

// AlertLease is the lease a sender holds, so two senders (a run's end and a
// webhook refresh) never send the same change twice.
const AlertLease = "alerts"

// alertLeaseWait is how long a sender waits for another to finish; one
// that gives up leaves its changes to the next run.
const alertLeaseWait = 5 * time.Second

// riskRank orders risks for ALERT_MIN_RISK. UNKNOWN ranks with HIGH: money
// that could not be valued must not read as no money moved.
func riskRank(r audit.Risk) int {
	switch r {
	case audit.RiskLow:
		return 1
	case audit.RiskMedium:
		return 2
	case audit.RiskHigh, audit.RiskUnknown:
		return 3
	}
	return 0
}

// Alertable says whether a change calls for an alert at minRisk: an
// unauthorized change at or above it.
func Alertable(c audit.Change, minRisk audit.Risk) bool {
	return c.Unauthorized() && riskRank(c.Risk) >= riskRank(minRisk)
}

// AlertResult is what one channel did with a send.
type AlertResult struct {
	Channel string
	// Alerts is how many changes were due; Notices how many messages that
	// made (1 for a digest).
	Alerts  int
	Notices int
	Digest  bool
	// Err is why the channel did not deliver (they stay due).
	Err error
}

func (r *Runner) alertsOn() bool { return len(r.opts.Alerts) > 0 && !r.opts.TestMode }

// alertRecent sends the alerts owed for changes detected since
// now − AlertLookback: a run's own, and those a channel failed to deliver
// before. Errors are logged, never returned.
func (r *Runner) alertRecent(ctx context.Context) []AlertResult {
	if !r.alertsOn() {
		return nil
	}
	recs, err := r.store.Changes(ctx, r.opts.Clock().UTC().Add(-r.opts.AlertLookback), time.Time{})
	if err != nil {
		r.log.WarnContext(ctx, "alerts not sent", slog.String("step", "read recent changes"), slog.Any("error", err))
		return nil
	}
	return r.alert(ctx, recs)
}

// alertChanges sends the alerts owed for these freshly recorded changes
// (a webhook refresh's): their records give their audit rows.
func (r *Runner) alertChanges(ctx context.Context, changes []audit.Change) []AlertResult {
	if !r.alertsOn() {
		return nil
	}
	var ids []string
	for _, c := range changes {
		if Alertable(c, r.opts.AlertMinRisk) {
			ids = append(ids, c.ChangeID)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	m, err := r.store.ChangeRecords(ctx, ids)
	if err != nil {
		r.log.WarnContext(ctx, "alerts not sent", slog.String("step", "read change records"), slog.Any("error", err))
		return nil
	}
	recs := make([]ChangeRecord, 0, len(m))
	for _, rec := range m {
		recs = append(recs, rec)
	}
	SortChangeRecords(recs)
	return r.alert(ctx, recs)
}

// alert sends, on every channel, the alerts of recs it has not delivered
// yet, within AlertTimeout, holding the alert lease.
func (r *Runner) alert(ctx context.Context, recs []ChangeRecord) []AlertResult {
	recs = slices.DeleteFunc(slices.Clone(recs), func(rec ChangeRecord) bool {
		return !Alertable(rec.Change, r.opts.AlertMinRisk)
	})
	if len(recs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.opts.AlertTimeout)
	defer cancel()
	release, ok := r.lockAlerts(ctx)
	if !ok {
		return nil
	}
	defer release()
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.Change.ChangeID
	}
	due := make([][]ChangeRecord, len(r.opts.Alerts))
	results := make([]AlertResult, len(r.opts.Alerts))
	needed := map[int64]bool{} // audit rows to link
	for i, ch := range r.opts.Alerts {
		results[i].Channel = ch.Name
		sent, err := r.store.AlertsSent(ctx, ch.Name, ids)
		if err != nil {
			results[i].Err = fmt.Errorf("alert channel %s: read what was sent: %w", ch.Name, err)
			r.log.WarnContext(ctx, "alerts not sent", slog.String("channel", ch.Name),
				slog.String("step", "read what was sent"), slog.Any("error", err))
			continue
		}
		for _, rec := range recs {
			if _, done := sent[rec.Change.ChangeID]; !done {
				due[i] = append(due[i], rec)
				if rec.AuditRowID != 0 {
					needed[rec.AuditRowID] = true
				}
			}
		}
	}
	if !slices.ContainsFunc(due, func(d []ChangeRecord) bool { return len(d) > 0 }) {
		return results
	}
	sheetURL, rowURLs := r.auditLinks(ctx, needed)
	var wg sync.WaitGroup
	for i, ch := range r.opts.Alerts {
		results[i].Alerts = len(due[i])
		if len(due[i]) == 0 {
			continue
		}
		wg.Add(1)
		go func(res *AlertResult, ch AlertChannel, due []ChangeRecord) {
			defer wg.Done()
			r.sendChannel(ctx, res, ch, due, sheetURL, rowURLs)
		}(&results[i], ch, due[i])
	}
	wg.Wait()
	return results
}

// sendChannel delivers a channel's due alerts — one notice each, or one
// digest over AlertDigestOver — and records each delivered notice's changes.
func (r *Runner) sendChannel(ctx context.Context, res *AlertResult, ch AlertChannel, due []ChangeRecord, sheetURL string, rowURLs map[int64]string) {
	alerts := make([]Alert, len(due))
	for i, rec := range due {
		alerts[i] = newAlert(rec, rowURLs[rec.AuditRowID])
	}
	var notices []Notice
	if len(alerts) > r.opts.AlertDigestOver {
		notices = []Notice{{Alerts: alerts, Digest: true, AuditSheetURL: sheetURL}}
		res.Digest = true
	} else {
		for _, a := range alerts {
			notices = append(notices, Notice{Alerts: []Alert{a}, AuditSheetURL: sheetURL})
		}
	}
	for _, n := range notices {
		n.Total = decimal.Zero
		ids := make([]string, len(n.Alerts))
		for i, a := range n.Alerts {
			n.Total = n.Total.Add(a.Impact)
			ids[i] = a.ChangeID
		}
		if err := ch.Notifier.Notify(ctx, n); err != nil {
			res.Err = fmt.Errorf("alert channel %s: notify %d change(s) from %s: %w", ch.Name, len(ids), ids[0], err)
			r.log.WarnContext(ctx, "alert not delivered; the next run retries it", slog.String("channel", ch.Name),
				slog.String("change", ids[0]), slog.Int("changes", len(ids)), slog.Any("error", err))
			return // the endpoint is failing: the rest waits for the next run too
		}
		// Recorded even if the run's context has just ended: it was delivered.
		if err := r.store.MarkAlertsSent(context.WithoutCancel(ctx), ch.Name, ids, r.opts.Clock().UTC()); err != nil {
			res.Err = fmt.Errorf("alert channel %s: record %d change(s) from %s as sent: %w", ch.Name, len(ids), ids[0], err)
			r.log.WarnContext(ctx, "alert delivered but not recorded; it may be sent again", slog.String("channel", ch.Name),
				slog.String("change", ids[0]), slog.Any("error", err))
			return
		}
		res.Notices++
	}
	r.log.InfoContext(ctx, "alerts delivered", slog.String("channel", ch.Name), slog.Int("changes", len(due)),
		slog.Int("notices", res.Notices), slog.Bool("digest", res.Digest))
}

// lockAlerts takes the alert lease, waiting up to alertLeaseWait; ok=false
// when another sender keeps it (its changes and these are then sent by it
// or by the next run).
func (r *Runner) lockAlerts(ctx context.Context) (release func(), ok bool) {
	holder := newHolder()
	ttl := r.opts.AlertTimeout + 30*time.Second
	deadline := time.Now().Add(alertLeaseWait)
	wait := 50 * time.Millisecond
	for {
		got, err := r.store.AcquireLease(ctx, AlertLease, holder, ttl)
		if err != nil {
			r.log.WarnContext(ctx, "alerts not sent", slog.String("step", "take the alert lease"), slog.Any("error", err))
			return nil, false
		}
		if got {
			return func() {
				if err := r.store.ReleaseLease(context.WithoutCancel(ctx), AlertLease, holder); err != nil {
					r.log.WarnContext(ctx, "release the alert lease", slog.Any("error", err))
				}
			}, true
		}
		if time.Now().Add(wait).After(deadline) || sleepCtx(ctx, wait) != nil {
			r.log.InfoContext(ctx, "alerts left to the next run: another sender is busy")
			return nil, false
		}
		wait = min(2*wait, time.Second)
	}
}

// auditLinks reads the permalinks of the audit sheet and of these of its
// rows in one call. Links are a convenience: on an error the alerts go
// without them.
func (r *Runner) auditLinks(ctx context.Context, rowIDs map[int64]bool) (string, map[int64]string) {
	urls := map[int64]string{}
	if r.opts.AuditSheetID == 0 {
		return "", urls
	}
	opts := smartsheet.GetSheetOptions{PageSize: 1}
	if len(rowIDs) > 0 {
		ids := make([]int64, 0, len(rowIDs))
		for id := range rowIDs {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		opts = smartsheet.GetSheetOptions{RowIDs: ids, Include: []string{smartsheet.IncludeRowPermalink}, PageSize: len(ids)}
	}
	s, _, err := r.auditSheet.GetSheet(ctx, r.opts.AuditSheetID, opts)
	if err != nil {
		r.log.WarnContext(ctx, "alerts go without audit-row links", slog.Int64("auditSheet", r.opts.AuditSheetID), slog.Any("error", err))
		return "", urls
	}
	for _, row := range s.Rows {
		if row.Permalink != "" {
			urls[row.ID] = row.Permalink
		} else if s.Permalink != "" {
			urls[row.ID] = RowURL(s.Permalink, row.ID)
		}
	}
	return s.Permalink, urls
}

// RowURL is a row's link made from its sheet's permalink, for when the
// row's own permalink is not known: Smartsheet opens the sheet on the row
// given as rowId.
func RowURL(sheetPermalink string, rowID int64) string {
	sep := "?"
	if strings.Contains(sheetPermalink, "?") {
		sep = "&"
	}
	return sheetPermalink + sep + "rowId=" + strconv.FormatInt(rowID, 10)
}

// newAlert is a recorded change as an alert.
func newAlert(rec ChangeRecord, auditRowURL string) Alert {
	c := rec.Change
	a := Alert{
		ChangeID: c.ChangeID, Kind: c.Kind, SheetID: c.SheetID, Sheet: c.SheetName, RowNumber: c.RowNumber,
		WorkRequest: c.WorkRequest, Column: c.Column, Old: c.OldValue, New: c.NewValue,
		Impact: c.Impact, Estimated: c.Estimated, Unvalued: c.Unvalued, Risk: c.Risk,
		WindowStart: c.Attribution.WindowStart, WindowEnd: c.Attribution.WindowEnd, DetectedAt: c.DetectedAt,
		SourceRowURL: c.Permalink, AuditRowURL: auditRowURL,
	}
	switch at := c.Attribution; {
	case at.Name != "" && at.User != "" && at.Name != at.User:
		a.Who = at.Name + " <" + at.User + ">"
	case at.Name != "":
		a.Who = at.Name
	default:
		a.Who = at.User
	}
	if t := c.Attribution.Time; t != nil {
		a.When = t.UTC()
	}
	return a
}
