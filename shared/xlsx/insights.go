package xlsx

import (
	"fmt"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// MaxFindingRows caps the findings list on System Insights; the counts by
// kind always cover every finding.
const MaxFindingRows = 10000

// writeInsights writes System Insights: how the run went, section by section
// down the page, each section starting two rows below the last.
func writeInsights(f *excelize.File, st *styles, r *audit.Report) error {
	g := &grid{f: f, sheet: SheetInsights}
	g.widths(44, 18, 30, 12, 22, 60)
	g.set(1, 1, "System Insights", st.title)
	g.set(1, 2, "How the run went: API use against the budgets, rate limiting, coverage, data findings and the recommendations they trigger.", st.note)

	row := writeRunFacts(g, st, r, 4)
	row = writeIntegrity(g, st, r, row+2)
	row = writeAPICalls(g, st, r, row+2)
	row = writeBudgets(g, st, r, row+2)
	row = writeFindingGroups(g, st, r, row+2)
	row = writeRecommendations(g, st, r, row+2)
	writeFindings(g, st, r, row+2)
	return g.err
}

// writeRunFacts writes the "Run" table from row on and returns the last row
// written.
func writeRunFacts(g *grid, st *styles, r *audit.Report, row int) int {
	run, api, loc := r.Run, r.API, r.Location
	g.set(1, row, "Run", st.subtitle)
	row++
	g.header(row, st.header, "Measure", "Value")
	lines := []measure{{"Run ID", r.RunID, st.text}}
	if !run.StartedAt.IsZero() {
		lines = append(lines, measure{"Started (" + tzName(r) + ")", serial(run.StartedAt, loc), st.when})
	}
	if !run.FinishedAt.IsZero() {
		lines = append(lines, measure{"Finished (" + tzName(r) + ")", serial(run.FinishedAt, loc), st.when})
	}
	lines = append(lines,
		measure{"Scan duration", formatDuration(api.Duration), 0},
		measure{"Scan duration (seconds)", api.Duration.Seconds(), 0},
		measure{"Test mode (nothing written)", yesNo(run.TestMode), 0},
		measure{"Sheets scanned", run.SheetsScanned, st.integer},
		measure{"Sheets skipped as unchanged", run.SheetsSkipped, st.integer},
		measure{"Rows scanned", run.RowsScanned, st.integer},
	)
	return writeMeasures(g, st, row, lines)
}

// writeAPICalls writes the calls by endpoint and their total from row on and
// returns the last row written.
func writeAPICalls(g *grid, st *styles, r *audit.Report, row int) int {
	api := r.API
	g.set(1, row, "API calls by endpoint", st.subtitle)
	row++
	g.set(1, row, "The run's calls (the scan and every sheet worker) and those verifying the audit log for it; the publication's few calls after this workbook was written are not in it.", st.note)
	row++
	g.header(row, st.header, "Endpoint", "Calls", "Share of calls")
	if len(api.Endpoints) == 0 {
		row++
		g.set(1, row, "No API call recorded.", st.note)
	}
	for _, e := range api.Endpoints {
		row++
		g.row(row, []int{st.text, st.integer, st.percent}, e.Endpoint, e.Calls, e.Share)
	}
	row++
	g.row(row, []int{st.label, st.integer}, "Total", api.Total)
	return row
}

// writeBudgets writes API use against the request and cell-history budgets
// from row on and returns the last row written.
func writeBudgets(g *grid, st *styles, r *audit.Report, row int) int {
	api := r.API
	g.set(1, row, "Budgets and rate limiting", st.subtitle)
	row++
	g.header(row, st.header, "Measure", "Value")
	return writeMeasures(g, st, row, []measure{
		{"Request budget (calls per minute)", api.RequestBudgetPerMinute, st.integer},
		{"Average rate achieved (calls per minute; a run under a minute counts as one)", api.AvgPerMinute, st.integer},
		{"Calls the budget allowed over the scan", api.RequestCapacity, st.integer},
		{"Share of the request budget used", api.RequestUse, st.percent},
		{"Cell-history calls spent", api.HistoryCalls, st.integer},
		{"Cell-history budget (calls per minute)", api.HistoryBudgetPerMinute, st.integer},
		{"Cell-history calls the budget allowed", api.HistoryCapacity, st.integer},
		{"Share of the cell-history budget used", api.HistoryUse, st.percent},
		{"Rate-limit waits", api.RateLimitWaits, st.integer},
		{"Time spent waiting for the rate limit", formatDuration(api.RateLimitWait), 0},
		{"Retries", api.Retries, st.integer},
	})
}

// writeFindingGroups writes the count of findings by kind from row on and
// returns the last row written.
func writeFindingGroups(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, "Findings by kind", st.subtitle)
	row++
	g.header(row, st.header, "Kind", "Count", "Sheets")
	if len(r.FindingGroups) == 0 {
		row++
		g.set(1, row, "No finding: every sheet had the tracked columns and every value parsed.", st.note)
	}
	for _, fg := range r.FindingGroups {
		row++
		g.row(row, []int{st.text, st.integer, st.wrap}, string(fg.Kind), fg.Count, strings.Join(fg.Sheets, ", "))
	}
	return row
}

// writeRecommendations writes the rules that fired from row on and returns
// the last row written.
func writeRecommendations(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, "Recommendations", st.subtitle)
	row++
	g.header(row, st.header, "Action", "Rule", "Triggered by")
	if len(r.Recommendations) == 0 {
		row++
		g.set(1, row, "No rule fired: nothing to recommend.", st.note)
	}
	for _, rec := range r.Recommendations {
		row++
		g.row(row, []int{st.wrap, st.text, st.wrap}, rec.Action, string(rec.Rule), rec.Trigger)
		g.merge(g.cell(3, row), g.cell(6, row))
	}
	return row
}

// writeFindings lists the findings from row on, at most MaxFindingRows of
// them.
func writeFindings(g *grid, st *styles, r *audit.Report, row int) {
	g.set(1, row, "Findings", st.subtitle)
	row++
	g.header(row, st.header, "Kind", "Sheet", "Column", "Row", "Raw value", "Message")
	for i, fd := range r.Findings {
		if i == MaxFindingRows {
			row++
			g.set(1, row, fmt.Sprintf("… and %d more findings (counted above).", len(r.Findings)-MaxFindingRows), st.note)
			break
		}
		row++
		var rowNum any
		if fd.RowNumber > 0 {
			rowNum = fd.RowNumber
		}
		g.row(row, []int{st.text, st.text, st.text, st.integer, st.text, st.wrap},
			string(fd.Kind), sheetName(fd), fd.Column, rowNum, fd.Raw, fd.Message)
	}
}

// MaxIntegrityRows caps the problems listed on System Insights; the counts
// by kind cover every problem.
const MaxIntegrityRows = 200

// writeIntegrity writes what verifying the audit log found, from row on, and
// returns the last row written.
func writeIntegrity(g *grid, st *styles, r *audit.Report, row int) int {
	g.set(1, row, "Audit log integrity", st.subtitle)
	in := r.Integrity
	if in == nil {
		row++
		g.set(1, row, "Not verified in this run.", st.note)
		return row
	}
	v := in.Verification
	row++
	g.header(row, st.header, "Measure", "Value")
	put := func(label string, val any, style int) {
		row++
		g.row(row, []int{st.label, style}, label, val)
	}
	verdict, style := "VERIFIED", st.text
	if !v.OK() {
		verdict, style = "TAMPERING DETECTED", st.alert
	}
	put("Verdict", verdict, style)
	put("Summary", v.Summary(), st.wrap)
	g.merge(g.cell(2, row), g.cell(6, row))
	put("Ledger entries", int(v.Entries), st.integer)
	put("Ledger head (entry, hash)", fmt.Sprintf("%d, %s", v.HeadSeq, v.HeadHash), st.text)
	put("Audit rows read", v.Rows, st.integer)
	put("Audit rows matching the ledger", v.Matched, st.integer)
	put("Rows not written yet", v.Pending, st.integer)
	put("Signed digests checked", v.Digests, st.integer)
	digest := in.DigestName
	if in.DigestLocation != "" {
		digest += " (" + in.DigestLocation + ")"
	}
	if digest == "" {
		digest = "none: " + in.DigestWithheld
	}
	put("Digest signed for this run", digest, st.wrap)
	g.merge(g.cell(2, row), g.cell(6, row))
	if len(v.Skipped) > 0 {
		put("Not checked", strings.Join(v.Skipped, "; "), st.wrap)
	}
	if v.OK() {
		return row
	}
	row += 2
	g.header(row, st.header, "Problem", "Change ID", "Work Request #", "Audit row", "Column", "Ledger → sheet / detail")
	for i, p := range v.Problems {
		if i == MaxIntegrityRows {
			row++
			g.set(1, row, fmt.Sprintf("… and %d more problems (billing-audit verify lists them all).", v.Total()-MaxIntegrityRows), st.note)
			break
		}
		row++
		var rowNum any
		if p.RowNumber > 0 {
			rowNum = p.RowNumber
		}
		detail := p.Detail
		if p.Column != "" {
			detail = fmt.Sprintf("%q → %q", p.Ledger, p.Sheet)
		}
		g.row(row, []int{st.text, st.text, st.text, st.integer, st.text, st.wrap}, string(p.Kind), p.ChangeID, p.WorkRequest, rowNum, p.Column, detail)
	}
	return row
}

func sheetName(f audit.Finding) string {
	if f.SheetName != "" {
		return f.SheetName
	}
	return fmt.Sprintf("sheet %d", f.SheetID)
}
