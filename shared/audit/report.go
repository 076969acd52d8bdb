package audit

import (
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
	// the calls it allows over Duration, a minute at least (the budget
	// holds over any sliding minute; 0 when either is unknown); RequestUse
	// is Total / RequestCapacity.
	RequestBudgetPerMinute int
	RequestCapacity        int
	RequestUse             float64
	// AvgPerMinute is Total over Duration, a minute at least.
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
	// TopEditors and Heatmap cover the trend's weeks (the history's changes
	// and the period's), as patterns need weeks to show. Heatmap counts the
	// changes with a known attribution time by weekday (Monday = 0) and
	// hour, in the audit timezone. Untimed counts the changes without one.
	Heatmap [7][24]int
	Untimed int
	// Projection is nil unless at least [MinProjectionWeeks] trend weeks
	// have a change.
	Projection *Projection
	// Integrity is what verifying the audit log found (nil: not verified).
	Integrity *Integrity
	// Exceptions are the unauthorized changes of the history with their
	// reviews: gross, net and still-open money, the open ones by age,
	// disposition and reviewer.
	Exceptions Exceptions
}

// Integrity is the audit log's verification and the digest signed after it,
// as the report shows them.
type Integrity struct {
	Verification Verification
	// DigestName and DigestLocation name the digest signed for the run;
	// DigestWithheld says why none was ("" when one was).
	DigestName, DigestLocation, DigestWithheld string
}

// PeriodText names the period as a reader of the billing thinks of it: the
// billing weeks its changes hit, then when they were found ("week ending
// 2026-11-29 (changes detected 2026-11-30 to 2026-12-06)"); only the
// detection dates when no change names a week.
func (r Report) PeriodText() string {
	first, last := r.PeriodDates()
	detected := "changes detected " + FormatDate(first) + " to " + FormatDate(last)
	if weeks := WeeksText(r.WeeksHit()); weeks != "" {
		return weeks + " (" + detected + ")"
	}
	return detected
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
