package audit

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shopspring/decimal"
)

// The report's status lines. [StatusLineChanges] is shown when at least one
// change was made after its week closed; [StatusLineReview] when none was
// but some could not be judged (their time straddles the cutoff, or their
// week is unknown); [StatusLineClean] otherwise.
const (
	StatusLineChanges = "CHANGES DETECTED"
	StatusLineReview  = "CHANGES NEED REVIEW"
	StatusLineClean   = "NO UNAUTHORIZED CHANGES"
)

// Level is how alarming a report's status is.
type Level string

// The levels, from calm to alarming.
const (
	LevelClean   Level = "CLEAN"
	LevelReview  Level = "REVIEW"
	LevelChanges Level = "CHANGES"
)

// Report limits and thresholds.
const (
	// TrendWeeks is the length of the weekly trend.
	TrendWeeks = 12
	// MinProjectionWeeks is the number of trend weeks with at least one
	// change needed before a projection is computed.
	MinProjectionWeeks = 4
	// TopItems is the length of the "act on these" list.
	TopItems = 10
	// TopEditors is the length of the editors-of-closed-weeks list.
	TopEditors = 10
	// UnknownAttributionThreshold is the share of changes without a known
	// author above which webhooks are recommended.
	UnknownAttributionThreshold = 0.20
)

// AutomationEmail is the identity Smartsheet shows for automation workflow
// edits.
const AutomationEmail = "automation@smartsheet.com"

// RunFacts are the figures of the run a report is about, as measured by the
// pipeline and the Smartsheet client.
type RunFacts struct {
	RunID                  string
	StartedAt, FinishedAt  time.Time
	SheetsScanned          int
	SheetsSkipped          int // unchanged since the previous scan
	RowsScanned            int
	APICalls               map[string]int // endpoint → calls
	RequestBudgetPerMinute int
	HistoryBudgetPerMinute int
	Retries                int
	RateLimitWaits         int
	RateLimitWait          time.Duration
	CellHistoryCalls       int
	TestMode               bool
}

// ReportInput is everything [BuildReport] computes a report from.
type ReportInput struct {
	Run RunFacts
	// Changes are the changes the report is about: this run's, or this
	// period's.
	Changes []Change
	// History holds stored changes of the last 12 weeks or more, for the
	// trends. It may include Changes: changes are de-duplicated by ChangeID.
	History  []Change
	Findings []Finding
	Config   Config
	// PeriodStart and PeriodEnd bound the period reported on, [start, end).
	// Zero values default to the run's start and end.
	PeriodStart, PeriodEnd time.Time
	GeneratedAt            time.Time
	// Integrity is what verifying the audit log found (nil: not verified).
	Integrity *Integrity
	// Anonymize maps a person's identity (email, or name when there is no
	// email) to what the report shows; nil shows names as they are. See
	// [Pseudonymizer]. Smartsheet automation is not a person and is never
	// anonymised.
	Anonymize func(string) string
}

// Impact is a count of changes and their money impact. Gross is the sum of
// absolute impacts (money moved in either direction); Net is the signed sum
// (the change to the amount billed). Unvalued changes count with zero impact.
type Impact struct {
	Count int
	Gross decimal.Decimal
	Net   decimal.Decimal
}

func (t *Impact) add(d decimal.Decimal) {
	t.Count++
	t.Gross = t.Gross.Add(d.Abs())
	t.Net = t.Net.Add(d)
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

// RiskTotal is the impact of the changes of one risk level.
type RiskTotal struct {
	Risk Risk
	Impact
}

// KindTotal is the impact of the changes of one kind.
type KindTotal struct {
	Kind Kind
	Impact
}

// StatusTotal is the impact of the changes with one status.
type StatusTotal struct {
	Status Status
	Impact
}

// Totals are the money figures of the period's changes.
type Totals struct {
	All          Impact
	Unauthorized Impact
	NeedsReview  Impact
	// Estimated counts the changes whose impact was derived (quantity ×
	// unit price), with their impact.
	Estimated Impact
	// Unvalued counts the changes whose impact could not be computed.
	Unvalued int
}

// SourceCount is how many changes were attributed by one source.
type SourceCount struct {
	Source AttributionSource
	Count  int
}

// Coverage says how much was read and how well changes were attributed.
type Coverage struct {
	SheetsScanned, SheetsSkipped, RowsScanned int
	Changes                                   int
	// Attributed counts changes with a known author (any source but
	// unknown); AttributedShare is Attributed / Changes (0 when no change).
	Attributed      int
	AttributedShare float64
	// UnknownShare is 1 − AttributedShare (0 when no change).
	UnknownShare float64
	// ExactTime counts changes whose time (not just a window) is known.
	ExactTime int
	BySource  []SourceCount
}

// EndpointCalls is the number of API calls made to one endpoint.
type EndpointCalls struct {
	Endpoint string
	Calls    int
	Share    float64 // of all calls
}

// APIUsage compares the run's API calls with the budgets.
type APIUsage struct {
	Endpoints []EndpointCalls // most called first
	Total     int
	Duration  time.Duration
	// RequestBudgetPerMinute is the configured budget; RequestCapacity is
	// the calls it allows over Duration (0 when either is unknown);
	// RequestUse is Total / RequestCapacity.
	RequestBudgetPerMinute int
	RequestCapacity        int
	RequestUse             float64
	// AvgPerMinute is Total over Duration.
	AvgPerMinute float64
	// The same for cell-history calls, which have their own budget.
	HistoryCalls           int
	HistoryBudgetPerMinute int
	HistoryCapacity        int
	HistoryUse             float64
	Retries                int
	RateLimitWaits         int
	RateLimitWait          time.Duration
}

// FindingGroup counts the findings of one kind and names their sheets.
type FindingGroup struct {
	Kind   FindingKind
	Count  int
	Sheets []string // sorted, without duplicates
}

// RuleID names a recommendation rule.
type RuleID string

// The recommendation rules. Each fires on a figure of the report, which the
// recommendation's Trigger cites.
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
)

// Recommendation is an action with the figure that triggered it.
type Recommendation struct {
	Rule    RuleID
	Action  string
	Trigger string
}

// WeekTrend is one week of the trend. Changes are bucketed by the calendar
// week (Monday to Sunday, audit timezone) in which they were made: the
// attribution time when known, else the time they were detected.
type WeekTrend struct {
	// WeekEnding is the Sunday ending the week, midnight UTC of that date.
	WeekEnding   time.Time
	All          Impact
	Unauthorized Impact
	High         int
	Medium       int
	Low          int
	Unknown      int // risk unknown (unvalued)
}

// Editor is one person's unauthorized changes (edits of closed weeks).
type Editor struct {
	User string // as shown: anonymised when the report is
	Impact
}

// Projection is a least-squares straight line through the weekly
// unauthorized gross impact, extended one week. It is a linear projection of
// the recent trend, not a forecast.
type Projection struct {
	WeekEnding time.Time // the projected week
	// Value is the line's value at WeekEnding, rounded to cents, and never
	// negative (Clamped says it was cut at zero).
	Value   decimal.Decimal
	Clamped bool
	// Slope is the change per week of the fitted line.
	Slope decimal.Decimal
	// FitFrom and FitTo are the first and last weeks the line was fitted
	// over (from the first trend week with a change to the last trend week).
	FitFrom, FitTo time.Time
	Points         int // weeks in the fit
	WeeksWithData  int // trend weeks with at least one change
	Label          string
}

// Report is the content of the audit workbook, every figure computed from
// the input by [BuildReport].
type Report struct {
	RunID       string
	GeneratedAt time.Time
	// PeriodStart and PeriodEnd bound the period, [start, end).
	PeriodStart, PeriodEnd time.Time
	// Location is the audit timezone; Changes' times are shown in it.
	Location   *time.Location
	HighRisk   decimal.Decimal
	MediumRisk decimal.Decimal
	TestMode   bool

	// Status is one of the StatusLine constants; Level its severity;
	// StatusDetail a sentence of figures behind it.
	Status       string
	Level        Level
	StatusDetail string

	Totals   Totals
	ByRisk   []RiskTotal   // HIGH, MEDIUM, LOW, UNKNOWN
	ByKind   []KindTotal   // VALUE_CHANGED, ROW_DELETED, ROW_ADDED_LATE, WEEK_MOVED, then others
	ByStatus []StatusTotal // UNAUTHORIZED, NEEDS_REVIEW, AUTHORIZED, then others

	// Top lists the unauthorized changes to act on first: largest |impact|
	// first, at most [TopItems].
	Top []*Change
	// Changes are the period's changes, de-duplicated, ordered UNAUTHORIZED,
	// NEEDS_REVIEW, AUTHORIZED, then by |impact| (largest first), then by
	// change id. Without anonymisation they point into the input's Changes
	// (no copy for large runs: treat them as read-only); with it, they point
	// to anonymised copies.
	Changes []*Change

	Coverage        Coverage
	API             APIUsage
	Run             RunFacts
	FindingGroups   []FindingGroup
	Findings        []Finding // ordered by kind, sheet, row
	Recommendations []Recommendation

	// Weeks is the trend over the last [TrendWeeks] weeks, oldest first,
	// ending with the week of the period's end; weeks without changes are
	// zeros.
	Weeks      []WeekTrend
	TopEditors []Editor
	// Heatmap counts the period's changes with a known attribution time by
	// weekday (Monday = 0) and hour, in the audit timezone. Untimed counts
	// the changes without one.
	Heatmap [7][24]int
	Untimed int
	// Projection is nil unless at least [MinProjectionWeeks] trend weeks
	// have a change.
	Projection *Projection
	// Integrity is what verifying the audit log found (nil: not verified).
	Integrity *Integrity
}

// Integrity is the audit log's verification and the digest signed after it,
// as the report shows them.
type Integrity struct {
	Verification Verification
	// DigestName and DigestLocation name the digest signed for the run;
	// DigestWithheld says why none was ("" when one was).
	DigestName, DigestLocation, DigestWithheld string
}

// PeriodDates returns the first and last calendar dates of the period in
// the audit timezone, as midnight UTC of those dates.
func (r Report) PeriodDates() (first, last time.Time) {
	loc := r.Location
	if loc == nil {
		loc = time.UTC
	}
	first = civilDate(r.PeriodStart.In(loc))
	end := r.PeriodEnd
	if end.After(r.PeriodStart) {
		end = end.Add(-time.Nanosecond)
	}
	return first, civilDate(end.In(loc))
}

// Who is the display form of an attribution's author: "Name <email>", the
// one that is known, or "" when neither is.
func Who(a Attribution) string {
	switch {
	case a.Name != "" && a.User != "":
		return a.Name + " <" + a.User + ">"
	case a.Name != "":
		return a.Name
	default:
		return a.User
	}
}

// IsAutomation reports whether an attribution names Smartsheet automation.
func IsAutomation(a Attribution) bool {
	return strings.EqualFold(strings.TrimSpace(a.User), AutomationEmail) ||
		(a.User == "" && strings.EqualFold(strings.TrimSpace(a.Name), "Automation"))
}

// Pseudonymizer returns a function mapping an identity to a stable pseudonym
// such as "user-3f9a2c1b": the first 4 bytes of HMAC-SHA256(key, identity),
// with the identity trimmed and lower-cased so an email's case does not
// matter. The same key and identity always give the same pseudonym; without
// the key a pseudonym cannot be tested against a guessed name. "" stays "".
func Pseudonymizer(key []byte) func(string) string {
	k := slices.Clone(key)
	return func(id string) string {
		id = strings.ToLower(strings.TrimSpace(id))
		if id == "" {
			return ""
		}
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		return "user-" + hex.EncodeToString(m.Sum(nil)[:4])
	}
}

// changedAt is when a change was made: the attribution time when known,
// else the detection time (ok=false when both are zero).
func changedAt(c *Change) (time.Time, bool) {
	if c.Attribution.Time != nil {
		return *c.Attribution.Time, true
	}
	return c.DetectedAt, !c.DetectedAt.IsZero()
}

var (
	riskOrder   = []Risk{RiskHigh, RiskMedium, RiskLow, RiskUnknown}
	kindOrder   = []Kind{KindValueChanged, KindRowDeleted, KindRowAddedLate, KindWeekMoved}
	statusOrder = []Status{StatusUnauthorized, StatusNeedsReview, StatusAuthorized}
	sourceOrder = []AttributionSource{SourceWebhook, SourceWriterInfo, SourceCellHistory, SourceUnknown}
)

func rank[T comparable](order []T, v T) int {
	if i := slices.Index(order, v); i >= 0 {
		return i
	}
	return len(order)
}

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

	r.Changes = prepareChanges(in.Changes, in.Anonymize)
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
	r.TopEditors = topEditors(r.Changes)
	for _, c := range r.Changes {
		if c.Attribution.Time == nil {
			r.Untimed++
			continue
		}
		t := c.Attribution.Time.In(loc)
		r.Heatmap[(int(t.Weekday())+6)%7][t.Hour()]++
	}
	r.Recommendations = recommend(&r, in.Changes)
	return r
}

// prepareChanges de-duplicates and orders the changes, and anonymises
// copies of them when asked; otherwise it points into in.
func prepareChanges(in []Change, anon func(string) string) []*Change {
	type key struct {
		rank  int
		cents int64 // |impact| in cents when small is set
		small bool
		abs   decimal.Decimal
		c     *Change
	}
	keys := make([]key, 0, len(in))
	seen := make(map[string]struct{}, len(in))
	var copies []Change
	if anon != nil {
		copies = make([]Change, 0, len(in))
	}
	for i := range in {
		c := &in[i]
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
	if mins := u.Duration.Minutes(); mins > 0 {
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

func sheetLabel(name string, id int64) string {
	if name != "" {
		return name
	}
	return fmt.Sprintf("sheet %d", id)
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

// recommend applies the rules. raw are the changes before anonymisation
// (to recognise automation and count distinct people).
func recommend(r *Report, raw []Change) []Recommendation {
	var recs []Recommendation

	// RECONCILE_INVOICES: HIGH risk, not authorized.
	var highWeeks []time.Time
	var high Impact
	for _, c := range r.Changes {
		if c.Risk != RiskHigh || c.Status == StatusAuthorized {
			continue
		}
		high.add(c.Impact)
		for _, w := range []time.Time{c.WeekEnding, c.MovedTo} {
			if !w.IsZero() && !slices.ContainsFunc(highWeeks, w.Equal) {
				highWeeks = append(highWeeks, w)
			}
		}
	}
	if high.Count > 0 {
		slices.SortFunc(highWeeks, func(a, b time.Time) int { return a.Compare(b) })
		weeks := make([]string, len(highWeeks))
		for i, w := range highWeeks {
			weeks[i] = FormatDate(w)
		}
		action := "Reconcile the invoices of the affected weeks against the sheets"
		if len(weeks) > 0 {
			action = "Reconcile invoices for weeks ending " + strings.Join(weeks, ", ")
		}
		recs = append(recs, Recommendation{Rule: RuleReconcileInvoices, Action: action,
			Trigger: fmt.Sprintf("%s above %s made after their week closed or not judgeable (gross %s, net %s)",
				plural(high.Count, "HIGH-risk change"), MoneyText(r.HighRisk), MoneyText(high.Gross), MoneyText(high.Net))})
	}

	// LOCK_CLOSED_WEEKS: unauthorized changes, by how many people.
	if u := r.Totals.Unauthorized; u.Count > 0 {
		users := make(map[string]struct{})
		for i := range raw {
			if raw[i].Unauthorized() {
				users[strings.ToLower(cmp.Or(raw[i].Attribution.User, raw[i].Attribution.Name))] = struct{}{}
			}
		}
		delete(users, "")
		recs = append(recs, Recommendation{Rule: RuleLockClosedWeeks,
			Action: "Lock rows after week end (Smartsheet row locking or a locked-row automation on the week-ending date)",
			Trigger: fmt.Sprintf("%s to closed weeks by %s (gross %s)",
				plural(u.Count, "unauthorized edit"), plural(len(users), "known editor"), MoneyText(u.Gross))})
	}

	// REVIEW_AUTOMATION: WEEK_MOVED by automation.
	var autoMoves int
	var autoSheets []string
	for i := range raw {
		c := &raw[i]
		if c.Kind == KindWeekMoved && IsAutomation(c.Attribution) {
			autoMoves++
			if s := sheetLabel(c.SheetName, c.SheetID); !slices.Contains(autoSheets, s) {
				autoSheets = append(autoSheets, s)
			}
		}
	}
	if autoMoves > 0 {
		slices.Sort(autoSheets)
		recs = append(recs, Recommendation{Rule: RuleReviewAutomation,
			Action: "Review the automation workflow that stamps Snapshot Date: it moves billed units into other weeks",
			Trigger: fmt.Sprintf("%s by Smartsheet automation on %s",
				plural(autoMoves, "WEEK_MOVED change"), strings.Join(autoSheets, ", "))})
	}

	// RESTORE_COLUMN: one per sheet.
	type sheetKey struct {
		id   int64
		name string
	}
	missing := make(map[sheetKey][]string)
	var sheets []sheetKey
	var rowNoWeek, moneyBad, dateBad int
	var moneyCols, dateCols []string
	for _, f := range r.Findings {
		switch {
		case f.Kind == FindingMissingColumn || (f.Kind == FindingNoWeekEnding && f.RowID == 0):
			k := sheetKey{f.SheetID, sheetLabel(f.SheetName, f.SheetID)}
			if _, ok := missing[k]; !ok {
				sheets = append(sheets, k)
			}
			if !slices.Contains(missing[k], f.Column) {
				missing[k] = append(missing[k], f.Column)
			}
		case f.Kind == FindingNoWeekEnding:
			rowNoWeek++
		case f.Kind == FindingBadMoney || f.Kind == FindingBadQuantity:
			moneyBad++
			if f.Column != "" && !slices.Contains(moneyCols, f.Column) {
				moneyCols = append(moneyCols, f.Column)
			}
		case f.Kind == FindingBadDate || f.Kind == FindingDateFarFuture || f.Kind == FindingDateFarPast || f.Kind == FindingSnapshotFuture:
			dateBad++
			if f.Column != "" && !slices.Contains(dateCols, f.Column) {
				dateCols = append(dateCols, f.Column)
			}
		}
	}
	slices.SortFunc(sheets, func(a, b sheetKey) int { return cmp.Or(cmp.Compare(a.name, b.name), cmp.Compare(a.id, b.id)) })
	for _, s := range sheets {
		cols := missing[s]
		slices.Sort(cols)
		q := make([]string, len(cols))
		for i, c := range cols {
			q[i] = fmt.Sprintf("%q", c)
		}
		word := "column"
		if len(cols) > 1 {
			word = "columns"
		}
		recs = append(recs, Recommendation{Rule: RuleRestoreColumn,
			Action: fmt.Sprintf("Restore %s %s on sheet %q", word, strings.Join(q, ", "), s.name),
			Trigger: fmt.Sprintf("%s on sheet %q: changes to %s cannot be detected or judged",
				plural(len(cols), "missing-column finding"), s.name, strings.Join(q, ", "))})
	}
	if moneyBad > 0 {
		slices.Sort(moneyCols)
		recs = append(recs, Recommendation{Rule: RuleValidateMoney,
			Action:  "Add column validation for money and quantity (restrict " + quoteList(moneyCols, "the money columns") + " to numbers)",
			Trigger: fmt.Sprintf("%s: their changes cannot be valued", plural(moneyBad, "unparseable money or quantity value"))})
	}
	if dateBad > 0 {
		slices.Sort(dateCols)
		recs = append(recs, Recommendation{Rule: RuleValidateDates,
			Action:  "Make " + quoteList(dateCols, "the date columns") + " DATE columns and check implausible dates",
			Trigger: fmt.Sprintf("%s (unparseable, far future or past, or a Snapshot Date in the future)", plural(dateBad, "date finding"))})
	}
	if rowNoWeek > 0 {
		recs = append(recs, Recommendation{Rule: RuleFillWeekEnding,
			Action:  fmt.Sprintf("Fill %q or %q on the rows without a week ending", ColWeekEnding, ColSnapshotDate),
			Trigger: fmt.Sprintf("%s without a week ending: their changes always need review", plural(rowNoWeek, "row"))})
	}

	// ENABLE_WEBHOOKS: share of unknown attributions.
	if cv := r.Coverage; cv.Changes > 0 && cv.UnknownShare > UnknownAttributionThreshold {
		recs = append(recs, Recommendation{Rule: RuleEnableWebhooks,
			Action: "Enable webhooks so each edit's author and time are recorded as it happens",
			Trigger: fmt.Sprintf("%.0f%% of changes (%d of %d) have no known author (threshold %.0f%%)",
				100*cv.UnknownShare, cv.Changes-cv.Attributed, cv.Changes, 100*UnknownAttributionThreshold)})
	}
	// INVESTIGATE_TAMPERING: the audit log differs from its ledger.
	if in := r.Integrity; in != nil && !in.Verification.OK() {
		v := in.Verification
		recs = append([]Recommendation{{Rule: RuleInvestigateTampering,
			Action:  "Investigate the edits to the audit log: run `billing-audit verify` for each problem, then check the audit sheet's activity log for who made them; the ledger keeps the original rows",
			Trigger: v.Summary()}}, recs...)
	}
	return recs
}

func quoteList(items []string, empty string) string {
	if len(items) == 0 {
		return empty
	}
	q := make([]string, len(items))
	for i, s := range items {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	if strings.HasSuffix(noun, "y") && !strings.HasSuffix(noun, "ey") {
		return fmt.Sprintf("%d %sies", n, noun[:len(noun)-1])
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// MoneyText formats an amount for text: "$1,234.50", "-$20.00".
func MoneyText(d decimal.Decimal) string {
	s := d.Abs().StringFixed(2)
	whole, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	if d.IsNegative() && !d.Round(2).IsZero() {
		b.WriteByte('-')
	}
	b.WriteByte('$')
	for i, ch := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(ch)
	}
	b.WriteByte('.')
	b.WriteString(frac)
	return b.String()
}
