package audit

import (
	"cmp"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// BuildReport computes the report. It does not modify the input.
func BuildReport(in ReportInput) Report {
	loc := in.Config.location()
	r := Report{
		RunID:       in.Run.RunID,
		GeneratedAt: in.GeneratedAt.UTC(),
		PeriodStart: in.PeriodStart,
		PeriodEnd:   in.PeriodEnd,
		Location:    loc,
		HighRisk:    in.Config.HighRisk,
		MediumRisk:  in.Config.MediumRisk,
		TestMode:    in.Run.TestMode,
		Run:         in.Run,
		Integrity:   in.Integrity,
	}
	if r.PeriodStart.IsZero() {
		r.PeriodStart = in.Run.StartedAt
	}
	if r.PeriodEnd.IsZero() {
		r.PeriodEnd = cmp.Or(in.Run.FinishedAt, in.GeneratedAt)
	}
	if r.PeriodStart.IsZero() || r.PeriodStart.After(r.PeriodEnd) {
		r.PeriodStart = r.PeriodEnd
	}
	r.PeriodStart, r.PeriodEnd = r.PeriodStart.UTC(), r.PeriodEnd.UTC()

	r.Changes = prepareChanges(nil, in.Anonymize, in.Changes)
	r.summarise()
	r.Coverage = coverage(in.Run, r.Changes)
	r.API = apiUsage(in.Run)
	r.Findings = slices.Clone(in.Findings)
	slices.SortStableFunc(r.Findings, func(a, b Finding) int {
		return cmp.Or(cmp.Compare(a.Kind, b.Kind), cmp.Compare(a.SheetName, b.SheetName),
			cmp.Compare(a.SheetID, b.SheetID), cmp.Compare(a.RowNumber, b.RowNumber), cmp.Compare(a.Column, b.Column))
	})
	r.FindingGroups = groupFindings(r.Findings)
	r.Weeks = weeklyTrend(in.History, in.Changes, loc, r.PeriodStart, r.PeriodEnd)
	r.Projection = project(r.Weeks)
	// Who edits closed weeks, and when, reads as a pattern only over
	// weeks: the editors and the weekday/hour grid cover the trend's weeks.
	// History and this run's changes are read where they are, never
	// copied together: on a large run a copy is tens of megabytes.
	recent := prepareChanges(inTrend(r.Weeks, loc), in.Anonymize, in.History, in.Changes)
	r.TopEditors = topEditors(recent)
	for _, c := range recent {
		if c.Attribution.Time == nil {
			r.Untimed++
			continue
		}
		t := c.Attribution.Time.In(loc)
		r.Heatmap[(int(t.Weekday())+6)%7][t.Hour()]++
	}
	r.Recommendations = recommend(&r, in.Changes)
	var reviews []Review
	if in.Integrity != nil {
		reviews = in.Integrity.Verification.Reviews
	}
	r.Exceptions = buildExceptions(reviews, in.Config, r.GeneratedAt, in.History, in.Changes)
	if in.Anonymize != nil {
		anonymizeExceptions(&r.Exceptions, in.Anonymize)
	}
	return r
}

// anonymizeExceptions pseudonymises the people of the exceptions: the
// changes' authors (on copies), the reviewers and who saved the reviews.
func anonymizeExceptions(ex *Exceptions, anon func(string) string) {
	person := func(s string) string {
		if strings.TrimSpace(s) == "" {
			return s
		}
		return anon(s)
	}
	for i := range ex.List {
		e := &ex.List[i]
		cp := *e.Change
		if id := cmp.Or(cp.Attribution.User, cp.Attribution.Name); id != "" && !IsAutomation(cp.Attribution) {
			cp.Attribution.User, cp.Attribution.Name = anon(id), ""
		}
		e.Change = &cp
		e.Review.Reviewer, e.Review.By = person(e.Review.Reviewer), person(e.Review.By)
	}
	for i := range ex.ByReviewer {
		ex.ByReviewer[i].Label = person(ex.ByReviewer[i].Label)
	}
}

// eachChange yields a pointer to each change of sets, in order.
func eachChange(sets [][]Change) iter.Seq[*Change] {
	return func(yield func(*Change) bool) {
		for _, set := range sets {
			for i := range set {
				if !yield(&set[i]) {
					return
				}
			}
		}
	}
}

// prepareChanges de-duplicates (the first of a Change ID wins) and orders
// the changes of sets that keep accepts (nil: all), and anonymises copies of
// them when asked; otherwise it points into sets.
func prepareChanges(keep func(*Change) bool, anon func(string) string, sets ...[]Change) []*Change {
	type key struct {
		rank  int
		cents int64 // |impact| in cents when small is set
		small bool
		abs   decimal.Decimal
		c     *Change
	}
	n := 0
	for _, set := range sets {
		n += len(set)
	}
	keys := make([]key, 0, n)
	seen := make(map[string]struct{}, n)
	var copies []Change
	if anon != nil {
		copies = make([]Change, 0, n) // never grown: keys point into it
	}
	for c := range eachChange(sets) {
		if keep != nil && !keep(c) {
			continue
		}
		if c.ChangeID != "" {
			if _, dup := seen[c.ChangeID]; dup {
				continue
			}
			seen[c.ChangeID] = struct{}{}
		}
		if anon != nil {
			cp := *c
			if id := cmp.Or(cp.Attribution.User, cp.Attribution.Name); id != "" && !IsAutomation(cp.Attribution) {
				cp.Attribution.User, cp.Attribution.Name = anon(id), ""
			}
			copies = append(copies, cp)
			c = &copies[len(copies)-1]
		}
		k := key{rank: rank(statusOrder, c.Status), c: c}
		var abs moneySum
		if abs.add(c.Impact, true); abs.rest.IsZero() {
			k.cents, k.small = abs.cents, true
		} else {
			k.abs = c.Impact.Abs()
		}
		keys = append(keys, k)
	}
	byAbs := func(a, b key) int { // larger first
		if a.small && b.small {
			return cmp.Compare(b.cents, a.cents)
		}
		av, bv := a.abs, b.abs
		if a.small {
			av = decimal.New(a.cents, -2)
		}
		if b.small {
			bv = decimal.New(b.cents, -2)
		}
		return bv.Cmp(av)
	}
	slices.SortFunc(keys, func(a, b key) int {
		return cmp.Or(
			cmp.Compare(a.rank, b.rank),
			byAbs(a, b),
			cmp.Compare(a.c.ChangeID, b.c.ChangeID),
			cmp.Compare(a.c.SheetID, b.c.SheetID),
			cmp.Compare(a.c.RowID, b.c.RowID),
		)
	})
	out := make([]*Change, len(keys))
	for i, k := range keys {
		out[i] = k.c
	}
	return out
}

// summarise fills the status, totals, breakdowns and top items.
func (r *Report) summarise() {
	byRisk := make(map[Risk]*impactSum)
	byKind := make(map[Kind]*impactSum)
	byStatus := make(map[Status]*impactSum)
	var all, unauth, review, est impactSum
	for _, c := range r.Changes {
		all.add(c.Impact)
		switch c.Status {
		case StatusUnauthorized:
			unauth.add(c.Impact)
		case StatusNeedsReview:
			review.add(c.Impact)
		}
		if c.Estimated {
			est.add(c.Impact)
		}
		if c.Unvalued {
			r.Totals.Unvalued++
		}
		bucket(byRisk, c.Risk).add(c.Impact)
		bucket(byKind, c.Kind).add(c.Impact)
		bucket(byStatus, c.Status).add(c.Impact)
	}
	r.Totals.All, r.Totals.Unauthorized, r.Totals.NeedsReview, r.Totals.Estimated =
		all.impact(), unauth.impact(), review.impact(), est.impact()
	for _, k := range orderedKeys(byRisk, riskOrder) {
		r.ByRisk = append(r.ByRisk, RiskTotal{Risk: k, Impact: byRisk[k].impact()})
	}
	for _, k := range orderedKeys(byKind, kindOrder) {
		r.ByKind = append(r.ByKind, KindTotal{Kind: k, Impact: byKind[k].impact()})
	}
	for _, k := range orderedKeys(byStatus, statusOrder) {
		r.ByStatus = append(r.ByStatus, StatusTotal{Status: k, Impact: byStatus[k].impact()})
	}

	for _, c := range r.Changes { // ordered unauthorized first, by |impact|
		if len(r.Top) == TopItems || !c.Unauthorized() {
			break
		}
		r.Top = append(r.Top, c)
	}

	u, nr := r.Totals.Unauthorized, r.Totals.NeedsReview
	switch {
	case u.Count > 0:
		r.Status, r.Level = StatusLineChanges, LevelChanges
		r.StatusDetail = fmt.Sprintf("%s made after their week closed (gross %s, net %s)",
			plural(u.Count, "change"), MoneyText(u.Gross), MoneyText(u.Net))
		if nr.Count > 0 {
			r.StatusDetail += fmt.Sprintf("; %s to review", plural(nr.Count, "more change"))
		}
	case nr.Count > 0:
		r.Status, r.Level = StatusLineReview, LevelReview
		r.StatusDetail = fmt.Sprintf("no change is known to be unauthorized, but %s could not be judged (gross %s)",
			plural(nr.Count, "change"), MoneyText(nr.Gross))
	default:
		r.Status, r.Level = StatusLineClean, LevelClean
		if n := r.Totals.All.Count; n > 0 {
			r.StatusDetail = fmt.Sprintf("%s, all made while their week was open", plural(n, "change"))
		} else {
			r.StatusDetail = "no change to billed rows in the period"
		}
	}
}

func bucket[K comparable](m map[K]*impactSum, k K) *impactSum {
	t, ok := m[k]
	if !ok {
		t = &impactSum{}
		m[k] = t
	}
	return t
}

// orderedKeys lists the keys of order, then the other keys of m sorted.
func orderedKeys[K cmp.Ordered, V any](m map[K]V, order []K) []K {
	keys := slices.Clone(order)
	var rest []K
	for k := range m {
		if !slices.Contains(order, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func coverage(run RunFacts, changes []*Change) Coverage {
	cv := Coverage{
		SheetsScanned: run.SheetsScanned, SheetsSkipped: run.SheetsSkipped, RowsScanned: run.RowsScanned,
		Changes: len(changes),
	}
	counts := make(map[AttributionSource]int)
	for _, c := range changes {
		a := &c.Attribution
		src := a.Source
		if src == "" {
			src = SourceUnknown
		}
		counts[src]++
		if src != SourceUnknown {
			cv.Attributed++
		}
		if a.Time != nil {
			cv.ExactTime++
		}
	}
	for _, s := range sourceOrder {
		cv.BySource = append(cv.BySource, SourceCount{Source: s, Count: counts[s]})
	}
	var rest []AttributionSource
	for s := range counts {
		if !slices.Contains(sourceOrder, s) {
			rest = append(rest, s)
		}
	}
	slices.Sort(rest)
	for _, s := range rest {
		cv.BySource = append(cv.BySource, SourceCount{Source: s, Count: counts[s]})
	}
	if cv.Changes > 0 {
		cv.AttributedShare = float64(cv.Attributed) / float64(cv.Changes)
		cv.UnknownShare = 1 - cv.AttributedShare
	}
	return cv
}

func apiUsage(run RunFacts) APIUsage {
	u := APIUsage{
		RequestBudgetPerMinute: run.RequestBudgetPerMinute,
		HistoryCalls:           run.CellHistoryCalls,
		HistoryBudgetPerMinute: run.HistoryBudgetPerMinute,
		Retries:                run.Retries,
		RateLimitWaits:         run.RateLimitWaits,
		RateLimitWait:          run.RateLimitWait,
	}
	for ep, n := range run.APICalls {
		u.Endpoints = append(u.Endpoints, EndpointCalls{Endpoint: ep, Calls: n})
		u.Total += n
	}
	slices.SortFunc(u.Endpoints, func(a, b EndpointCalls) int {
		return cmp.Or(cmp.Compare(b.Calls, a.Calls), cmp.Compare(a.Endpoint, b.Endpoint))
	})
	for i := range u.Endpoints {
		if u.Total > 0 {
			u.Endpoints[i].Share = float64(u.Endpoints[i].Calls) / float64(u.Total)
		}
	}
	if run.FinishedAt.After(run.StartedAt) && !run.StartedAt.IsZero() {
		u.Duration = run.FinishedAt.Sub(run.StartedAt)
	}
	// The budgets hold over any sliding minute, so a run shorter than a
	// minute could use a whole minute's budget: rates and capacities are
	// taken over at least one minute, never extrapolated from seconds.
	if u.Duration > 0 {
		mins := max(u.Duration.Minutes(), 1)
		u.AvgPerMinute = float64(u.Total) / mins
		if run.RequestBudgetPerMinute > 0 {
			u.RequestCapacity = int(float64(run.RequestBudgetPerMinute) * mins)
			if u.RequestCapacity > 0 {
				u.RequestUse = float64(u.Total) / float64(u.RequestCapacity)
			}
		}
		if run.HistoryBudgetPerMinute > 0 {
			u.HistoryCapacity = int(float64(run.HistoryBudgetPerMinute) * mins)
			if u.HistoryCapacity > 0 {
				u.HistoryUse = float64(u.HistoryCalls) / float64(u.HistoryCapacity)
			}
		}
	}
	return u
}

func groupFindings(fs []Finding) []FindingGroup {
	var out []FindingGroup
	for _, f := range fs { // sorted by kind
		if len(out) == 0 || out[len(out)-1].Kind != f.Kind {
			out = append(out, FindingGroup{Kind: f.Kind})
		}
		g := &out[len(out)-1]
		g.Count++
		name := sheetLabel(f.SheetName, f.SheetID)
		if !slices.Contains(g.Sheets, name) {
			g.Sheets = append(g.Sheets, name)
		}
	}
	for i := range out {
		slices.Sort(out[i].Sheets)
	}
	return out
}

// inTrend accepts the changes made in the trend's weeks (those with a known
// time or window), as weeklyTrend counts them; none when there are no weeks.
func inTrend(weeks []WeekTrend, loc *time.Location) func(*Change) bool {
	if len(weeks) == 0 {
		return func(*Change) bool { return false }
	}
	first, last := weeks[0].WeekEnding, weeks[len(weeks)-1].WeekEnding
	return func(c *Change) bool {
		t, ok := changedAt(c)
		if !ok {
			return false
		}
		we := WeekEndingOf(t.In(loc))
		return !we.Before(first) && !we.After(last)
	}
}

// weeklyTrend buckets History ∪ Changes (by ChangeID) into the TrendWeeks
// weeks ending with the week of the period's end.
func weeklyTrend(history, changes []Change, loc *time.Location, start, end time.Time) []WeekTrend {
	last := end
	if end.After(start) {
		last = end.Add(-time.Nanosecond)
	}
	lastWeek := WeekEndingOf(last.In(loc))
	first := lastWeek.AddDate(0, 0, -7*(TrendWeeks-1))
	weeks := make([]WeekTrend, TrendWeeks)
	for i := range weeks {
		weeks[i].WeekEnding = first.AddDate(0, 0, 7*i)
	}
	seen := make(map[string]struct{}, len(history)+len(changes))
	var all, unauth [TrendWeeks]impactSum
	add := func(c *Change) {
		if c.ChangeID != "" {
			if _, dup := seen[c.ChangeID]; dup {
				return
			}
			seen[c.ChangeID] = struct{}{}
		}
		t, ok := changedAt(c)
		if !ok {
			return
		}
		we := WeekEndingOf(t.In(loc))
		i := int(we.Sub(first).Hours()+0.5) / (24 * 7)
		if we.Before(first) || i >= TrendWeeks {
			return
		}
		w := &weeks[i]
		all[i].add(c.Impact)
		if c.Unauthorized() {
			unauth[i].add(c.Impact)
		}
		switch c.Risk {
		case RiskHigh:
			w.High++
		case RiskMedium:
			w.Medium++
		case RiskLow:
			w.Low++
		default:
			w.Unknown++
		}
	}
	for i := range history {
		add(&history[i])
	}
	for i := range changes {
		add(&changes[i])
	}
	for i := range weeks {
		weeks[i].All, weeks[i].Unauthorized = all[i].impact(), unauth[i].impact()
	}
	return weeks
}

// project fits a least-squares line y = a + b·x through the weekly
// unauthorized gross impact, x = 0, 1, … from the first week with a change
// to the last week, and evaluates it one week on. Weeks after the first with
// a change count even when they are zero: no change is a data point.
func project(weeks []WeekTrend) *Projection {
	withData, firstIdx := 0, -1
	for i, w := range weeks {
		if w.All.Count > 0 {
			withData++
			if firstIdx < 0 {
				firstIdx = i
			}
		}
	}
	if withData < MinProjectionWeeks {
		return nil
	}
	pts := weeks[firstIdx:]
	n := decimal.NewFromInt(int64(len(pts)))
	var sx, sy, sxy, sxx decimal.Decimal
	for i, w := range pts {
		x := decimal.NewFromInt(int64(i))
		y := w.Unauthorized.Gross
		sx, sy = sx.Add(x), sy.Add(y)
		sxy, sxx = sxy.Add(x.Mul(y)), sxx.Add(x.Mul(x))
	}
	den := n.Mul(sxx).Sub(sx.Mul(sx)) // > 0: at least 4 distinct x
	slope := n.Mul(sxy).Sub(sx.Mul(sy)).DivRound(den, 8)
	intercept := sy.Sub(slope.Mul(sx)).DivRound(n, 8)
	next := decimal.NewFromInt(int64(len(pts)))
	v := intercept.Add(slope.Mul(next)).Round(2)
	p := &Projection{
		WeekEnding:    weeks[len(weeks)-1].WeekEnding.AddDate(0, 0, 7),
		Value:         v,
		Slope:         slope.Round(2),
		FitFrom:       pts[0].WeekEnding,
		FitTo:         pts[len(pts)-1].WeekEnding,
		Points:        len(pts),
		WeeksWithData: withData,
	}
	if v.IsNegative() {
		p.Value, p.Clamped = decimal.Zero, true
	}
	p.Label = fmt.Sprintf("Linear projection, not a forecast: a least-squares straight line through the weekly unauthorized gross impact of the %d weeks ending %s to %s (%d of them with changes), extended one week, gives %s for the week ending %s (trend %s per week)",
		p.Points, FormatDate(p.FitFrom), FormatDate(p.FitTo), withData, MoneyText(p.Value), FormatDate(p.WeekEnding), MoneyText(p.Slope))
	if p.Clamped {
		p.Label += fmt.Sprintf("; the line falls below zero (%s) and is shown as zero", MoneyText(v))
	}
	return p
}

func topEditors(changes []*Change) []Editor {
	type person struct{ user, name string }
	idx := make(map[person]int) // Who would allocate per change
	byLabel := make(map[string]int)
	var eds []Editor
	var sums []impactSum
	for _, c := range changes {
		if !c.Unauthorized() {
			continue
		}
		k := person{c.Attribution.User, c.Attribution.Name}
		j, ok := idx[k]
		if !ok {
			who := Who(Attribution{User: k.user, Name: k.name})
			if who == "" {
				who = "(unknown)"
			}
			if j, ok = byLabel[who]; !ok {
				j = len(eds)
				byLabel[who] = j
				eds = append(eds, Editor{User: who})
				sums = append(sums, impactSum{})
			}
			idx[k] = j
		}
		sums[j].add(c.Impact)
	}
	for j := range eds {
		eds[j].Impact = sums[j].impact()
	}
	slices.SortFunc(eds, func(a, b Editor) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), b.Gross.Cmp(a.Gross), cmp.Compare(a.User, b.User))
	})
	if len(eds) > TopEditors {
		eds = eds[:TopEditors]
	}
	return eds
}

// changedAt is when a change was made: the attribution time when known,
// else the detection time (ok=false when both are zero).
func changedAt(c *Change) (time.Time, bool) {
	if c.Attribution.Time != nil {
		return *c.Attribution.Time, true
	}
	return c.DetectedAt, !c.DetectedAt.IsZero()
}

// The orders of the breakdowns and of the report's changes; values not
// listed come after, sorted.
var (
	riskOrder   = []Risk{RiskHigh, RiskMedium, RiskLow, RiskUnknown}
	kindOrder   = []Kind{KindValueChanged, KindRowDeleted, KindRowAddedLate, KindWeekMoved}
	statusOrder = []Status{StatusUnauthorized, StatusNeedsReview, StatusAuthorized}
	sourceOrder = []AttributionSource{SourceWebhook, SourceWriterInfo, SourceCellHistory, SourceUnknown}
)

// rank is v's position in order, len(order) when it is not listed.
func rank[T comparable](order []T, v T) int {
	if i := slices.Index(order, v); i >= 0 {
		return i
	}
	return len(order)
}

// moneySum adds amounts without allocating when they have at most two
// decimals and fit an int64 of cents (the usual case), and exactly with
// decimal otherwise.
type moneySum struct {
	cents int64
	rest  decimal.Decimal
}

const centsFlush = 1 << 60

func (s *moneySum) add(d decimal.Decimal, abs bool) {
	if e := d.Exponent(); e >= -2 && e <= 0 && d.NumDigits() <= 15 {
		c := d.CoefficientInt64()
		for ; e > -2; e-- {
			c *= 10
		}
		if abs && c < 0 {
			c = -c
		}
		s.cents += c
		if s.cents > centsFlush || s.cents < -centsFlush {
			s.rest = s.rest.Add(decimal.New(s.cents, -2))
			s.cents = 0
		}
		return
	}
	if abs {
		d = d.Abs()
	}
	s.rest = s.rest.Add(d)
}

func (s moneySum) value() decimal.Decimal { return s.rest.Add(decimal.New(s.cents, -2)) }

// impactSum accumulates an [Impact].
type impactSum struct {
	n          int
	gross, net moneySum
}

func (t *impactSum) add(d decimal.Decimal) {
	t.n++
	t.gross.add(d, true)
	t.net.add(d, false)
}

func (t *impactSum) impact() Impact {
	if t == nil {
		return Impact{}
	}
	return Impact{Count: t.n, Gross: t.gross.value(), Net: t.net.value()}
}
