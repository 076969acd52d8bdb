package audit

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// A run's budget figures are over a minute at least: a 10-second run of 80
// calls did not run at 480 a minute nor use 160 % of a 300/minute budget.
func TestAPIUsageRates(t *testing.T) {
	start := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
	type figures struct {
		Avg                  float64
		Capacity, HistoryCap int
		Use, HistoryUse      float64
	}
	tests := []struct {
		name string
		took time.Duration
		want figures
	}{
		{"10 seconds", 10 * time.Second, figures{Avg: 80, Capacity: 300, HistoryCap: 30, Use: 80.0 / 300, HistoryUse: 2.0 / 30}},
		{"one minute", time.Minute, figures{Avg: 80, Capacity: 300, HistoryCap: 30, Use: 80.0 / 300, HistoryUse: 2.0 / 30}},
		{"four minutes", 4 * time.Minute, figures{Avg: 20, Capacity: 1200, HistoryCap: 120, Use: 80.0 / 1200, HistoryUse: 2.0 / 120}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			u := apiUsage(RunFacts{StartedAt: start, FinishedAt: start.Add(tt.took), APICalls: map[string]int{"GET /sheets/{sheetId}": 78, "GET history": 2},
				CellHistoryCalls: 2, RequestBudgetPerMinute: 300, HistoryBudgetPerMinute: 30})
			got := figures{Avg: u.AvgPerMinute, Capacity: u.RequestCapacity, HistoryCap: u.HistoryCapacity, Use: u.RequestUse, HistoryUse: u.HistoryUse}
			if diff := cmp.Diff(tt.want, got, cmpopts.EquateApprox(0, 1e-9)); diff != "" {
				t.Errorf("apiUsage over %s (-want +got):\n%s", tt.took, diff)
			}
		})
	}
}
