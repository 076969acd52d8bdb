package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// recsOf keeps the recommendations of one rule (nil when it did not fire).
func recsOf(recs []Recommendation, rule RuleID) []Recommendation {
	var out []Recommendation
	for _, r := range recs {
		if r.Rule == rule {
			out = append(out, r)
		}
	}
	return out
}

// Fixtures of the recommendation tests.
var (
	recAutomation = func(c *Change) {
		c.Kind, c.Attribution.User, c.Attribution.Name = KindWeekMoved, AutomationEmail, "Automation"
	}
	recUnknown     = func(c *Change) { c.Attribution = Attribution{Source: SourceUnknown} }
	recMissingQty  = Finding{Kind: FindingMissingColumn, SheetID: 2, SheetName: "Crew B", Column: ColQuantity}
	recMissingCU   = Finding{Kind: FindingMissingColumn, SheetID: 2, SheetName: "Crew B", Column: ColCU}
	recNoWeekSheet = Finding{Kind: FindingNoWeekEnding, SheetID: 3, SheetName: "Crew C", Column: ColWeekEnding}
	recNoWeekRow   = Finding{Kind: FindingNoWeekEnding, SheetID: 1, RowID: 5, RowNumber: 5}
	recBadMoney    = Finding{Kind: FindingBadMoney, SheetID: 1, RowID: 5, Column: ColPrice, Raw: "12O0"}
	recBadQuantity = Finding{Kind: FindingBadQuantity, SheetID: 1, RowID: 6, Column: ColQuantity, Raw: "ten"}
	recBadDate     = Finding{Kind: FindingDateFarFuture, SheetID: 1, RowID: 6, Column: ColSnapshotDate, Raw: "2035-01-01"}
)

// recTampered is a verification that found one edited audit row.
func recTampered() *Integrity {
	var v Verification
	v.Add(Problem{Kind: ProblemAlteredCell, ChangeID: "a", Column: ColPrice, Ledger: "10", Sheet: "1"})
	return &Integrity{Verification: v}
}

const (
	actionTampering  = "Investigate the edits to the audit log: run `billing-audit verify` for each problem, then check the audit sheet's activity log for who made them; the ledger keeps the original rows"
	actionLock       = "Lock rows after week end (Smartsheet row locking or a locked-row automation on the week-ending date)"
	actionAutomation = "Review the automation workflow that stamps Snapshot Date: it moves billed units into other weeks"
	actionWebhooks   = "Enable webhooks so each edit's author and time are recorded as it happens"
)

// TestRecommend pins each rule's recommendations, exactly, when it fires and
// when it does not.
func TestRecommend(t *testing.T) {
	tests := []struct {
		name      string
		changes   []Change
		findings  []Finding
		integrity *Integrity
		rule      RuleID
		want      []Recommendation // nil: the rule does not fire
	}{
		{name: "tampering: the log was edited", integrity: recTampered(), rule: RuleInvestigateTampering,
			want: []Recommendation{{RuleInvestigateTampering, actionTampering, "TAMPERING DETECTED: 1 problem (1 ALTERED_CELL)"}}},
		{name: "tampering: the log verified", integrity: &Integrity{Verification: Verification{Entries: 1, Rows: 1, Matched: 1}}, rule: RuleInvestigateTampering},
		{name: "tampering: not verified", rule: RuleInvestigateTampering},

		{name: "access: two sheets unreadable, one of them twice, sorted",
			findings: []Finding{recUnreadable(8, "Crew South"), recUnreadable(3, ""), recUnreadable(8, "Crew South"), recBadMoney}, rule: RuleRestoreAccess,
			want: []Recommendation{{RuleRestoreAccess,
				`Share "Crew South", "sheet 3" with the integration user again, or remove them from SOURCE_SHEET_IDS or their folder`,
				"2 source sheets could not be read: edits to them are not audited until they can be"}}},
		{name: "access: every sheet read", findings: []Finding{recBadMoney, recMissingQty}, rule: RuleRestoreAccess},

		{name: "reconcile: HIGH unauthorized and needing review",
			changes: []Change{rc("a", "1500", StatusUnauthorized), rc("b", "-2000", StatusNeedsReview, func(c *Change) { c.WeekEnding = repWeek.AddDate(0, 0, -7) })},
			rule:    RuleReconcileInvoices,
			want: []Recommendation{{RuleReconcileInvoices, "Reconcile invoices for weeks ending 2026-11-08, 2026-11-15",
				"2 HIGH-risk changes above $1,000.00 made after their week closed or not judgeable (gross $3,500.00, net -$500.00)"}}},
		{name: "reconcile: a week move names both weeks",
			changes: []Change{rc("a", "1500", StatusUnauthorized, func(c *Change) { c.Kind, c.MovedTo = KindWeekMoved, repWeek.AddDate(0, 0, 7) })},
			rule:    RuleReconcileInvoices,
			want: []Recommendation{{RuleReconcileInvoices, "Reconcile invoices for weeks ending 2026-11-15, 2026-11-22",
				"1 HIGH-risk change above $1,000.00 made after their week closed or not judgeable (gross $1,500.00, net $1,500.00)"}}},
		{name: "reconcile: no week known",
			changes: []Change{rc("a", "1500", StatusNeedsReview, func(c *Change) { c.WeekEnding = time.Time{} })},
			rule:    RuleReconcileInvoices,
			want: []Recommendation{{RuleReconcileInvoices, "Reconcile the invoices of the affected weeks against the sheets",
				"1 HIGH-risk change above $1,000.00 made after their week closed or not judgeable (gross $1,500.00, net $1,500.00)"}}},
		{name: "reconcile: HIGH but authorized", changes: []Change{rc("a", "1500", StatusAuthorized)}, rule: RuleReconcileInvoices},
		{name: "reconcile: MEDIUM unauthorized", changes: []Change{rc("a", "999", StatusUnauthorized)}, rule: RuleReconcileInvoices},

		{name: "lock: unauthorized by 2 users",
			changes: []Change{rc("a", "10", StatusUnauthorized), rc("b", "20", StatusUnauthorized, func(c *Change) { c.Attribution.User = "raj@example.com" })},
			rule:    RuleLockClosedWeeks,
			want:    []Recommendation{{RuleLockClosedWeeks, actionLock, "2 unauthorized edits to closed weeks by 2 known editors (gross $30.00)"}}},
		{name: "lock: an email's case and unknown authors do not count as editors",
			changes: []Change{
				rc("a", "10", StatusUnauthorized), rc("b", "10", StatusUnauthorized, func(c *Change) { c.Attribution.User = "KIM@example.com" }),
				rc("c", "-10", StatusUnauthorized, recUnknown), rc("d", "99", StatusAuthorized, func(c *Change) { c.Attribution.User = "raj@example.com" }),
			},
			rule: RuleLockClosedWeeks,
			want: []Recommendation{{RuleLockClosedWeeks, actionLock, "3 unauthorized edits to closed weeks by 1 known editor (gross $30.00)"}}},
		{name: "lock: authorized only", changes: []Change{rc("a", "10", StatusAuthorized)}, rule: RuleLockClosedWeeks},

		{name: "automation: WEEK_MOVED by automation on three sheets",
			changes: []Change{
				rc("a", "0", StatusUnauthorized, recAutomation),
				rc("b", "0", StatusAuthorized, recAutomation, func(c *Change) { c.SheetID, c.SheetName = 7, "" }),
				rc("c", "0", StatusAuthorized, recAutomation, func(c *Change) { c.SheetID, c.SheetName = 2, "Crew B" }),
			},
			rule: RuleReviewAutomation,
			want: []Recommendation{{RuleReviewAutomation, actionAutomation, "3 WEEK_MOVED changes by Smartsheet automation on Crew A, Crew B, sheet 7"}}},
		{name: "automation: WEEK_MOVED by a person", changes: []Change{rc("a", "0", StatusUnauthorized, func(c *Change) { c.Kind = KindWeekMoved })}, rule: RuleReviewAutomation},
		{name: "automation: automation edits a price", changes: []Change{rc("a", "10", StatusUnauthorized, recAutomation, func(c *Change) { c.Kind = KindValueChanged })}, rule: RuleReviewAutomation},

		{name: "restore: one per sheet, columns sorted and listed once",
			findings: []Finding{recNoWeekSheet, recMissingQty, recMissingCU, recMissingQty},
			rule:     RuleRestoreColumn,
			want: []Recommendation{
				{RuleRestoreColumn, `Restore columns "CU", "Quantity" on sheet "Crew B"`,
					`2 missing-column findings on sheet "Crew B": changes to "CU", "Quantity" cannot be detected or judged`},
				{RuleRestoreColumn, `Restore column "Weekly Reference Logged Date" on sheet "Crew C"`,
					`1 missing-column finding on sheet "Crew C": changes to "Weekly Reference Logged Date" cannot be detected or judged`},
			}},
		{name: "restore: none", findings: []Finding{recBadMoney, recNoWeekRow}, rule: RuleRestoreColumn},

		{name: "money: price and quantity",
			findings: []Finding{recBadMoney, recBadQuantity, recBadMoney},
			rule:     RuleValidateMoney,
			want: []Recommendation{{RuleValidateMoney, `Add column validation for money and quantity (restrict "Quantity", "Units Total Price" to numbers)`,
				"3 unparseable money or quantity values: their changes cannot be valued"}}},
		{name: "money: no column named",
			findings: []Finding{{Kind: FindingBadMoney, SheetID: 1, RowID: 5}},
			rule:     RuleValidateMoney,
			want: []Recommendation{{RuleValidateMoney, "Add column validation for money and quantity (restrict the money columns to numbers)",
				"1 unparseable money or quantity value: their changes cannot be valued"}}},
		{name: "money: none", findings: []Finding{recMissingQty, recBadDate}, rule: RuleValidateMoney},

		{name: "dates: far future", findings: []Finding{recBadDate}, rule: RuleValidateDates,
			want: []Recommendation{{RuleValidateDates, `Make "Snapshot Date" DATE columns and check implausible dates`,
				"1 date finding (unparseable, far future or past, or a Snapshot Date in the future)"}}},
		{name: "dates: every kind, no column named",
			findings: []Finding{{Kind: FindingBadDate}, {Kind: FindingDateFarFuture}, {Kind: FindingDateFarPast}, {Kind: FindingSnapshotFuture}},
			rule:     RuleValidateDates,
			want: []Recommendation{{RuleValidateDates, "Make the date columns DATE columns and check implausible dates",
				"4 date findings (unparseable, far future or past, or a Snapshot Date in the future)"}}},
		{name: "dates: none", findings: []Finding{recBadMoney, recNoWeekRow}, rule: RuleValidateDates},

		{name: "fill week ending: row findings", findings: []Finding{recNoWeekRow, recNoWeekRow}, rule: RuleFillWeekEnding,
			want: []Recommendation{{RuleFillWeekEnding, `Fill "Weekly Reference Logged Date" or "Snapshot Date" on the rows without a week ending`,
				"2 rows without a week ending: their changes always need review"}}},
		{name: "fill week ending: a sheet without the column is a restore", findings: []Finding{recNoWeekSheet}, rule: RuleFillWeekEnding},

		{name: "webhooks: 2 of 4 unknown",
			changes: []Change{rc("a", "1", StatusAuthorized), rc("b", "1", StatusAuthorized), rc("c", "1", StatusAuthorized, recUnknown), rc("d", "1", StatusAuthorized, recUnknown)},
			rule:    RuleEnableWebhooks,
			want:    []Recommendation{{RuleEnableWebhooks, actionWebhooks, "50% of changes (2 of 4) have no known author (threshold 20%)"}}},
		{name: "webhooks: 1 of 5 unknown is 20%, not above",
			changes: []Change{rc("a", "1", StatusAuthorized), rc("b", "1", StatusAuthorized), rc("c", "1", StatusAuthorized), rc("d", "1", StatusAuthorized), rc("e", "1", StatusAuthorized, recUnknown)},
			rule:    RuleEnableWebhooks},
		{name: "webhooks: no change", rule: RuleEnableWebhooks},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := reportInput(tc.changes, tc.findings...)
			in.Integrity = tc.integrity
			got := recsOf(BuildReport(in).Recommendations, tc.rule)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("BuildReport(%s) recommendations %s (-want +got):\n%s", tc.name, tc.rule, diff)
			}
		})
	}
}

// recUnreadable is a sheet that could not be read this run.
func recUnreadable(id int64, name string) Finding {
	return Finding{Kind: FindingSheetUnreadable, SheetID: id, SheetName: name, Message: "could not be read"}
}

// TestRecommendOrder checks that the rules come out in the order of the
// table when all of them fire.
func TestRecommendOrder(t *testing.T) {
	changes := []Change{
		rc("a", "1500", StatusUnauthorized),
		rc("b", "0", StatusAuthorized, recAutomation),
		rc("c", "1", StatusAuthorized, recUnknown),
	}
	in := reportInput(changes, recMissingQty, recNoWeekSheet, recBadMoney, recBadDate, recNoWeekRow, recUnreadable(9, "Crew North"))
	in.Integrity = recTampered()
	var got []RuleID
	for _, r := range BuildReport(in).Recommendations {
		got = append(got, r.Rule)
	}
	want := []RuleID{
		RuleInvestigateTampering, RuleRestoreAccess, RuleReconcileInvoices, RuleLockClosedWeeks, RuleReviewAutomation,
		RuleRestoreColumn, RuleRestoreColumn, RuleValidateMoney, RuleValidateDates, RuleFillWeekEnding, RuleEnableWebhooks,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("BuildReport() recommendation rules (-want +got):\n%s", diff)
	}
}

// TestRecommendRulesTable checks that each rule has one row, with a
// condition and a builder.
func TestRecommendRulesTable(t *testing.T) {
	seen := make(map[RuleID]int)
	for i, rule := range recommendRules {
		if rule.when == nil || rule.build == nil {
			t.Errorf("recommendRules[%d] (%s) lacks a condition or a builder", i, rule.id)
		}
		seen[rule.id]++
	}
	for _, id := range []RuleID{
		RuleReconcileInvoices, RuleLockClosedWeeks, RuleReviewAutomation, RuleRestoreColumn, RuleValidateMoney,
		RuleValidateDates, RuleFillWeekEnding, RuleEnableWebhooks, RuleInvestigateTampering, RuleRestoreAccess,
	} {
		if seen[id] != 1 {
			t.Errorf("recommendRules has %d rows for %s, want 1", seen[id], id)
		}
	}
	if len(recommendRules) != len(seen) {
		t.Errorf("recommendRules has %d rows for %d rules, want one each", len(recommendRules), len(seen))
	}
}
