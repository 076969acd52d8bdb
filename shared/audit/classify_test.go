package audit

import (
	"testing"
	"time"

	"github.com/shopspring/decimal"
)

func TestRiskFor(t *testing.T) {
	tests := []struct {
		name   string
		impact string
		want   Risk
	}{
		{name: "2000", impact: "2000", want: RiskHigh},
		{name: "500", impact: "500", want: RiskMedium},
		{name: "50", impact: "50", want: RiskLow},
		{name: "-1500", impact: "-1500", want: RiskHigh},
		{name: "1000 boundary", impact: "1000", want: RiskMedium},
		{name: "100 boundary", impact: "100", want: RiskLow},
		{name: "just above 1000", impact: "1000.01", want: RiskHigh},
		{name: "-100.01", impact: "-100.01", want: RiskMedium},
		{name: "zero", impact: "0", want: RiskLow},
	}
	cfg := DefaultConfig()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cfg.RiskFor(decimal.RequireFromString(tt.impact)); got != tt.want {
				t.Errorf("RiskFor(%s) = %s, want %s", tt.impact, got, tt.want)
			}
		})
	}
}

func TestClassify(t *testing.T) {
	week := date(2024, 1, 7)
	utc := func(d, h int) time.Time { return time.Date(2024, 1, d, h, 0, 0, 0, time.UTC) }
	tests := []struct {
		name   string
		grace  time.Duration
		change Change
		w      ScanWindow
		want   Status
	}{
		{name: "window wholly before the cutoff", change: Change{WeekEnding: week}, w: ScanWindow{Previous: utc(6, 0), Current: utc(7, 23)}, want: StatusAuthorized},
		{name: "window straddling the cutoff", change: Change{WeekEnding: week}, w: ScanWindow{Previous: utc(7, 12), Current: utc(8, 12)}, want: StatusNeedsReview},
		{name: "window wholly after the cutoff", change: Change{WeekEnding: week}, w: ScanWindow{Previous: utc(8, 0), Current: utc(8, 12)}, want: StatusUnauthorized},
		{name: "no previous scan, current after", change: Change{WeekEnding: week}, w: ScanWindow{Current: utc(9, 0)}, want: StatusNeedsReview},
		{name: "no previous scan, current before", change: Change{WeekEnding: week}, w: ScanWindow{Current: utc(7, 1)}, want: StatusAuthorized},
		{name: "attribution window beats the scan window", change: Change{WeekEnding: week, Attribution: Attribution{WindowStart: utc(8, 1), WindowEnd: utc(8, 2)}}, w: ScanWindow{Previous: utc(7, 12), Current: utc(8, 12)}, want: StatusUnauthorized},
		{name: "exact time beats any window", change: Change{WeekEnding: week, Attribution: Attribution{Time: ptr(utc(7, 22))}}, w: ScanWindow{Previous: utc(8, 0), Current: utc(8, 12)}, want: StatusAuthorized},
		{name: "within grace", grace: 2 * time.Hour, change: Change{WeekEnding: week, Attribution: Attribution{Time: ptr(utc(8, 1))}}, want: StatusAuthorized},
		{name: "after grace", grace: 2 * time.Hour, change: Change{WeekEnding: week, Attribution: Attribution{Time: ptr(utc(8, 2))}}, want: StatusUnauthorized},
		{name: "unknown week ending", change: Change{Attribution: Attribution{Time: ptr(utc(8, 2))}}, want: StatusNeedsReview},
		{name: "week moved back into a closed week", change: Change{Kind: KindWeekMoved, WeekEnding: date(2024, 1, 14), MovedTo: week, Attribution: Attribution{Time: ptr(utc(9, 0))}}, want: StatusUnauthorized},
		{name: "week moved forward within the open week", change: Change{Kind: KindWeekMoved, WeekEnding: date(2024, 1, 14), MovedTo: date(2024, 1, 21), Attribution: Attribution{Time: ptr(utc(9, 0))}}, want: StatusAuthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Grace = tt.grace
			c := tt.change
			cfg.Classify(&c, tt.w)
			if c.Status != tt.want {
				t.Errorf("Classify(%+v, %+v) status = %s, want %s", tt.change, tt.w, c.Status, tt.want)
			}
		})
	}
}
