package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strconv"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// Workbook renders a report (shared/xlsx).
type Workbook interface {
	Write(w io.Writer, r audit.Report) error
	FileName(r audit.Report) string
}

// ReportSink keeps the workbook before (or instead of) its publication: a
// local folder for the CLI, S3 for the Lambdas.
type ReportSink interface {
	Put(ctx context.Context, name string, data []byte) (location string, err error)
}

// ReportOptions configure the report stage.
type ReportOptions struct {
	Workbook Workbook
	Sink     ReportSink
	// Force produces the workbook even when the run found no change.
	Force bool
	// Anonymize pseudonymises people in the workbook (nil: names as they are).
	Anonymize func(string) string
	// Extra changes to include (test mode: this run's, which are not stored).
	Extra []audit.Change
	// Findings of the run.
	Findings []audit.Finding
	// Integrity is the audit log's verification for the run (nil: not
	// verified), shown on System Insights.
	Integrity *audit.Integrity
	// Usage is the Smartsheet calls made for the run after it was recorded
	// and before its workbook (the attestation's, Attestation.Usage): the
	// workbook's API figures add them to the run's. The publication's own
	// calls, after the workbook is written, cannot be in it.
	Usage *Usage
}

// ReportResult says what the report stage produced.
type ReportResult struct {
	Skipped      bool   // no change and not forced
	FileName     string // the workbook's name
	Location     string // where the sink put it
	AttachmentID int64  // on the audit sheet (0 in test mode)
	Versioned    bool   // uploaded as a new version of the period's attachment
	Status       string // the status line
}

// PeriodOf is the audit period containing t: its week, Monday 00:00 to the
// next Monday 00:00 in the audit timezone. Every run of a week reports on
// that week, so the week's workbook is one attachment with a version a run.
func PeriodOf(t time.Time, loc *time.Location) (start, end time.Time) {
	if loc == nil {
		loc = time.UTC
	}
	lt := t.In(loc)
	daysSinceMonday := (int(lt.Weekday()) + 6) % 7
	start = time.Date(lt.Year(), lt.Month(), lt.Day()-daysSinceMonday, 0, 0, 0, 0, loc)
	return start.UTC(), start.AddDate(0, 0, 7).UTC()
}

// Report builds the period's workbook from the stored change history and the
// run's figures, puts it in the sink and, unless in test mode, publishes it
// to the audit-log sheet: a new version of the period's attachment (one
// attachment per period, no pile of duplicates) and the status row at the top.
// Its errors name the run and the step.
func (r *Runner) Report(ctx context.Context, run RunRecord, ro ReportOptions) (_ ReportResult, err error) {
	defer annotate(&err, "report run %s", run.RunID)
	loc := r.opts.Audit.Location
	pStart, pEnd := PeriodOf(run.StartedAt, loc)
	history, err := r.store.Changes(ctx, pEnd.AddDate(0, 0, -7*(audit.TrendWeeks+1)), time.Time{})
	if err != nil {
		return ReportResult{}, fmt.Errorf("read the change history: %w", err)
	}
	var periodChanges, all []audit.Change
	runChanges := 0
	seen := map[string]bool{}
	add := func(c audit.Change) {
		if seen[c.ChangeID] {
			return
		}
		seen[c.ChangeID] = true
		all = append(all, c)
		if !c.DetectedAt.Before(pStart) && c.DetectedAt.Before(pEnd) {
			periodChanges = append(periodChanges, c)
		}
		if c.RunID == run.RunID {
			runChanges++
		}
	}
	for _, rec := range history {
		add(rec.Change)
	}
	for _, c := range ro.Extra {
		add(c)
	}
	if runChanges == 0 && !ro.Force {
		// Nothing new, but an earlier publication that failed half-way is
		// still repaired.
		return ReportResult{Skipped: true}, r.repairPublication(ctx)
	}
	figures := run
	if ro.Usage != nil {
		figures.APICalls = maps.Clone(run.APICalls)
		ro.Usage.addTo(&figures)
	}
	rep := audit.BuildReport(audit.ReportInput{
		Run: r.runFacts(figures), Changes: periodChanges, History: all, Findings: ro.Findings, Config: r.opts.Audit,
		PeriodStart: pStart, PeriodEnd: pEnd, GeneratedAt: r.opts.Clock().UTC(), Anonymize: ro.Anonymize,
		Integrity: ro.Integrity,
	})
	var buf bytes.Buffer
	if err := ro.Workbook.Write(&buf, rep); err != nil {
		return ReportResult{}, fmt.Errorf("write workbook: %w", err)
	}
	res := ReportResult{FileName: ro.Workbook.FileName(rep), Status: rep.Status}
	if ro.Sink != nil {
		if res.Location, err = ro.Sink.Put(ctx, res.FileName, buf.Bytes()); err != nil {
			return res, fmt.Errorf("keep workbook %s: %w", res.FileName, err)
		}
	}
	if run.TestMode || r.opts.TestMode {
		return res, nil
	}
	if last, ok, err := r.lastPublication(ctx); err != nil {
		return res, err
	} else if ok && last.RunID == run.RunID && last.Done {
		return res, nil // this run is published already: nothing changes
	}
	pub := publication{RunID: run.RunID, FileName: res.FileName, Period: audit.FormatDate(pStart.In(locOrUTC(loc))), Status: statusRow(rep)}
	pub.Status.Workbook = res.FileName
	if err := r.putPublication(ctx, pub); err != nil {
		return res, err
	}
	if res.AttachmentID, res.Versioned, err = r.upload(ctx, pub, buf.Bytes()); err != nil {
		return res, err
	}
	pub.Uploaded = true
	if err := r.putPublication(ctx, pub); err != nil {
		return res, err
	}
	return res, r.finishPublication(ctx, pub)
}

func (r *Runner) runFacts(run RunRecord) audit.RunFacts {
	return audit.RunFacts{
		RunID: run.RunID, StartedAt: run.StartedAt, FinishedAt: run.FinishedAt, SheetsScanned: run.SheetsScanned,
		SheetsSkipped: run.SheetsSkipped, RowsScanned: run.RowsScanned, APICalls: run.APICalls,
		RequestBudgetPerMinute: r.opts.RequestsPerMinute, HistoryBudgetPerMinute: r.opts.HistoryPerMinute,
		Retries: run.Retries, RateLimitWaits: run.RateLimitWaits, RateLimitWait: run.RateLimitWait,
		CellHistoryCalls: run.CellHistoryCalls, TestMode: run.TestMode,
	}
}

// upload attaches the workbook to the audit sheet, or adds it as a new
// version of the period's attachment: the one this product last uploaded for
// the same audit period (recorded in the store, since the name follows the
// billing weeks the changes hit, which can grow during the week). The same
// run's workbook is not uploaded twice.
func (r *Runner) upload(ctx context.Context, pub publication, data []byte) (int64, bool, error) {
	atts, err := r.auditSheet.ListAttachments(ctx, r.opts.AuditSheetID)
	if err != nil {
		return 0, false, fmt.Errorf("list attachments of audit sheet %d: %w", r.opts.AuditSheetID, err)
	}
	const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	key := periodAttachmentKey + pub.Period
	for _, a := range atts {
		if a.Name == pub.FileName { // this run's workbook is already there
			return a.ID, false, r.rememberAttachment(ctx, key, a.ID)
		}
	}
	last, _, err := r.store.Meta(ctx, key)
	if err != nil {
		return 0, false, fmt.Errorf("read the attachment of period %s: %w", pub.Period, err)
	}
	for _, a := range atts {
		if last == "" || strconv.FormatInt(a.ID, 10) != last {
			continue
		}
		v, err := r.auditSheet.AttachNewVersion(ctx, r.opts.AuditSheetID, a.ID, pub.FileName, xlsxType, bytes.NewReader(data))
		if err != nil {
			return 0, false, fmt.Errorf("upload new version of %s: %w", a.Name, err)
		}
		return v.ID, true, r.rememberAttachment(ctx, key, v.ID)
	}
	a, err := r.auditSheet.AttachFile(ctx, r.opts.AuditSheetID, pub.FileName, xlsxType, bytes.NewReader(data))
	if err != nil {
		return 0, false, fmt.Errorf("attach %s: %w", pub.FileName, err)
	}
	return a.ID, false, r.rememberAttachment(ctx, key, a.ID)
}

// periodAttachmentKey + the audit period's first date is the store's record
// of the attachment holding that period's workbook (its latest version).
const periodAttachmentKey = "attachment/"

func (r *Runner) rememberAttachment(ctx context.Context, key string, id int64) error {
	return wrapErr("record attachment "+strconv.FormatInt(id, 10), r.store.PutMeta(ctx, key, strconv.FormatInt(id, 10)))
}

func locOrUTC(loc *time.Location) *time.Location {
	if loc == nil {
		return time.UTC
	}
	return loc
}

// publication is the progress of the last publication, kept in the store so
// that one that failed after the upload is finished by the next run.
type publication struct {
	RunID    string    `json:"runId"`
	FileName string    `json:"fileName"`
	Period   string    `json:"period"` // the audit period's first date: keys its attachment
	Uploaded bool      `json:"uploaded"`
	Done     bool      `json:"done"`
	Status   StatusRow `json:"status"`
}

const publicationKey = "publication"

func (r *Runner) putPublication(ctx context.Context, p publication) error {
	v, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode the publication of run %s: %w", p.RunID, err)
	}
	return wrapErr("record the publication of run "+p.RunID, r.store.PutMeta(ctx, publicationKey, string(v)))
}

func (r *Runner) lastPublication(ctx context.Context) (publication, bool, error) {
	var p publication
	v, ok, err := r.store.Meta(ctx, publicationKey)
	if err != nil {
		return p, false, fmt.Errorf("read the last publication: %w", err)
	}
	if !ok {
		return p, false, nil
	}
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return p, false, fmt.Errorf("read the last publication: %w", err)
	}
	return p, true, nil
}

func (r *Runner) repairPublication(ctx context.Context) error {
	if r.opts.TestMode || r.opts.AuditSheetID == 0 {
		return nil
	}
	p, ok, err := r.lastPublication(ctx)
	if err != nil || !ok || p.Done || !p.Uploaded {
		return err
	}
	r.log.InfoContext(ctx, "finishing the last publication", slog.String("run", p.RunID))
	return r.finishPublication(ctx, p)
}

func (r *Runner) finishPublication(ctx context.Context, p publication) error {
	if err := r.updateSummary(ctx, p.Status.values()); err != nil {
		return err
	}
	p.Done = true
	return r.putPublication(ctx, p)
}

// StatusRow is how the audit stands after a run, as the audit sheet's
// summary fields show it.
type StatusRow struct {
	Line     string `json:"line"`
	Level    string `json:"level"`
	Period   string `json:"period"`
	Counts   string `json:"counts"`
	Net      string `json:"net"`
	RunID    string `json:"runId"`
	Workbook string `json:"workbook"`
	At       string `json:"at"`
}

func (st StatusRow) values() map[string]smartsheet.Value {
	v := map[string]smartsheet.Value{
		SumStatus: smartsheet.StringValue(st.Line), SumPeriod: smartsheet.StringValue(st.Period),
		SumCounts: smartsheet.StringValue(st.Counts), SumLastRun: smartsheet.StringValue(st.RunID),
		SumLastRunAt: smartsheet.StringValue(st.At), SumWorkbook: smartsheet.StringValue(st.Workbook),
	}
	if d, err := decimal.NewFromString(st.Net); err == nil {
		v[SumNet] = smartsheet.NumberValue(d.StringFixed(2))
	}
	return v
}

func statusRow(rep audit.Report) StatusRow {
	unauth, review := 0, 0
	for _, s := range rep.ByStatus {
		switch s.Status {
		case audit.StatusUnauthorized:
			unauth = s.Count
		case audit.StatusNeedsReview:
			review = s.Count
		}
	}
	high := 0
	for _, rt := range rep.ByRisk {
		if rt.Risk == audit.RiskHigh {
			high = rt.Count
		}
	}
	return StatusRow{
		Line: rep.Status, Level: string(rep.Level),
		Period: rep.PeriodText(),
		Counts: fmt.Sprintf("%d changes: %d unauthorized, %d to review, %d high risk", rep.Totals.All.Count, unauth, review, high),
		Net:    rep.Totals.All.Net.StringFixed(2), RunID: rep.RunID,
		At: rep.GeneratedAt.In(rep.Location).Format(time.RFC3339),
	}
}
