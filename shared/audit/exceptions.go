package audit

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// Exception is an unauthorized change (or one to review) with its review:
// what a manager works until it is resolved.
type Exception struct {
	Change *Change
	Review Review
	// AgeDays is the whole days since it was detected, at the report's time.
	AgeDays int
	// DaysAfterClose is the whole days from its week's cutoff to the change
	// (its attribution time; its detection when that is unknown).
	DaysAfterClose int
}

// Exceptions is the exceptions part of a report: the money of unauthorized
// changes gross, net and still open, and the open ones by age, disposition
// and reviewer. It covers the changes of the report's history (the trend
// weeks), with each one's review as the audit sheet shows it (a change the
// sheet did not show keeps the disposition the product gave it).
type Exceptions struct {
	// Gross is Σ|impact| of the unauthorized changes that are not reversals;
	// Net the signed sum of all of them, reversals included (a change put
	// back nets out); Open the signed sum of those still open.
	Gross, Net, Open decimal.Decimal
	// Count and OpenCount count the unauthorized changes (reversals
	// included) and the open ones.
	Count, OpenCount int
	// Reviewed is false when the report had no review columns to read (no
	// verification of the audit sheet): every exception is then shown with
	// the disposition the product gave it.
	Reviewed bool
	// List is the open exceptions, oldest first.
	List          []Exception
	ByAge         []ExceptionTotal // ExceptionAges, in order
	ByDisposition []ExceptionTotal // Dispositions, in order, then others
	ByReviewer    []ExceptionTotal // open ones by reviewer, most first; "" is unassigned
}

// ExceptionTotal counts exceptions of one group and their net impact;
// OldestDays is the age of the oldest.
type ExceptionTotal struct {
	Label      string
	Count      int
	Impact     decimal.Decimal
	OldestDays int
}

// ExceptionAges are the age groups of open exceptions, by days since
// detection: upper bounds (inclusive) and labels.
var ExceptionAges = []struct {
	Days  int
	Label string
}{{7, "0–7 days"}, {30, "8–30 days"}, {90, "31–90 days"}, {1 << 30, "over 90 days"}}

// buildExceptions gathers the exceptions of history with their reviews.
func buildExceptions(reviews []Review, cfg Config, at time.Time, sets ...[]Change) Exceptions {
	var ex Exceptions
	byID := make(map[string]Review, len(reviews))
	for _, rv := range reviews {
		byID[rv.ChangeID] = rv
	}
	ex.Reviewed = reviews != nil
	ex.ByAge = make([]ExceptionTotal, len(ExceptionAges))
	for i, a := range ExceptionAges {
		ex.ByAge[i].Label = a.Label
	}
	disp := map[string]*ExceptionTotal{}
	for _, d := range Dispositions() {
		disp[d] = &ExceptionTotal{Label: d}
	}
	reviewers := map[string]*ExceptionTotal{}
	reversed := map[string]bool{}
	for _, set := range sets {
		for _, c := range set {
			for _, id := range ReversedIDs(c.Reverses) {
				reversed[id] = true
			}
		}
	}
	seen := map[string]bool{}
	for c := range eachChange(sets) {
		if seen[c.ChangeID] || (c.Status != StatusUnauthorized && c.Status != StatusNeedsReview) {
			continue
		}
		seen[c.ChangeID] = true
		rv, ok := byID[c.ChangeID]
		switch {
		case ok:
		case reversed[c.ChangeID]: // as the run that logged its reversal marked it
			rv = Review{ChangeID: c.ChangeID, Disposition: DispositionReversed}
		default:
			rv = Review{ChangeID: c.ChangeID, Disposition: ChangeDisposition(c)}
		}
		if c.Status == StatusUnauthorized {
			ex.Count++
			ex.Net = ex.Net.Add(c.Impact)
			if c.Reverses == "" {
				ex.Gross = ex.Gross.Add(c.Impact.Abs())
			}
		}
		label := strings.TrimSpace(rv.Disposition)
		if label == "" {
			label = DispositionOpen
		}
		e := Exception{Change: c, Review: rv, AgeDays: wholeDays(c.DetectedAt, at), DaysAfterClose: daysAfterClose(c, cfg)}
		add(disp, label, e)
		if !rv.Open() {
			continue
		}
		ex.OpenCount++
		ex.Open = ex.Open.Add(c.Impact)
		ex.List = append(ex.List, e)
		for i, a := range ExceptionAges {
			if e.AgeDays <= a.Days {
				total(&ex.ByAge[i], e)
				break
			}
		}
		add(reviewers, strings.TrimSpace(rv.Reviewer), e)
	}
	slices.SortStableFunc(ex.List, func(a, b Exception) int {
		return cmp.Or(a.Change.DetectedAt.Compare(b.Change.DetectedAt), cmp.Compare(a.Change.ChangeID, b.Change.ChangeID))
	})
	for _, d := range Dispositions() {
		ex.ByDisposition = append(ex.ByDisposition, *disp[d])
		delete(disp, d)
	}
	others := sortedTotals(disp)
	ex.ByDisposition = append(ex.ByDisposition, others...)
	ex.ByReviewer = sortedTotals(reviewers)
	return ex
}

func add(m map[string]*ExceptionTotal, label string, e Exception) {
	t := m[label]
	if t == nil {
		t = &ExceptionTotal{Label: label}
		m[label] = t
	}
	total(t, e)
}

func total(t *ExceptionTotal, e Exception) {
	t.Count++
	t.Impact = t.Impact.Add(e.Change.Impact)
	t.OldestDays = max(t.OldestDays, e.AgeDays)
}

// sortedTotals lists totals most first, then by label.
func sortedTotals(m map[string]*ExceptionTotal) []ExceptionTotal {
	out := make([]ExceptionTotal, 0, len(m))
	for _, t := range m {
		out = append(out, *t)
	}
	slices.SortFunc(out, func(a, b ExceptionTotal) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Label, b.Label))
	})
	return out
}

func wholeDays(from, to time.Time) int {
	if from.IsZero() || to.Before(from) {
		return 0
	}
	return int(to.Sub(from) / (24 * time.Hour))
}

// daysAfterClose is the whole days from the change's week cutoff to when it
// was made (its detection when the time is unknown); 0 for a change with no
// week.
func daysAfterClose(c *Change, cfg Config) int {
	if c.WeekEnding.IsZero() {
		return 0
	}
	when := c.DetectedAt
	if c.Attribution.Time != nil {
		when = *c.Attribution.Time
	}
	return wholeDays(cfg.Cutoff(c.WeekEnding), when)
}

// Headline is the report in one line a manager reads in five seconds: the
// period's unauthorized changes, their money gross and net, and the billed
// weeks they hit — "9 unauthorized changes · $6,497.75 gross / $5,292.75
// net · week ending 2026-11-29".
func (r Report) Headline() string {
	u := r.Totals.Unauthorized
	if u.Count == 0 {
		return "No unauthorized change in the period"
	}
	noun := "unauthorized changes"
	if u.Count == 1 {
		noun = "unauthorized change"
	}
	hit := ""
	if weeks := WeeksText(r.WeeksHit()); weeks != "" {
		hit = " · " + weeks
	}
	return fmt.Sprintf("%d %s · %s gross / %s net%s", u.Count, noun, MoneyText(u.Gross), MoneyText(u.Net), hit)
}

// WeeksHit are the billing weeks the period's unauthorized changes hit (the
// week each was billed in), in order; those of all its changes when none is
// unauthorized.
func (r Report) WeeksHit() []time.Time {
	pick := func(unauthorizedOnly bool) []time.Time {
		seen := map[time.Time]bool{}
		var out []time.Time
		for _, c := range r.Changes {
			if (unauthorizedOnly && c.Status != StatusUnauthorized) || c.WeekEnding.IsZero() || seen[c.WeekEnding] {
				continue
			}
			seen[c.WeekEnding] = true
			out = append(out, c.WeekEnding)
		}
		slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
		return out
	}
	if weeks := pick(true); len(weeks) > 0 {
		return weeks
	}
	return pick(false)
}

// WeeksText names billing weeks: "week ending 2026-11-29", "weeks ending
// 2026-11-22, 2026-11-29"; "" for none.
func WeeksText(weeks []time.Time) string {
	list := make([]string, len(weeks))
	for i, w := range weeks {
		list[i] = FormatDate(w)
	}
	switch len(list) {
	case 0:
		return ""
	case 1:
		return "week ending " + list[0]
	}
	return "weeks ending " + strings.Join(list, ", ")
}
