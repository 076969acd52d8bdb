package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
)

func TestBuildExceptions(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	week := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC) // closed 2026-11-16 00:00 (+ grace)
	cfg := DefaultConfig()
	at := func(d time.Time) *time.Time { return &d }
	change := func(id string, status Status, impact string, detectedDaysAgo int) Change {
		return Change{ChangeID: id, Status: status, Impact: decimal.RequireFromString(impact), WeekEnding: week,
			Kind: KindValueChanged, DetectedAt: now.AddDate(0, 0, -detectedDaysAgo)}
	}
	orig := change("orig", StatusUnauthorized, "4350", 12)
	back := change("back", StatusUnauthorized, "-4350", 5)
	back.Reverses = "orig"
	open := change("open", StatusUnauthorized, "250", 10)
	open.Attribution.Time = at(week.AddDate(0, 0, 4)) // made 3 days after the cutoff
	approved := change("approved", StatusUnauthorized, "100", 40)
	review := change("review", StatusNeedsReview, "75", 100)
	fine := change("fine", StatusAuthorized, "999", 1)
	history := []Change{orig, back, open, approved, review, fine, open} // open twice: de-duplicated
	reviews := []Review{
		{ChangeID: "orig", Disposition: DispositionReversed},
		{ChangeID: "back", Disposition: DispositionReversed},
		{ChangeID: "open", Reviewer: "priya@x", Disposition: DispositionInvestigating},
		{ChangeID: "approved", Reviewer: "priya@x", Disposition: DispositionApproved},
		// "review" is not on the sheet: it keeps the product's Open.
	}
	ex := buildExceptions(reviews, cfg, now, history)

	type money struct{ Gross, Net, Open string }
	if got, want := (money{ex.Gross.String(), ex.Net.String(), ex.Open.String()}), (money{"4700", "350", "325"}); got != want {
		t.Errorf("gross, net, open = %+v, want %+v", got, want)
	}
	if ex.Count != 4 || ex.OpenCount != 2 || !ex.Reviewed {
		t.Errorf("Count, OpenCount, Reviewed = %d, %d, %t; want 4, 2, true", ex.Count, ex.OpenCount, ex.Reviewed)
	}
	type row struct {
		ID          string
		Age, After  int
		Disposition string
	}
	var list []row
	for _, e := range ex.List {
		list = append(list, row{e.Change.ChangeID, e.AgeDays, e.DaysAfterClose, e.Review.Disposition})
	}
	wantList := []row{{"review", 100, 0, DispositionOpen}, {"open", 10, 3, DispositionInvestigating}}
	if diff := cmp.Diff(wantList, list); diff != "" {
		t.Errorf("open exceptions, oldest first (-want +got):\n%s", diff)
	}
	counts := func(ts []ExceptionTotal) map[string]int {
		m := map[string]int{}
		for _, t := range ts {
			m[t.Label] = t.Count
		}
		return m
	}
	if diff := cmp.Diff(map[string]int{"0–7 days": 0, "8–30 days": 1, "31–90 days": 0, "over 90 days": 1}, counts(ex.ByAge)); diff != "" {
		t.Errorf("by age (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{DispositionOpen: 1, DispositionInvestigating: 1, DispositionApproved: 1, DispositionReversed: 2, DispositionInvoiced: 0},
		counts(ex.ByDisposition)); diff != "" {
		t.Errorf("by disposition (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]int{"priya@x": 1, "": 1}, counts(ex.ByReviewer)); diff != "" {
		t.Errorf("open ones by reviewer (-want +got):\n%s", diff)
	}

	// Without review columns (no verification), each exception keeps the
	// disposition the product gave it: the reversal pair is Reversed, the
	// rest Open.
	bare := buildExceptions(nil, cfg, now, history)
	if bare.Reviewed || bare.OpenCount != 3 || bare.Open.String() != "425" {
		t.Errorf("without reviews: Reviewed %t, %d open, %s open impact; want false, 3, 425", bare.Reviewed, bare.OpenCount, bare.Open)
	}
}

func TestHeadline(t *testing.T) {
	w1 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	w0 := w1.AddDate(0, 0, -7)
	c := func(status Status, impact string, week time.Time) *Change {
		return &Change{Status: status, Impact: decimal.RequireFromString(impact), WeekEnding: week}
	}
	tests := []struct {
		name    string
		changes []*Change
		want    string
	}{
		{"none", nil, "No unauthorized change in the period"},
		{"one", []*Change{c(StatusUnauthorized, "250", w1), c(StatusAuthorized, "999", w1)}, "1 unauthorized change · $250.00 gross / $250.00 net · week ending 2026-11-29"},
		{"two weeks", []*Change{c(StatusUnauthorized, "6000", w1), c(StatusUnauthorized, "-497.75", w0), c(StatusUnauthorized, "1", w1)},
			"3 unauthorized changes · $6,498.75 gross / $5,503.25 net · weeks ending 2026-11-22, 2026-11-29"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Changes: tt.changes}
			r.summarise()
			if got := r.Headline(); got != tt.want {
				t.Errorf("Headline() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPeriodText(t *testing.T) {
	start := time.Date(2026, 11, 30, 6, 0, 0, 0, time.UTC) // Monday 00:00 in CST
	loc := time.FixedZone("CST", -6*3600)
	w1 := time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	w0 := w1.AddDate(0, 0, -7)
	c := func(status Status, week time.Time) *Change { return &Change{Status: status, WeekEnding: week} }
	tests := []struct {
		name    string
		changes []*Change
		want    string
	}{
		{"no change", nil, "changes detected 2026-11-30 to 2026-12-06"},
		{"last week hit", []*Change{c(StatusUnauthorized, w1), c(StatusAuthorized, w0)},
			"week ending 2026-11-29 (changes detected 2026-11-30 to 2026-12-06)"},
		{"two weeks hit", []*Change{c(StatusUnauthorized, w1), c(StatusUnauthorized, w0)},
			"weeks ending 2026-11-22, 2026-11-29 (changes detected 2026-11-30 to 2026-12-06)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Report{Changes: tt.changes, PeriodStart: start, PeriodEnd: start.AddDate(0, 0, 7), Location: loc}
			if got := r.PeriodText(); got != tt.want {
				t.Errorf("PeriodText() = %q, want %q", got, tt.want)
			}
		})
	}
}

// ChangeDisposition answers as InitialDisposition does from the change's
// audit-row fields.
func TestChangeDisposition(t *testing.T) {
	for _, status := range []Status{StatusUnauthorized, StatusAuthorized, StatusNeedsReview, ""} {
		for _, reverses := range []string{"", "c-1", "c-1,c-2"} {
			c := Change{ChangeID: "c-3", Status: status, Reverses: reverses}
			want := InitialDisposition(LogFields(c, time.UTC))
			if got := ChangeDisposition(&c); got != want {
				t.Errorf("ChangeDisposition(status %q, reverses %q) = %q, want %q", status, reverses, got, want)
			}
		}
	}
}
