package audit

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RuleID names a recommendation rule.
type RuleID string

// The recommendation rules. Each fires on a figure of the report, which the
// recommendation's Trigger cites. The report lists them in the order of
// [recommendRules], not of this list.
const (
	// RuleReconcileInvoices: HIGH-risk changes that were not authorized
	// (unauthorized or needing review) → reconcile the invoices of their weeks.
	RuleReconcileInvoices RuleID = "RECONCILE_INVOICES"
	// RuleLockClosedWeeks: unauthorized changes → lock rows after week end.
	RuleLockClosedWeeks RuleID = "LOCK_CLOSED_WEEKS"
	// RuleReviewAutomation: WEEK_MOVED changes made by Smartsheet automation →
	// review the workflow that stamps Snapshot Date.
	RuleReviewAutomation RuleID = "REVIEW_AUTOMATION"
	// RuleRestoreColumn: a tracked or week-ending column missing from a sheet
	// → restore it (one recommendation per sheet).
	RuleRestoreColumn RuleID = "RESTORE_COLUMN"
	// RuleValidateMoney: money or quantity values that did not parse → add
	// column validation.
	RuleValidateMoney RuleID = "VALIDATE_MONEY"
	// RuleValidateDates: dates that did not parse or are implausible → make
	// the columns DATE columns and check them.
	RuleValidateDates RuleID = "VALIDATE_DATES"
	// RuleFillWeekEnding: rows with no week ending → fill them.
	RuleFillWeekEnding RuleID = "FILL_WEEK_ENDING"
	// RuleEnableWebhooks: more than [UnknownAttributionThreshold] of the
	// changes have no known author → enable webhooks.
	RuleEnableWebhooks RuleID = "ENABLE_WEBHOOKS"
	// RuleInvestigateTampering: verification found the audit log edited →
	// find out who did it, from the sheet's activity log.
	RuleInvestigateTampering RuleID = "INVESTIGATE_TAMPERING"
	// RuleRestoreAccess: source sheets that could not be read → share them
	// with the integration user again, or drop them from the sources.
	RuleRestoreAccess RuleID = "RESTORE_ACCESS"
)

// Recommendation is an action with the figure that triggered it.
type Recommendation struct {
	Rule    RuleID
	Action  string
	Trigger string
}

// recRule is one row of [recommendRules]: when its condition holds on the
// report's figures, its builder writes the recommendations.
type recRule struct {
	id RuleID
	// when reports whether the rule fires.
	when func(f *recFacts) bool
	// build writes the rule's recommendations (one, or one per sheet); their
	// Rule is set from id.
	build func(f *recFacts) []Recommendation
}

// recommendRules are the recommendation rules, in the order the report
// lists what they recommend: the alarm about the audit log itself first,
// then money already billed, then how to stop it happening again, then
// what keeps changes from being detected, valued or attributed.
//
// To add a recommendation, add a RuleID, gather the figure it cites into
// [recFacts] if the report does not hold it already, and add a row here.
var recommendRules = []recRule{{
	id:    RuleInvestigateTampering,
	when:  func(f *recFacts) bool { return f.r.Integrity != nil && !f.r.Integrity.Verification.OK() },
	build: investigateTampering,
}, {
	id:    RuleRestoreAccess,
	when:  func(f *recFacts) bool { return len(f.unreadable) > 0 },
	build: restoreAccess,
}, {
	id:    RuleReconcileInvoices,
	when:  func(f *recFacts) bool { return f.high.Count > 0 },
	build: reconcileInvoices,
}, {
	id:    RuleLockClosedWeeks,
	when:  func(f *recFacts) bool { return f.r.Totals.Unauthorized.Count > 0 },
	build: lockClosedWeeks,
}, {
	id:    RuleReviewAutomation,
	when:  func(f *recFacts) bool { return f.autoMoves > 0 },
	build: reviewAutomation,
}, {
	id:    RuleRestoreColumn,
	when:  func(f *recFacts) bool { return len(f.missing) > 0 },
	build: restoreColumns,
}, {
	id:    RuleValidateMoney,
	when:  func(f *recFacts) bool { return f.moneyBad > 0 },
	build: validateMoney,
}, {
	id:    RuleValidateDates,
	when:  func(f *recFacts) bool { return f.dateBad > 0 },
	build: validateDates,
}, {
	id:    RuleFillWeekEnding,
	when:  func(f *recFacts) bool { return f.rowNoWeek > 0 },
	build: fillWeekEnding,
}, {
	id: RuleEnableWebhooks,
	when: func(f *recFacts) bool {
		cv := f.r.Coverage
		return cv.Changes > 0 && cv.UnknownShare > UnknownAttributionThreshold
	},
	build: enableWebhooks,
}}

// recommend applies [recommendRules] in order. raw are the changes before
// anonymisation (to recognise automation and count distinct people).
func recommend(r *Report, raw []Change) []Recommendation {
	f := gatherRecFacts(r, raw)
	var recs []Recommendation
	for _, rule := range recommendRules {
		if !rule.when(f) {
			continue
		}
		for _, rec := range rule.build(f) {
			rec.Rule = rule.id
			recs = append(recs, rec)
		}
	}
	return recs
}

// recFacts are the figures the rules read that the report does not hold,
// gathered before any rule runs so that a rule's condition and its builder
// see the same figures and no rule scans the changes again.
type recFacts struct {
	r *Report
	// high is the impact of the HIGH-risk changes that were not authorized;
	// highWeeks are their weeks and the weeks they moved to, sorted.
	high      Impact
	highWeeks []time.Time
	// editors counts the known people who made unauthorized changes.
	editors int
	// autoMoves counts the WEEK_MOVED changes made by Smartsheet
	// automation; autoSheets names their sheets, sorted.
	autoMoves  int
	autoSheets []string
	// missing lists the sheets with missing columns, by name then id.
	missing []sheetColumns
	// moneyBad counts unparseable money and quantity values, dateBad bad
	// or implausible dates; moneyCols and dateCols name their columns,
	// sorted.
	moneyBad, dateBad   int
	moneyCols, dateCols []string
	// rowNoWeek counts the rows without a week ending.
	rowNoWeek int
	// unreadable names the source sheets that could not be read, sorted.
	unreadable []string
}

// sheetColumns are the columns missing from one sheet.
type sheetColumns struct {
	id      int64
	name    string   // as shown: the name, or "sheet <id>"
	columns []string // sorted, without duplicates
}

func gatherRecFacts(r *Report, raw []Change) *recFacts {
	f := &recFacts{r: r}
	f.readChanges(r.Changes)
	f.readRaw(raw)
	f.readFindings(r.Findings)
	return f
}

// readChanges gathers the HIGH-risk changes that were not authorized
// (unauthorized, or not judgeable): their invoices may be wrong.
func (f *recFacts) readChanges(changes []*Change) {
	for _, c := range changes {
		if c.Risk != RiskHigh || c.Status == StatusAuthorized {
			continue
		}
		f.high.add(c.Impact)
		for _, w := range []time.Time{c.WeekEnding, c.MovedTo} {
			if !w.IsZero() && !slices.ContainsFunc(f.highWeeks, w.Equal) {
				f.highWeeks = append(f.highWeeks, w)
			}
		}
	}
	slices.SortFunc(f.highWeeks, func(a, b time.Time) int { return a.Compare(b) })
}

// readRaw counts the people behind unauthorized changes (by email, in any
// case, else by name; unknown authors are not counted) and the week moves
// made by automation. It reads the changes before anonymisation, as given,
// duplicates included.
func (f *recFacts) readRaw(raw []Change) {
	users := make(map[string]struct{})
	for i := range raw {
		c := &raw[i]
		if c.Unauthorized() {
			if u := strings.ToLower(cmp.Or(c.Attribution.User, c.Attribution.Name)); u != "" {
				users[u] = struct{}{}
			}
		}
		if c.Kind == KindWeekMoved && IsAutomation(c.Attribution) {
			f.autoMoves++
			if s := sheetLabel(c.SheetName, c.SheetID); !slices.Contains(f.autoSheets, s) {
				f.autoSheets = append(f.autoSheets, s)
			}
		}
	}
	f.editors = len(users)
	slices.Sort(f.autoSheets)
}

// readFindings sorts the findings into what the rules fix: a missing column,
// or a sheet without a week-ending column (a NO_WEEK_ENDING finding with no
// row), is restored per sheet; a row without a week ending is filled; bad
// money and dates call for column validation.
func (f *recFacts) readFindings(findings []Finding) {
	type sheetKey struct {
		id   int64
		name string
	}
	idx := make(map[sheetKey]int)
	for _, fd := range findings {
		switch {
		case fd.Kind == FindingMissingColumn || (fd.Kind == FindingNoWeekEnding && fd.RowID == 0):
			k := sheetKey{fd.SheetID, sheetLabel(fd.SheetName, fd.SheetID)}
			i, ok := idx[k]
			if !ok {
				i = len(f.missing)
				idx[k] = i
				f.missing = append(f.missing, sheetColumns{id: k.id, name: k.name})
			}
			if s := &f.missing[i]; !slices.Contains(s.columns, fd.Column) {
				s.columns = append(s.columns, fd.Column)
			}
		case fd.Kind == FindingNoWeekEnding:
			f.rowNoWeek++
		case fd.Kind == FindingSheetUnreadable:
			if l := sheetLabel(fd.SheetName, fd.SheetID); !slices.Contains(f.unreadable, l) {
				f.unreadable = append(f.unreadable, l)
			}
		case fd.Kind == FindingBadMoney || fd.Kind == FindingBadQuantity:
			f.moneyBad++
			f.moneyCols = addColumn(f.moneyCols, fd.Column)
		case fd.Kind == FindingBadDate || fd.Kind == FindingDateFarFuture || fd.Kind == FindingDateFarPast || fd.Kind == FindingSnapshotFuture:
			f.dateBad++
			f.dateCols = addColumn(f.dateCols, fd.Column)
		}
	}
	slices.SortFunc(f.missing, func(a, b sheetColumns) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id)) })
	for _, s := range f.missing {
		slices.Sort(s.columns)
	}
	slices.Sort(f.moneyCols)
	slices.Sort(f.dateCols)
	slices.Sort(f.unreadable)
}

// addColumn adds a named column to cols once.
func addColumn(cols []string, col string) []string {
	if col == "" || slices.Contains(cols, col) {
		return cols
	}
	return append(cols, col)
}

func investigateTampering(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action:  "Investigate the edits to the audit log: run `billing-audit verify` for each problem, then check the audit sheet's activity log for who made them; the ledger keeps the original rows",
		Trigger: f.r.Integrity.Verification.Summary(),
	}}
}

func restoreAccess(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action: "Share " + quoteList(f.unreadable, "") + " with the integration user again, or remove them from SOURCE_SHEET_IDS or their folder",
		Trigger: fmt.Sprintf("%s could not be read: edits to them are not audited until they can be",
			plural(len(f.unreadable), "source sheet")),
	}}
}

func reconcileInvoices(f *recFacts) []Recommendation {
	action := "Reconcile the invoices of the affected weeks against the sheets"
	if len(f.highWeeks) > 0 {
		weeks := make([]string, len(f.highWeeks))
		for i, w := range f.highWeeks {
			weeks[i] = FormatDate(w)
		}
		action = "Reconcile invoices for weeks ending " + strings.Join(weeks, ", ")
	}
	return []Recommendation{{
		Action: action,
		Trigger: fmt.Sprintf("%s above %s made after their week closed or not judgeable (gross %s, net %s)",
			plural(f.high.Count, "HIGH-risk change"), MoneyText(f.r.HighRisk), MoneyText(f.high.Gross), MoneyText(f.high.Net)),
	}}
}

func lockClosedWeeks(f *recFacts) []Recommendation {
	u := f.r.Totals.Unauthorized
	return []Recommendation{{
		Action: "Lock rows after week end (Smartsheet row locking or a locked-row automation on the week-ending date)",
		Trigger: fmt.Sprintf("%s to closed weeks by %s (gross %s)",
			plural(u.Count, "unauthorized edit"), plural(f.editors, "known editor"), MoneyText(u.Gross)),
	}}
}

func reviewAutomation(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action: "Review the automation workflow that stamps Snapshot Date: it moves billed units into other weeks",
		Trigger: fmt.Sprintf("%s by Smartsheet automation on %s",
			plural(f.autoMoves, "WEEK_MOVED change"), strings.Join(f.autoSheets, ", ")),
	}}
}

func restoreColumns(f *recFacts) []Recommendation {
	recs := make([]Recommendation, 0, len(f.missing))
	for _, s := range f.missing {
		cols := quoteList(s.columns, "")
		word := "column"
		if len(s.columns) > 1 {
			word = "columns"
		}
		recs = append(recs, Recommendation{
			Action: fmt.Sprintf("Restore %s %s on sheet %q", word, cols, s.name),
			Trigger: fmt.Sprintf("%s on sheet %q: changes to %s cannot be detected or judged",
				plural(len(s.columns), "missing-column finding"), s.name, cols),
		})
	}
	return recs
}

func validateMoney(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action:  "Add column validation for money and quantity (restrict " + quoteList(f.moneyCols, "the money columns") + " to numbers)",
		Trigger: fmt.Sprintf("%s: their changes cannot be valued", plural(f.moneyBad, "unparseable money or quantity value")),
	}}
}

func validateDates(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action:  "Make " + quoteList(f.dateCols, "the date columns") + " DATE columns and check implausible dates",
		Trigger: fmt.Sprintf("%s (unparseable, far future or past, or a Snapshot Date in the future)", plural(f.dateBad, "date finding")),
	}}
}

func fillWeekEnding(f *recFacts) []Recommendation {
	return []Recommendation{{
		Action:  fmt.Sprintf("Fill %q or %q on the rows without a week ending", ColWeekEnding, ColSnapshotDate),
		Trigger: fmt.Sprintf("%s without a week ending: their changes always need review", plural(f.rowNoWeek, "row")),
	}}
}

func enableWebhooks(f *recFacts) []Recommendation {
	cv := f.r.Coverage
	return []Recommendation{{
		Action: "Enable webhooks so each edit's author and time are recorded as it happens",
		Trigger: fmt.Sprintf("%.0f%% of changes (%d of %d) have no known author (threshold %.0f%%)",
			100*cv.UnknownShare, cv.Changes-cv.Attributed, cv.Changes, 100*UnknownAttributionThreshold),
	}}
}
