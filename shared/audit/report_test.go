package audit

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

var (
	repLoc   = time.FixedZone("CST", -6*3600)
	repStart = time.Date(2026, 11, 16, 0, 0, 0, 0, repLoc) // Monday
	repEnd   = repStart.AddDate(0, 0, 7)
	repWeek  = time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC) // the Sunday before the period
)

func d(s string) decimal.Decimal { return decimal.RequireFromString(s) }

// rc is a change of the test period: Tuesday 10:00 CST plus offset.
func rc(id string, impact string, status Status, opts ...func(*Change)) Change {
	cfg := DefaultConfig()
	t := repStart.Add(34*time.Hour + 0) // Tue 10:00 CST
	c := Change{
		ChangeID: id, Kind: KindValueChanged, SheetID: 1, SheetName: "Crew A", RowID: 10, RowNumber: 3,
		Permalink: "https://app.smartsheet.com/r/" + id, WeekEnding: repWeek, Column: ColPrice,
		Impact: d(impact), Risk: cfg.RiskFor(d(impact)), Status: status,
		Attribution: Attribution{User: "kim@example.com", Name: "Kim", Time: &t, Source: SourceWebhook},
		DetectedAt:  t.Add(time.Hour),
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func reportInput(changes []Change, findings ...Finding) ReportInput {
	cfg := DefaultConfig()
	cfg.Location = repLoc
	return ReportInput{
		Run:     RunFacts{RunID: "r1", StartedAt: repEnd, FinishedAt: repEnd.Add(2 * time.Minute), APICalls: map[string]int{"a": 3, "b": 1}, RequestBudgetPerMinute: 10, HistoryBudgetPerMinute: 5, CellHistoryCalls: 2},
		Changes: changes, Findings: findings, Config: cfg,
		PeriodStart: repStart, PeriodEnd: repEnd, GeneratedAt: repEnd,
	}
}

func TestBuildReportAggregates(t *testing.T) {
	changes := []Change{
		rc("a", "1500", StatusUnauthorized),
		rc("b", "-250.5", StatusUnauthorized, func(c *Change) {
			c.Estimated, c.Attribution = true, Attribution{User: "raj@example.com", Source: SourceCellHistory}
		}),
		rc("c", "40", StatusAuthorized, func(c *Change) { c.Kind = KindRowDeleted }),
		rc("d", "0", StatusNeedsReview, func(c *Change) {
			c.Unvalued, c.Risk, c.Attribution = true, RiskUnknown, Attribution{Source: SourceUnknown}
		}),
	}
	changes = append(changes, changes[0]) // a duplicate is counted once
	r := BuildReport(reportInput(changes))

	if r.Status != StatusLineChanges || r.Level != LevelChanges {
		t.Errorf("Status = %q %q, want %q %q", r.Status, r.Level, StatusLineChanges, LevelChanges)
	}
	imp := func(n int, gross, net string) Impact { return Impact{Count: n, Gross: d(gross), Net: d(net)} }
	wantTotals := Totals{
		All: imp(4, "1790.5", "1289.5"), Unauthorized: imp(2, "1750.5", "1249.5"),
		NeedsReview: imp(1, "0", "0"), Estimated: imp(1, "250.5", "-250.5"), Unvalued: 1,
	}
	if diff := cmp.Diff(wantTotals, r.Totals, cmp.Comparer(decimal.Decimal.Equal)); diff != "" {
		t.Errorf("Totals (-want +got):\n%s", diff)
	}
	wantRisk := []RiskTotal{
		{RiskHigh, imp(1, "1500", "1500")}, {RiskMedium, imp(1, "250.5", "-250.5")},
		{RiskLow, imp(1, "40", "40")}, {RiskUnknown, imp(1, "0", "0")},
	}
	if diff := cmp.Diff(wantRisk, r.ByRisk, cmp.Comparer(decimal.Decimal.Equal)); diff != "" {
		t.Errorf("ByRisk (-want +got):\n%s", diff)
	}
	if got := r.ByKind[0]; got.Kind != KindValueChanged || got.Count != 3 {
		t.Errorf("ByKind[0] = %v, want VALUE_CHANGED ×3", got)
	}
	if got := r.ByStatus[0]; got.Status != StatusUnauthorized || got.Count != 2 {
		t.Errorf("ByStatus[0] = %v, want UNAUTHORIZED ×2", got)
	}
	var order []string
	for _, c := range r.Changes {
		order = append(order, c.ChangeID)
	}
	if diff := cmp.Diff([]string{"a", "b", "d", "c"}, order); diff != "" {
		t.Errorf("Changes order (-want +got):\n%s", diff)
	}
	if len(r.Top) != 2 || r.Top[0].ChangeID != "a" {
		t.Errorf("Top = %d items starting %v, want a, b", len(r.Top), r.Top)
	}
	cv := r.Coverage
	if cv.Changes != 4 || cv.Attributed != 3 || cv.ExactTime != 2 || cv.UnknownShare != 0.25 {
		t.Errorf("Coverage = %+v, want 4 changes, 3 attributed, 2 timed, 25%% unknown", cv)
	}
	if got := r.Heatmap[1][10]; got != 2 || r.Untimed != 2 { // Tuesday 10:00 CST
		t.Errorf("Heatmap[Tue][10] = %d, Untimed = %d; want 2, 2", got, r.Untimed)
	}
	if r.API.Total != 4 || r.API.Endpoints[0].Endpoint != "a" || r.API.RequestCapacity != 20 || r.API.RequestUse != 0.2 || r.API.HistoryUse != 0.2 {
		t.Errorf("API = %+v", r.API)
	}
	if len(r.TopEditors) != 2 || r.TopEditors[0].Count != 1 || !r.TopEditors[0].Gross.Equal(d("1500")) {
		t.Errorf("TopEditors = %+v", r.TopEditors)
	}
	first, last := r.PeriodDates()
	if FormatDate(first) != "2026-11-16" || FormatDate(last) != "2026-11-22" {
		t.Errorf("PeriodDates = %s, %s", FormatDate(first), FormatDate(last))
	}
}

func TestBuildReportDoesNotModifyInput(t *testing.T) {
	changes := []Change{rc("b", "5", StatusAuthorized), rc("a", "500", StatusUnauthorized)}
	in := reportInput(changes)
	in.Anonymize = Pseudonymizer([]byte("k"))
	r := BuildReport(in)
	if changes[0].ChangeID != "b" || changes[1].Attribution.User != "kim@example.com" {
		t.Errorf("input modified: %+v", changes)
	}
	if u := r.Changes[0].Attribution; !strings.HasPrefix(u.User, "user-") || u.Name != "" {
		t.Errorf("anonymised attribution = %+v, want a pseudonym and no name", u)
	}
}

func TestStatusLines(t *testing.T) {
	tests := []struct {
		name    string
		changes []Change
		want    string
		level   Level
	}{
		{"none", nil, StatusLineClean, LevelClean},
		{"authorized only", []Change{rc("a", "10", StatusAuthorized)}, StatusLineClean, LevelClean},
		{"needs review", []Change{rc("a", "10", StatusNeedsReview)}, StatusLineReview, LevelReview},
		{"unauthorized", []Change{rc("a", "10", StatusUnauthorized), rc("b", "1", StatusNeedsReview)}, StatusLineChanges, LevelChanges},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := BuildReport(reportInput(tc.changes))
			if r.Status != tc.want || r.Level != tc.level || r.StatusDetail == "" {
				t.Errorf("BuildReport(%s) status = %q %q %q, want %q %q", tc.name, r.Status, r.Level, r.StatusDetail, tc.want, tc.level)
			}
		})
	}
}

func TestZeroChangeReport(t *testing.T) {
	r := BuildReport(reportInput(nil))
	if r.Status != StatusLineClean {
		t.Errorf("Status = %q, want %q", r.Status, StatusLineClean)
	}
	if len(r.Recommendations) != 0 {
		t.Errorf("Recommendations = %v, want none", r.Recommendations)
	}
	if r.Projection != nil || len(r.Top) != 0 || len(r.TopEditors) != 0 {
		t.Errorf("Projection %v, Top %v, TopEditors %v; want none", r.Projection, r.Top, r.TopEditors)
	}
	if len(r.Weeks) != TrendWeeks || r.Weeks[TrendWeeks-1].WeekEnding != time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC) {
		t.Errorf("Weeks = %d ending %v, want %d ending 2026-11-22", len(r.Weeks), r.Weeks[len(r.Weeks)-1].WeekEnding, TrendWeeks)
	}
	if len(r.ByRisk) != 4 || len(r.ByKind) != 4 || len(r.ByStatus) != 3 {
		t.Errorf("breakdowns have %d, %d, %d rows; want every level as zeros", len(r.ByRisk), len(r.ByKind), len(r.ByStatus))
	}
}

// weeklyHistory returns one unauthorized change per week for the given
// weeks back from the period's week (0 = this week), of impact 100×(i+1).
func weeklyHistory(weeksBack ...int) []Change {
	impacts := make([]string, len(weeksBack))
	for i := range impacts {
		impacts[i] = fmt.Sprint(100 * (i + 1))
	}
	return historyOf(weeksBack, impacts)
}

// historyOf returns one unauthorized change per week back, with the impacts given.
func historyOf(weeksBack []int, impacts []string) []Change {
	var out []Change
	for i, w := range weeksBack {
		at := repStart.Add(34*time.Hour).AddDate(0, 0, -7*w)
		out = append(out, rc(fmt.Sprintf("h%d", w), impacts[i], StatusUnauthorized, func(c *Change) {
			c.Attribution.Time = &at
		}))
	}
	return out
}

func TestWeeklyTrend(t *testing.T) {
	in := reportInput(nil)
	in.History = weeklyHistory(0, 2, 11, 12) // week 12 back is outside the trend
	in.Changes = in.History[:1]              // also in History: counted once
	r := BuildReport(in)
	var counts []int
	for _, w := range r.Weeks {
		counts = append(counts, w.All.Count)
	}
	if diff := cmp.Diff([]int{1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1}, counts); diff != "" {
		t.Errorf("weekly counts (-want +got):\n%s", diff)
	}
	if got := r.Weeks[11]; !got.Unauthorized.Gross.Equal(d("100")) || got.Low != 1 {
		t.Errorf("last week = %+v, want unauthorized gross 100, 1 LOW", got)
	}
}

func TestProjection(t *testing.T) {
	tests := []struct {
		name      string
		weeksBack []int
		impacts   []string
		want      string // "" for no projection
		clamped   bool
	}{
		{"3 weeks: none", []int{2, 1, 0}, []string{"100", "200", "300"}, "", false},
		{"4 weeks rising: 100,200,300,400 → 500", []int{3, 2, 1, 0}, []string{"100", "200", "300", "400"}, "500", false},
		// y = 100, 200, 0, 300, 400 over x = 0…4: slope 70, intercept 60 → 410 at x = 5.
		{"a zero week inside the fit counts", []int{4, 3, 1, 0}, []string{"100", "200", "300", "400"}, "410", false},
		// y = 1000, 600, 100, 50: slope −335, intercept 940 → −400 at x = 4.
		{"falling below zero is clamped", []int{3, 2, 1, 0}, []string{"1000", "600", "100", "50"}, "0", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := reportInput(nil)
			in.History = historyOf(tc.weeksBack, tc.impacts)
			p := BuildReport(in).Projection
			if tc.want == "" {
				if p != nil {
					t.Errorf("Projection = %+v, want none", p)
				}
				return
			}
			if p == nil {
				t.Fatal("Projection = nil, want one")
			}
			if !p.Value.Equal(d(tc.want)) || p.Clamped != tc.clamped || p.WeekEnding != time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC) {
				t.Errorf("Projection = %s clamped %v for %s, want %s clamped %v for 2026-11-29", p.Value, p.Clamped, FormatDate(p.WeekEnding), tc.want, tc.clamped)
			}
			if !strings.HasPrefix(p.Label, "Linear projection") {
				t.Errorf("Label = %q, want it to say linear projection", p.Label)
			}
		})
	}
}

func TestMoneySum(t *testing.T) {
	var s moneySum
	var want decimal.Decimal
	for _, v := range []string{"1.25", "-3", "0.001", "100000000000000000000", "-7.5", "12.34"} {
		s.add(d(v), false)
		want = want.Add(d(v))
	}
	if !s.value().Equal(want) {
		t.Errorf("moneySum = %s, want %s", s.value(), want)
	}
}
