package audit

// This file holds the unauthorized-edit rule (see [Config.Classify]): when an
// edit to a billed week is unauthorized, and how much money it puts at risk.

import (
	"time"

	"github.com/shopspring/decimal"
)

// Classify judges a change: it sets ch.Status by when the change was made
// and ch.Risk by how much money it moved.
//
// Once a week is billed its rows must not change: an edit made after the
// week closed alters what was billed, after the fact. That is what the audit
// exists to catch.
//
//   - A week closes at its cutoff ([Config.Cutoff]): the end of its
//     week-ending day in the audit timezone, plus [Config.Grace]. The grace
//     period leaves room for the late entries the business accepts (say,
//     crews logging on Monday morning), so they are not flagged; it is zero
//     by default.
//   - The change time is ch.Attribution.Time when known: at or after the
//     cutoff the change is UNAUTHORIZED, before it AUTHORIZED.
//   - Otherwise only a window is known: the attribution window, else the
//     scan window w. A window wholly before the cutoff is AUTHORIZED, wholly
//     at or after it UNAUTHORIZED; one straddling it (a window with no
//     start, when there was no earlier scan, reaches back indefinitely) or
//     with no end is NEEDS_REVIEW, as is a change whose week ending is unknown: the
//     audit never claims more than it knows.
//   - A WEEK_MOVED change is judged against the earlier of its two weeks:
//     moving units out of or into a closed week changes that week's bill.
//   - Risk grades the money at stake, whatever the verdict, by the size of
//     the impact ([Config.RiskFor]). A change whose impact could not be
//     computed is UNKNOWN, not LOW, so an unparseable value never reads as
//     "no money moved".
func (c Config) Classify(ch *Change, w ScanWindow) {
	if ch.Unvalued {
		ch.Risk = RiskUnknown
	} else {
		ch.Risk = c.RiskFor(ch.Impact)
	}
	week := ch.WeekEnding
	if ch.Kind == KindWeekMoved && !ch.MovedTo.IsZero() && (week.IsZero() || ch.MovedTo.Before(week)) {
		week = ch.MovedTo
	}
	if week.IsZero() {
		ch.Status = StatusNeedsReview
		return
	}
	cut := c.Cutoff(week)
	if t := ch.Attribution.Time; t != nil {
		if t.Before(cut) {
			ch.Status = StatusAuthorized
		} else {
			ch.Status = StatusUnauthorized
		}
		return
	}
	start, end := ch.Attribution.WindowStart, ch.Attribution.WindowEnd
	if end.IsZero() {
		start, end = w.Previous, w.Current
	}
	switch {
	case end.IsZero():
		ch.Status = StatusNeedsReview
	case end.Before(cut):
		ch.Status = StatusAuthorized
	case !start.IsZero() && !start.Before(cut):
		ch.Status = StatusUnauthorized
	default:
		ch.Status = StatusNeedsReview
	}
}

// Cutoff is the instant from which an edit to a row of the given week ending
// is unauthorized: the end of that day in the audit timezone, plus Grace.
func (c Config) Cutoff(weekEnding time.Time) time.Time {
	y, m, d := weekEnding.Date()
	return time.Date(y, m, d+1, 0, 0, 0, 0, c.location()).Add(c.Grace).UTC()
}

// RiskFor grades an impact by its absolute value: HIGH above HighRisk, MEDIUM
// above MediumRisk, else LOW. The thresholds themselves fall in the lower band.
func (c Config) RiskFor(impact decimal.Decimal) Risk {
	a := impact.Abs()
	switch {
	case a.GreaterThan(c.HighRisk):
		return RiskHigh
	case a.GreaterThan(c.MediumRisk):
		return RiskMedium
	default:
		return RiskLow
	}
}

// Classify is [Config.Classify] with the detector's configuration.
func (d *Detector) Classify(c *Change, w ScanWindow) { d.cfg.Classify(c, w) }
