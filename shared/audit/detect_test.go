package audit

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testSheetID = 42

var standardColumns = []ColumnInfo{
	{ID: 101, Title: "Work Request #"}, {ID: 102, Title: "Weekly Reference Logged Date", Type: "DATE"},
	{ID: 103, Title: "Snapshot Date", Type: "DATE"}, {ID: 104, Title: "Units Completed?", Type: "CHECKBOX"},
	{ID: 105, Title: "Quantity"}, {ID: 106, Title: "Units Total Price"}, {ID: 107, Title: "Foreman"},
	{ID: 108, Title: "CU"}, {ID: 109, Title: "Work Type"}, {ID: 110, Title: "Pole #"},
}

// MustDetector builds a detector over the standard columns.
func MustDetector(tb testing.TB, cfg Config, runID string) *Detector {
	tb.Helper()
	if err := cfg.Validate(); err != nil {
		tb.Fatal(err)
	}
	m, findings := cfg.MapColumns(testSheetID, "Crew A", standardColumns)
	if len(findings) != 0 {
		tb.Fatalf("MapColumns findings = %v, want none", findings)
	}
	return NewDetector(cfg, m, runID)
}

// row returns the values of a billed row, overridden by kv pairs.
func row(kv ...string) map[string]string {
	v := map[string]string{
		ColWorkRequest: "WR-1001", ColWeekEnding: "", ColSnapshotDate: "2024-01-03", ColCompleted: "true",
		ColQuantity: "10", ColPrice: "1000", ColForeman: "Sam Ruiz", ColCU: "POLE-40", ColWorkType: "Install", ColPole: "P-17",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v[kv[i]] = kv[i+1]
	}
	return v
}

func baselineOf(vals map[string]string) *Baseline {
	b := NewBaseline(RowSnapshot{SheetID: testSheetID, RowID: 9, RowNumber: 3, Values: vals}, time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC))
	return &b
}

func snapshotOf(vals map[string]string) *RowSnapshot {
	return &RowSnapshot{SheetID: testSheetID, RowID: 9, RowNumber: 3, Values: vals}
}

func ptr[T any](v T) *T { return &v }

// TestCompareSpecCases are the cases the issue names.
func TestCompareSpecCases(t *testing.T) {
	chicago := mustLocation(t, "America/Chicago")
	week := row(ColWeekEnding, "2024-01-07")
	tests := []struct {
		name       string
		loc        *time.Location
		cur        map[string]string
		at         time.Time
		wantColumn string
		wantDelta  string
		wantImpact string
		wantEst    bool
		wantRisk   Risk
		wantStatus Status
	}{
		{
			name: "quantity 10→15 on Monday is unauthorized", cur: row(ColWeekEnding, "2024-01-07", ColQuantity, "15"),
			at: time.Date(2024, 1, 8, 10, 0, 0, 0, time.UTC), wantColumn: "Quantity", wantDelta: "5", wantImpact: "500",
			wantEst: true, wantRisk: RiskMedium, wantStatus: StatusUnauthorized,
		},
		{
			name: "price 1000→1200 on Monday is +200 MEDIUM", cur: row(ColWeekEnding, "2024-01-07", ColPrice, "1200"),
			at: time.Date(2024, 1, 8, 10, 0, 0, 0, time.UTC), wantColumn: "Units Total Price", wantDelta: "200", wantImpact: "200",
			wantRisk: RiskMedium, wantStatus: StatusUnauthorized,
		},
		{
			name: "same edit on Sunday evening is authorized", cur: row(ColWeekEnding, "2024-01-07", ColPrice, "1200"),
			at: time.Date(2024, 1, 7, 20, 0, 0, 0, time.UTC), wantColumn: "Units Total Price", wantDelta: "200", wantImpact: "200",
			wantRisk: RiskMedium, wantStatus: StatusAuthorized,
		},
		{
			name: "Monday 03:00Z is Sunday 21:00 in Chicago: authorized", loc: chicago, cur: row(ColWeekEnding, "2024-01-07", ColPrice, "1200"),
			at: time.Date(2024, 1, 8, 3, 0, 0, 0, time.UTC), wantColumn: "Units Total Price", wantDelta: "200", wantImpact: "200",
			wantRisk: RiskMedium, wantStatus: StatusAuthorized,
		},
		{
			name: "Monday 06:00Z is after midnight in Chicago: unauthorized", loc: chicago, cur: row(ColWeekEnding, "2024-01-07", ColPrice, "1200"),
			at: time.Date(2024, 1, 8, 6, 0, 0, 0, time.UTC), wantColumn: "Units Total Price", wantDelta: "200", wantImpact: "200",
			wantRisk: RiskMedium, wantStatus: StatusUnauthorized,
		},
		{
			name: "first instant of Monday is unauthorized", cur: row(ColWeekEnding, "2024-01-07", ColPrice, "1200"),
			at: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC), wantColumn: "Units Total Price", wantDelta: "200", wantImpact: "200",
			wantRisk: RiskMedium, wantStatus: StatusUnauthorized,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if tt.loc != nil {
				cfg.Location = tt.loc
			}
			d := MustDetector(t, cfg, "run-1")
			w := ScanWindow{Previous: time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 9, 0, 0, 0, 0, time.UTC)}
			changes, findings := d.Compare(baselineOf(week), snapshotOf(tt.cur), false, w)
			if len(findings) != 0 || len(changes) != 1 {
				t.Fatalf("Compare() = %d changes, findings %v, want 1 change and no finding", len(changes), findings)
			}
			c := changes[0]
			c.Attribution.Time = &tt.at
			d.Classify(&c, w)
			got := []string{string(c.Kind), c.Column, c.Delta.String(), c.Impact.String(), string(c.Risk), string(c.Status)}
			want := []string{string(KindValueChanged), tt.wantColumn, tt.wantDelta, tt.wantImpact, string(tt.wantRisk), string(tt.wantStatus)}
			if diff := cmp.Diff(want, got); diff != "" || c.Estimated != tt.wantEst {
				t.Errorf("Compare+Classify(%s) = %v estimated %v, want %v estimated %v\n%s", tt.name, got, c.Estimated, want, tt.wantEst, diff)
			}
			if c.Unauthorized() != (tt.wantStatus == StatusUnauthorized) {
				t.Errorf("Unauthorized() = %v, want %v", c.Unauthorized(), tt.wantStatus == StatusUnauthorized)
			}
		})
	}
}

// changeView is the part of a Change the detection tests check.
type changeView struct {
	Kind                Kind
	Column              string
	Old, New            string
	Delta, Impact       string
	Estimated, Unvalued bool
	ValuedElsewhere     bool
	WeekEnding, MovedTo string
	Risk                Risk
	Status              Status
}

func view(c Change) changeView {
	v := changeView{
		Kind: c.Kind, Column: c.Column, Old: c.OldValue, New: c.NewValue, Impact: c.Impact.String(),
		Estimated: c.Estimated, Unvalued: c.Unvalued, ValuedElsewhere: c.ValuedElsewhere, WeekEnding: FormatDate(c.WeekEnding), MovedTo: FormatDate(c.MovedTo),
		Risk: c.Risk, Status: c.Status,
	}
	if c.Delta != nil {
		v.Delta = c.Delta.String()
	}
	return v
}

func TestCompare(t *testing.T) {
	// Baseline: week ending blank, Snapshot Date 2024-01-03 → week ending 2024-01-07.
	prevScan := time.Date(2024, 1, 9, 0, 0, 0, 0, time.UTC)
	scan := time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC) // wholly after the 01-07 cutoff
	tests := []struct {
		name         string
		track        []string
		prev, cur    map[string]string // nil: absent
		first        bool
		created      time.Time // the new row's creation time in Smartsheet (zero: not read)
		want         []changeView
		wantFindings []Finding
	}{
		{
			name: "unchanged row", prev: row(), cur: row(),
		},
		{
			name: "same-value saves are not changes",
			prev: row(ColPrice, "1200", ColQuantity, "3", ColCompleted, "", ColCU, "POLE-40"),
			cur:  row(ColPrice, "$1,200.00", ColQuantity, "3 EA", ColCompleted, "false", ColCU, " POLE-40 "),
		},
		{
			name: "price change",
			prev: row(), cur: row(ColPrice, "$1,500.00"),
			want: []changeView{{Kind: KindValueChanged, Column: "Units Total Price", Old: "1000", New: "$1,500.00", Delta: "500", Impact: "500", WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "price typo is a parse finding and an unvalued change, not zero",
			prev: row(), cur: row(ColPrice, "$1,2O0"),
			want:         []changeView{{Kind: KindValueChanged, Column: "Units Total Price", Old: "1000", New: "$1,2O0", Impact: "0", Unvalued: true, WeekEnding: "2024-01-07", Risk: RiskUnknown, Status: StatusUnauthorized}},
			wantFindings: []Finding{{Kind: FindingBadMoney, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Units Total Price", Raw: "$1,2O0"}},
		},
		{
			name: "price cleared counts as nothing billed",
			prev: row(), cur: row(ColPrice, ""),
			want: []changeView{{Kind: KindValueChanged, Column: "Units Total Price", Old: "1000", New: "", Impact: "-1000", WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "quantity change valued at the baseline unit price",
			prev: row(ColQuantity, "4", ColPrice, "1,000"), cur: row(ColQuantity, "7 EA", ColPrice, "1,000"),
			want: []changeView{{Kind: KindValueChanged, Column: "Quantity", Old: "4", New: "7 EA", Delta: "3", Impact: "750", Estimated: true, WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "quantity and price changed together: money counted once, on the price",
			prev: row(), cur: row(ColQuantity, "15", ColPrice, "1500"),
			want: []changeView{
				{Kind: KindValueChanged, Column: "Units Total Price", Old: "1000", New: "1500", Delta: "500", Impact: "500", WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized},
				{Kind: KindValueChanged, Column: "Quantity", Old: "10", New: "15", Delta: "5", Impact: "0", ValuedElsewhere: true, WeekEnding: "2024-01-07", Risk: RiskLow, Status: StatusUnauthorized},
			},
		},
		{
			name: "quantity change without a baseline quantity is unvalued",
			prev: row(ColQuantity, ""), cur: row(ColQuantity, "2"),
			want: []changeView{{Kind: KindValueChanged, Column: "Quantity", Old: "", New: "2", Impact: "0", Unvalued: true, WeekEnding: "2024-01-07", Risk: RiskUnknown, Status: StatusUnauthorized}},
		},
		{
			name: "checkbox unticked",
			prev: row(), cur: row(ColCompleted, "false"),
			want: []changeView{{Kind: KindValueChanged, Column: "Units Completed?", Old: "true", New: "false", Impact: "0", WeekEnding: "2024-01-07", Risk: RiskLow, Status: StatusUnauthorized}},
		},
		{
			name: "untracked context column is ignored",
			prev: row(), cur: row(ColForeman, "Someone Else"),
		},
		{
			name:  "extra tracked column",
			track: []string{"Foreman"},
			prev:  row(), cur: row(ColForeman, "Someone Else"),
			want: []changeView{{Kind: KindValueChanged, Column: "Foreman", Old: "Sam Ruiz", New: "Someone Else", Impact: "0", WeekEnding: "2024-01-07", Risk: RiskLow, Status: StatusUnauthorized}},
		},
		{
			name:  "automation re-stamps Snapshot Date into the current week: one WEEK_MOVED",
			track: []string{"Snapshot Date", "Weekly Reference Logged Date"},
			prev:  row(), cur: row(ColSnapshotDate, "2024-01-09"),
			want: []changeView{{Kind: KindWeekMoved, Column: "Snapshot Date", Old: "2024-01-03 (week ending 2024-01-07)", New: "2024-01-09 (week ending 2024-01-14)", Impact: "1000", WeekEnding: "2024-01-07", MovedTo: "2024-01-14", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "week moved and quantity changed: WEEK_MOVED plus VALUE_CHANGED",
			prev: row(), cur: row(ColSnapshotDate, "01/09/24", ColQuantity, "12"),
			want: []changeView{
				{Kind: KindWeekMoved, Column: "Snapshot Date", Old: "2024-01-03 (week ending 2024-01-07)", New: "01/09/24 (week ending 2024-01-14)", Impact: "1000", WeekEnding: "2024-01-07", MovedTo: "2024-01-14", Risk: RiskMedium, Status: StatusUnauthorized},
				{Kind: KindValueChanged, Column: "Quantity", Old: "10", New: "12", Delta: "2", Impact: "200", Estimated: true, WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized},
			},
		},
		{
			name: "week-ending column edited to another week",
			prev: row(ColWeekEnding, "2024-01-07"), cur: row(ColWeekEnding, "2024-01-14"),
			want: []changeView{{Kind: KindWeekMoved, Column: "Weekly Reference Logged Date", Old: "2024-01-07 (week ending 2024-01-07)", New: "2024-01-14 (week ending 2024-01-14)", Impact: "1000", WeekEnding: "2024-01-07", MovedTo: "2024-01-14", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "Snapshot Date re-stamped within the same week is not a change",
			prev: row(), cur: row(ColSnapshotDate, "2024-01-06"),
		},
		{
			name:  "tracked Snapshot Date re-stamped within the week is a value change",
			track: []string{"Snapshot Date"},
			prev:  row(), cur: row(ColSnapshotDate, "2024-01-06"),
			want: []changeView{{Kind: KindValueChanged, Column: "Snapshot Date", Old: "2024-01-03", New: "2024-01-06", Impact: "0", WeekEnding: "2024-01-07", Risk: RiskLow, Status: StatusUnauthorized}},
		},
		{
			name: "row deleted",
			prev: row(ColPrice, "$2,500.00"), cur: nil,
			want: []changeView{{Kind: KindRowDeleted, Old: "$2,500.00", Impact: "-2500", WeekEnding: "2024-01-07", Risk: RiskHigh, Status: StatusUnauthorized}},
		},
		{
			name: "blank row deleted is not a billing change",
			prev: row(ColPrice, "", ColQuantity, ""), cur: nil,
		},
		{
			name: "row added late into a closed week",
			prev: nil, cur: row(ColPrice, "300"),
			want: []changeView{{Kind: KindRowAddedLate, New: "300", Impact: "300", WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			// Logged in its week and first seen after the week closed (the
			// last Sunday scan ran before the crew's evening entries): on
			// time, not late, whenever it is detected.
			name: "row created before its week closed is not late", prev: nil, cur: row(ColPrice, "300"),
			created: time.Date(2024, 1, 7, 22, 0, 0, 0, time.UTC),
		},
		{
			name: "row created after its week closed is late", prev: nil, cur: row(ColPrice, "300"),
			created: time.Date(2024, 1, 8, 0, 0, 0, 0, time.UTC),
			want:    []changeView{{Kind: KindRowAddedLate, New: "300", Impact: "300", WeekEnding: "2024-01-07", Risk: RiskMedium, Status: StatusUnauthorized}},
		},
		{
			name: "row added on the sheet's first scan seeds silently",
			prev: nil, cur: row(), first: true,
		},
		{
			name: "row added into the open week",
			prev: nil, cur: row(ColSnapshotDate, "2024-01-09"),
		},
		{
			name: "non-billable row added late",
			prev: nil, cur: row(ColPrice, "", ColQuantity, ""),
		},
		{
			name: "new row without any week ending is a finding",
			prev: nil, cur: row(ColSnapshotDate, ""),
			wantFindings: []Finding{{Kind: FindingNoWeekEnding, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Weekly Reference Logged Date"}},
		},
		{
			name: "2035 typo, future snapshot and bad quantity on first sight",
			prev: nil, first: true, cur: row(ColWeekEnding, "2035-01-07", ColSnapshotDate, "2024-01-12", ColQuantity, "ten"),
			wantFindings: []Finding{
				{Kind: FindingDateFarFuture, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Weekly Reference Logged Date", Raw: "2035-01-07"},
				{Kind: FindingSnapshotFuture, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Snapshot Date", Raw: "2024-01-12"},
				{Kind: FindingBadQuantity, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Quantity", Raw: "ten"},
			},
		},
		{
			name: "ancient and unparseable dates",
			prev: nil, first: true, cur: row(ColWeekEnding, "1/7/2004", ColSnapshotDate, "soon"),
			wantFindings: []Finding{
				{Kind: FindingDateFarPast, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Weekly Reference Logged Date", Raw: "1/7/2004"},
				{Kind: FindingBadDate, SheetID: testSheetID, SheetName: "Crew A", RowID: 9, RowNumber: 3, Column: "Snapshot Date", Raw: "soon"},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TrackColumns = tt.track
			d := MustDetector(t, cfg, "run-1")
			var prev *Baseline
			var cur *RowSnapshot
			if tt.prev != nil {
				prev = baselineOf(tt.prev)
			}
			if tt.cur != nil {
				cur = snapshotOf(tt.cur)
				cur.CreatedAt = tt.created
			}
			w := ScanWindow{Previous: prevScan, Current: scan}
			changes, findings := d.Compare(prev, cur, tt.first, w)
			var got []changeView
			for _, c := range changes {
				if c.ChangeID == "" || c.RunID != "run-1" || c.SheetName != "Crew A" || c.RowID != 9 || !c.DetectedAt.Equal(scan) {
					t.Errorf("change %+v lacks identity", c)
				}
				if c.Attribution.Source != SourceUnknown || !c.Attribution.WindowStart.Equal(prevScan) || !c.Attribution.WindowEnd.Equal(scan) {
					t.Errorf("change attribution = %+v, want unknown in (%v, %v]", c.Attribution, prevScan, scan)
				}
				d.Classify(&c, w)
				got = append(got, view(c))
			}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("Compare(%v → %v) changes (-want +got):\n%s", tt.prev, tt.cur, diff)
			}
			if diff := cmp.Diff(tt.wantFindings, findings, cmpopts.EquateEmpty(), cmpopts.IgnoreFields(Finding{}, "Message")); diff != "" {
				t.Errorf("Compare(%v → %v) findings (-want +got):\n%s", tt.prev, tt.cur, diff)
			}
			for _, f := range findings {
				if f.Message == "" {
					t.Errorf("finding %+v has no message", f)
				}
			}
		})
	}
}

func TestChangeIDDeterministic(t *testing.T) {
	cfg := DefaultConfig()
	prev := baselineOf(row())
	detect := func(runID string, w ScanWindow, cur map[string]string) []Change {
		t.Helper()
		changes, _ := MustDetector(t, cfg, runID).Compare(prev, snapshotOf(cur), false, w)
		return changes
	}
	w1 := ScanWindow{Previous: time.Date(2024, 1, 9, 0, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)}
	w2 := ScanWindow{Previous: time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 11, 0, 0, 0, 0, time.UTC)}
	a := detect("run-1", w1, row(ColPrice, "1200"))
	b := detect("run-2", w2, row(ColPrice, "$1,200.00"))
	c := detect("run-1", w1, row(ColPrice, "1300"))
	if len(a) != 1 || len(b) != 1 || len(c) != 1 {
		t.Fatalf("Compare() = %d, %d, %d changes, want 1 each", len(a), len(b), len(c))
	}
	if a[0].ChangeID != b[0].ChangeID {
		t.Errorf("ChangeID of the same change in two runs = %s and %s, want equal", a[0].ChangeID, b[0].ChangeID)
	}
	if a[0].ChangeID == c[0].ChangeID {
		t.Errorf("ChangeID of different new values = %s for both, want different", a[0].ChangeID)
	}
	tests := []struct {
		name       string
		sheet, row int64
		gen        uint64
		col        string
		kind       Kind
		old, new   string
	}{
		{name: "other sheet", sheet: 2, row: 9, col: ColPrice, kind: KindValueChanged, old: "1000", new: "1200"},
		{name: "other row", sheet: 42, row: 8, col: ColPrice, kind: KindValueChanged, old: "1000", new: "1200"},
		{name: "other column", sheet: 42, row: 9, col: ColQuantity, kind: KindValueChanged, old: "1000", new: "1200"},
		{name: "other kind", sheet: 42, row: 9, col: ColPrice, kind: KindWeekMoved, old: "1000", new: "1200"},
		{name: "old and new swapped", sheet: 42, row: 9, col: ColPrice, kind: KindValueChanged, old: "1200", new: "1000"},
		{name: "boundary shift", sheet: 42, row: 9, col: ColPrice, kind: KindValueChanged, old: "100", new: "01200"},
		{name: "next generation", sheet: 42, row: 9, gen: 1, col: ColPrice, kind: KindValueChanged, old: "1000", new: "1200"},
	}
	base := ChangeID(42, 9, 0, ColPrice, KindValueChanged, "1000", "1200")
	if base != a[0].ChangeID {
		t.Errorf("ChangeID(42, 9, 0, price, VALUE_CHANGED, 1000, 1200) = %s, want the detector's %s", base, a[0].ChangeID)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChangeID(tt.sheet, tt.row, tt.gen, tt.col, tt.kind, tt.old, tt.new); got == base {
				t.Errorf("ChangeID(%d, %d, %d, %q, %s, %q, %q) = %s, want different from %s", tt.sheet, tt.row, tt.gen, tt.col, tt.kind, tt.old, tt.new, got, base)
			}
		})
	}
}

// TestChangeIDPerOccurrence: a change seen again keeps its id, a change that
// happens again gets a new one. Each step compares the row with the baseline
// the previous step left, as the pipeline does.
func TestChangeIDPerOccurrence(t *testing.T) {
	det := MustDetector(t, DefaultConfig(), "run")
	w := ScanWindow{Previous: time.Date(2024, 1, 9, 0, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)}
	// compare compares cur with prev and returns the one change's id and the baseline that follows.
	compare := func(t *testing.T, prev Baseline, price string) (string, Baseline) {
		t.Helper()
		cur := snapshotOf(row(ColPrice, price))
		cs, _ := det.Compare(&prev, cur, false, w)
		if len(cs) != 1 {
			t.Fatalf("Compare(%s → %s) = %d changes, want 1", prev.Values[ColPrice], price, len(cs))
		}
		return cs[0].ChangeID, det.NextBaseline(&prev, *cur, cs, w.Current)
	}
	start := *baselineOf(row(ColPrice, "650"))

	t.Run("seen again", func(t *testing.T) {
		// Duplicate delivery, the overlap re-read, webhook refresh and scan:
		// each compares the same edit with the same stored baseline.
		tests := []struct {
			name  string
			price string
		}{
			{name: "the same text", price: "5000"},
			{name: "the same value, other text", price: "5000.00"},
		}
		first, _ := compare(t, start, "5000")
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got, _ := compare(t, start, tt.price); got != first {
					t.Errorf("ChangeID of 650 → %s against the same baseline = %s, want %s", tt.price, got, first)
				}
			})
		}
	})

	t.Run("happens again", func(t *testing.T) {
		up1, b1 := compare(t, start, "5000")
		down, b2 := compare(t, b1, "650")
		up2, b3 := compare(t, b2, "5000")
		ids := map[string]string{up1: "650→5000", down: "5000→650", up2: "650→5000 again"}
		if len(ids) != 3 {
			t.Errorf("ChangeIDs of 650→5000, 5000→650, 650→5000 = %s, %s, %s; want three different ids", up1, down, up2)
		}
		if got, want := []uint64{b1.Generation, b2.Generation, b3.Generation}, []uint64{1, 2, 3}; !cmp.Equal(got, want) {
			t.Errorf("baseline generations = %v, want %v", got, want)
		}
	})

	t.Run("refresh without change keeps the generation", func(t *testing.T) {
		_, b1 := compare(t, start, "5000")
		moved := RowSnapshot{SheetID: testSheetID, RowID: 9, RowNumber: 7, Values: row(ColPrice, "5000")}
		if got := det.NextBaseline(&b1, moved, nil, w.Current).Generation; got != b1.Generation {
			t.Errorf("NextBaseline(unchanged).Generation = %d, want %d", got, b1.Generation)
		}
		if got := det.NextBaseline(nil, moved, nil, w.Current).Generation; got != 0 {
			t.Errorf("NextBaseline(new row).Generation = %d, want 0", got)
		}
	})
}

// TestReversal: a change that brings a cell back to its value before an
// earlier change names that change and every later one still open
// (Reverses, oldest first); one that brings it back to a later value only
// the later ones. Each step compares the row with the baseline the previous
// step left, as the pipeline does.
func TestReversal(t *testing.T) {
	det := MustDetector(t, DefaultConfig(), "run")
	w := ScanWindow{Previous: time.Date(2024, 1, 9, 0, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)}
	tests := []struct {
		name   string
		prices []string // the price at each scan, from 650
		want   [][]int  // per step, the steps whose changes it reverses (nil: none)
	}{
		{name: "put back", prices: []string{"5000", "650"}, want: [][]int{nil, {0}}},
		{name: "put back as other text", prices: []string{"5000", "650.00"}, want: [][]int{nil, {0}}},
		{name: "changed again, then put back: both undone", prices: []string{"5000", "700", "650"}, want: [][]int{nil, nil, {0, 1}}},
		{name: "back to the middle value, then to the first", prices: []string{"5000", "700", "5000", "650"}, want: [][]int{nil, nil, {1}, {0}}},
		{name: "not back", prices: []string{"5000", "700"}, want: [][]int{nil, nil}},
		{name: "re-applied after the reversal: a new open change", prices: []string{"5000", "650", "5000", "650"}, want: [][]int{nil, {0}, nil, {2}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev := *baselineOf(row(ColPrice, "650"))
			var ids []string
			for i, price := range tt.prices {
				cur := snapshotOf(row(ColPrice, price))
				cs, _ := det.Compare(&prev, cur, false, w)
				if len(cs) != 1 {
					t.Fatalf("step %d: Compare(→ %s) = %d changes, want 1", i, price, len(cs))
				}
				var want []string
				for _, step := range tt.want[i] {
					want = append(want, ids[step])
				}
				if got := cs[0].Reverses; got != JoinReversed(want) {
					t.Errorf("step %d (→ %s): Reverses = %q, want %q", i, price, got, JoinReversed(want))
				}
				ids = append(ids, cs[0].ChangeID)
				prev = det.NextBaseline(&prev, *cur, cs, w.Current)
			}
			if price := tt.prices[len(tt.prices)-1]; price == "650" || price == "650.00" {
				if len(prev.Opened) != 0 {
					t.Errorf("baseline back at the first value: Opened = %v, want none", prev.Opened)
				}
			}
		})
	}
	// A baseline stored before Opened (its first open change in Open) is
	// read as a one-change Opened.
	old := *baselineOf(row(ColPrice, "5000"))
	old.Open = map[string]OpenChange{ColPrice: {ChangeID: "c-old", Before: "650"}}
	cs, _ := det.Compare(&old, snapshotOf(row(ColPrice, "650")), false, w)
	if len(cs) != 1 || cs[0].Reverses != "c-old" {
		t.Errorf("put back against an old baseline: %+v, want Reverses c-old", cs)
	}
	if next := det.NextBaseline(&old, *snapshotOf(row(ColPrice, "650")), cs, w.Current); len(next.Opened) != 0 || len(next.Open) != 0 {
		t.Errorf("baseline after it: Opened %v, Open %v; want none", next.Opened, next.Open)
	}
}

func TestCompareNarrowsWindowWithModifiedAt(t *testing.T) {
	d := MustDetector(t, DefaultConfig(), "run-1")
	w := ScanWindow{Previous: time.Date(2024, 1, 7, 12, 0, 0, 0, time.UTC), Current: time.Date(2024, 1, 8, 12, 0, 0, 0, time.UTC)}
	cur := snapshotOf(row(ColWeekEnding, "2024-01-07", ColPrice, "1200"))
	cur.ModifiedAt = time.Date(2024, 1, 7, 18, 0, 0, 0, time.UTC)
	changes, _ := d.Compare(baselineOf(row(ColWeekEnding, "2024-01-07")), cur, false, w)
	if len(changes) != 1 {
		t.Fatalf("Compare() = %d changes, want 1", len(changes))
	}
	c := changes[0]
	if !c.Attribution.WindowEnd.Equal(cur.ModifiedAt) {
		t.Errorf("Compare() window end = %v, want the row's ModifiedAt %v", c.Attribution.WindowEnd, cur.ModifiedAt)
	}
	d.Classify(&c, w)
	if c.Status != StatusAuthorized {
		t.Errorf("Classify() = %s, want %s: the row was last modified before the cutoff", c.Status, StatusAuthorized)
	}
}

func TestCompareUnchangedRowDoesNotAllocate(t *testing.T) {
	d := MustDetector(t, DefaultConfig(), "run-1")
	prev, cur := baselineOf(row()), snapshotOf(row())
	w := ScanWindow{Current: time.Date(2024, 1, 10, 0, 0, 0, 0, time.UTC)}
	if n := testing.AllocsPerRun(100, func() { d.Compare(prev, cur, false, w) }); n != 0 {
		t.Errorf("Compare(unchanged row) allocates %v times, want 0", n)
	}
}

func TestWriterInfo(t *testing.T) {
	mod := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	// Ana's row, last saved by her at mod; its other cells as the baseline
	// saw them (the scan read every column).
	snap := RowSnapshot{SheetID: testSheetID, RowID: 9, CreatedAt: mod.Add(-24 * time.Hour), ModifiedAt: mod, ModifiedBy: "ana@example.com", ModifiedByName: "Ana",
		Untracked: "p1", UntrackedSame: true}
	// The same row after someone also saved an untracked cell (Luis's Pole
	// #), and the row read without its other cells.
	otherSaved, notRead := snap, snap
	otherSaved.Untracked, otherSaved.UntrackedSame = "p2", false
	notRead.Untracked, notRead.UntrackedSame = "", false
	// A late row Ana created at mod and nobody saved since.
	fresh := snap
	fresh.CreatedAt, fresh.CreatedBy = mod, "ana@example.com"
	// A late row Luis created at mod, whose price automation set in the same
	// second (found by the issue 14 soak through the chain): ModifiedAt =
	// CreatedAt, yet the row was saved after its creation.
	savedInItsSecond := fresh
	savedInItsSecond.CreatedBy = "luis@example.com"
	savedInItsSecond.UntrackedSame = false // a new row has no baseline to compare its other cells with
	// A late row read without its creator (older reads): the times decide.
	noCreator := fresh
	noCreator.CreatedBy = ""
	window := Attribution{WindowStart: mod.Add(-time.Hour), WindowEnd: mod.Add(time.Hour)}
	byAna := Attribution{User: "ana@example.com", Name: "Ana", Time: &mod, Source: SourceWriterInfo, WindowStart: window.WindowStart, WindowEnd: window.WindowEnd}
	cell := Change{Kind: KindValueChanged, SheetID: testSheetID, RowID: 9, ColumnKey: ColPrice, Attribution: window}
	late := Change{Kind: KindRowAddedLate, SheetID: testSheetID, RowID: 9, Attribution: window}
	in := func(kind Kind, ws, we time.Time) Change {
		return Change{Kind: kind, SheetID: testSheetID, RowID: 9, Attribution: Attribution{WindowStart: ws, WindowEnd: we}}
	}
	tests := []struct {
		name       string
		snap       RowSnapshot
		count      int
		change     Change
		cellEvents bool
		want       Attribution
		wantOK     bool
	}{
		// A sheet whose edits come as webhook events (issue 12: Priya changes
		// the price, Luis then saves Pole #, untracked: the row's writer info
		// is Luis's save). The cell's event decides, never the row.
		{name: "events: cell change", snap: snap, count: 1, change: cell, cellEvents: true},
		{name: "events: week moved", snap: snap, count: 1, change: in(KindWeekMoved, mod.Add(-time.Hour), mod.Add(time.Hour)), cellEvents: true},
		{name: "events: late row never saved after its creation", snap: fresh, count: 1, change: late, cellEvents: true, wantOK: true, want: byAna},
		{name: "events: late row saved after its creation", snap: snap, count: 1, change: late, cellEvents: true},
		{name: "events: late row without a creation time", snap: RowSnapshot{SheetID: testSheetID, RowID: 9, ModifiedAt: mod, ModifiedBy: "ana@example.com", ModifiedByName: "Ana"}, count: 1, change: late, cellEvents: true},
		// A sheet without events: writer info only when the change is the
		// row's only change since the last scan, proven by its other cells.
		{name: "no events: only change in the row", snap: snap, count: 1, change: cell, wantOK: true, want: byAna},
		{name: "no events: an untracked cell saved too", snap: otherSaved, count: 1, change: cell},
		{name: "no events: other cells not read", snap: notRead, count: 1, change: cell},
		{name: "no events: late row never saved after its creation", snap: fresh, count: 1, change: late, wantOK: true, want: byAna},
		{name: "no events: late row saved by another in its creation's second", snap: savedInItsSecond, count: 1, change: late},
		{name: "events: late row saved by another in its creation's second", snap: savedInItsSecond, count: 1, change: late, cellEvents: true},
		{name: "no events: late row, creator not read", snap: noCreator, count: 1, change: late, wantOK: true, want: byAna},
		// A new row has no baseline to compare its other cells with.
		{name: "no events: late row saved after its creation", snap: notRead, count: 1, change: late},
		{name: "two changes in the row", snap: snap, count: 2, change: cell},
		{name: "modified outside the window", snap: snap, count: 1, change: in(KindValueChanged, mod, mod.Add(time.Hour))},
		{name: "modified a second before the window", snap: snap, count: 1, change: in(KindValueChanged, mod.Add(time.Second), mod.Add(time.Hour))},
		{name: "modified after the scan, in its second", snap: snap, count: 1, wantOK: true,
			change: in(KindValueChanged, mod.Add(300*time.Millisecond), mod.Add(time.Hour)),
			want:   Attribution{User: "ana@example.com", Name: "Ana", Time: &mod, Source: SourceWriterInfo, WindowStart: mod.Add(300 * time.Millisecond), WindowEnd: mod.Add(time.Hour)}},
		{name: "modified after the window", snap: snap, count: 1, change: in(KindValueChanged, mod.Add(-time.Hour), mod.Add(-time.Millisecond))},
		{name: "no modifier", snap: RowSnapshot{SheetID: testSheetID, RowID: 9, ModifiedAt: mod}, count: 1, change: cell},
		{name: "deleted row", snap: snap, count: 1, change: Change{Kind: KindRowDeleted, SheetID: testSheetID, RowID: 9}},
		{name: "other row", snap: snap, count: 1, change: Change{Kind: KindValueChanged, SheetID: testSheetID, RowID: 10}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := WriterInfo(tt.snap, tt.count, &tt.change, tt.cellEvents)
			if ok != tt.wantOK {
				t.Fatalf("WriterInfo(%s) ok = %v, want %v", tt.name, ok, tt.wantOK)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("WriterInfo(%s) (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

func TestAttributeChain(t *testing.T) {
	at := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	window := Attribution{Source: SourceUnknown, WindowStart: at.Add(-time.Hour), WindowEnd: at.Add(time.Hour)}
	no := AttributorFunc(func(context.Context, *Change) (Attribution, bool, error) { return Attribution{}, false, nil })
	failing := AttributorFunc(func(context.Context, *Change) (Attribution, bool, error) {
		return Attribution{}, false, errors.New("cell history: 503")
	})
	yes := func(src AttributionSource) Attributor {
		return AttributorFunc(func(context.Context, *Change) (Attribution, bool, error) {
			return Attribution{User: "ana@example.com", Time: &at, Source: src}, true, nil
		})
	}
	tests := []struct {
		name    string
		chain   []Attributor
		want    Attribution
		wantErr bool
	}{
		{name: "empty chain leaves unknown with window", want: window},
		{name: "none answers", chain: []Attributor{no, no}, want: window},
		{name: "first answer wins, window kept", chain: []Attributor{no, yes(SourceWebhook), yes(SourceCellHistory)},
			want: Attribution{User: "ana@example.com", Time: &at, Source: SourceWebhook, WindowStart: window.WindowStart, WindowEnd: window.WindowEnd}},
		{name: "an error does not stop the chain", chain: []Attributor{failing, yes(SourceCellHistory)}, wantErr: true,
			want: Attribution{User: "ana@example.com", Time: &at, Source: SourceCellHistory, WindowStart: window.WindowStart, WindowEnd: window.WindowEnd}},
		{name: "only errors", chain: []Attributor{failing}, wantErr: true, want: window},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Change{ChangeID: "x", Attribution: window}
			err := AttributeChain(context.Background(), &c, tt.chain...)
			if (err != nil) != tt.wantErr {
				t.Errorf("AttributeChain(%s) error = %v, want error %v", tt.name, err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, c.Attribution); diff != "" {
				t.Errorf("AttributeChain(%s) attribution (-want +got):\n%s", tt.name, diff)
			}
		})
	}
}

// sheetCoverage is an EventCoverage of a set of sheets.
type sheetCoverage map[int64]bool

func (c sheetCoverage) CoversSheet(_ context.Context, sheetID int64) bool { return c[sheetID] }

func TestWriterInfoAttributor(t *testing.T) {
	mod := time.Date(2024, 1, 8, 9, 0, 0, 0, time.UTC)
	const withEvents = testSheetID + 1
	snaps := []RowSnapshot{
		{SheetID: testSheetID, RowID: 1, ModifiedAt: mod, ModifiedBy: "ana@example.com", UntrackedSame: true},
		{SheetID: testSheetID, RowID: 2, ModifiedAt: mod, ModifiedBy: "bo@example.com", UntrackedSame: true},
		{SheetID: withEvents, RowID: 3, ModifiedAt: mod, ModifiedBy: "luis@example.com", UntrackedSame: true},
		{SheetID: withEvents, RowID: 4, CreatedAt: mod, ModifiedAt: mod, ModifiedBy: "cy@example.com"},
	}
	changes := []Change{
		{Kind: KindValueChanged, SheetID: testSheetID, RowID: 1},
		{Kind: KindValueChanged, SheetID: testSheetID, RowID: 2, ColumnKey: ColPrice},
		{Kind: KindValueChanged, SheetID: testSheetID, RowID: 2, ColumnKey: ColQuantity},
		{Kind: KindValueChanged, SheetID: withEvents, RowID: 3, ColumnKey: ColPrice},
		{Kind: KindRowAddedLate, SheetID: withEvents, RowID: 4},
	}
	tests := []struct {
		name   string
		events EventCoverage
		want   []AttributionSource
	}{
		{name: "no coverage", want: []AttributionSource{SourceWriterInfo, SourceUnknown, SourceUnknown, SourceWriterInfo, SourceWriterInfo}},
		{name: "one sheet with events", events: sheetCoverage{withEvents: true},
			want: []AttributionSource{SourceWriterInfo, SourceUnknown, SourceUnknown, SourceUnknown, SourceWriterInfo}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wi := NewWriterInfoAttributor(snaps, changes, tt.events)
			var got []AttributionSource
			for _, c := range changes {
				if err := AttributeChain(context.Background(), &c, wi); err != nil {
					t.Fatal(err)
				}
				got = append(got, c.Attribution.Source)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("sources (-want +got):\n%s", diff)
			}
		})
	}
}
