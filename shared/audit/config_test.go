package audit

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestMapColumns(t *testing.T) {
	tests := []struct {
		name         string
		track        []string
		cols         []ColumnInfo
		wantByKey    map[string]int64 // key → column id
		wantTracked  []string
		wantFindings []FindingKind
		wantNeeded   []int64
	}{
		{
			name: "canonical titles",
			cols: []ColumnInfo{
				{ID: 1, Title: "Work Request #"}, {ID: 2, Title: "Weekly Reference Logged Date", Type: "DATE"},
				{ID: 3, Title: "Snapshot Date", Type: "DATE"}, {ID: 4, Title: "Units Completed?", Type: "CHECKBOX"},
				{ID: 5, Title: "Quantity"}, {ID: 6, Title: "Units Total Price"}, {ID: 7, Title: "Foreman"},
				{ID: 8, Title: "CU"}, {ID: 9, Title: "Work Type"}, {ID: 10, Title: "Pole #"}, {ID: 11, Title: "Notes"},
			},
			wantByKey: map[string]int64{
				ColWorkRequest: 1, ColWeekEnding: 2, ColSnapshotDate: 3, ColCompleted: 4, ColQuantity: 5,
				ColPrice: 6, ColForeman: 7, ColCU: 8, ColWorkType: 9, ColPole: 10,
			},
			wantTracked: []string{ColPrice, ColQuantity, ColCompleted, ColWorkRequest, ColCU},
			wantNeeded:  []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
		},
		{
			name: "synonyms, case and spaces",
			cols: []ColumnInfo{
				{ID: 1, Title: "work request#"}, {ID: 3, Title: " SNAPSHOT  DATE "}, {ID: 4, Title: "Units Completed?"},
				{ID: 5, Title: "# Units"}, {ID: 6, Title: "Redlined Total Price"}, {ID: 8, Title: "Billable Unit Code"},
			},
			wantByKey:    map[string]int64{ColWorkRequest: 1, ColSnapshotDate: 3, ColCompleted: 4, ColQuantity: 5, ColPrice: 6, ColCU: 8},
			wantTracked:  []string{ColPrice, ColQuantity, ColCompleted, ColWorkRequest, ColCU},
			wantNeeded:   []int64{1, 3, 4, 5, 6, 8},
			wantFindings: nil,
		},
		{
			name: "canonical title beats synonyms wherever it is",
			cols: []ColumnInfo{
				{ID: 20, Title: "Total Price"}, {ID: 21, Title: "Redlined Total Price"}, {ID: 22, Title: "Units Total Price"},
				{ID: 5, Title: "Qty"}, {ID: 2, Title: "Weekly Reference Logged Date"},
			},
			wantByKey:    map[string]int64{ColPrice: 22, ColQuantity: 5, ColWeekEnding: 2},
			wantTracked:  []string{ColPrice, ColQuantity},
			wantNeeded:   []int64{2, 5, 22},
			wantFindings: []FindingKind{FindingMissingColumn, FindingMissingColumn, FindingMissingColumn},
		},
		{
			name:  "TRACK_COLUMNS adds canonical and extra columns",
			track: []string{"pole #", "Crew Notes", "Missing One", " "},
			cols: []ColumnInfo{
				{ID: 1, Title: "Work Request #"}, {ID: 3, Title: "Snapshot Date"}, {ID: 4, Title: "Units Completed?"},
				{ID: 5, Title: "Quantity"}, {ID: 6, Title: "Units Total Price"}, {ID: 8, Title: "CU"},
				{ID: 10, Title: "Pole #"}, {ID: 12, Title: "crew notes"},
			},
			wantByKey: map[string]int64{
				ColWorkRequest: 1, ColSnapshotDate: 3, ColCompleted: 4, ColQuantity: 5, ColPrice: 6, ColCU: 8,
				ColPole: 10, "Crew Notes": 12,
			},
			wantTracked:  []string{ColPrice, ColQuantity, ColCompleted, ColWorkRequest, ColCU, ColPole, "Crew Notes"},
			wantNeeded:   []int64{1, 3, 4, 5, 6, 8, 10, 12},
			wantFindings: []FindingKind{FindingMissingColumn},
		},
		{
			name:         "no way to get a week ending",
			cols:         []ColumnInfo{{ID: 5, Title: "Quantity"}, {ID: 6, Title: "Units Total Price"}, {ID: 1, Title: "Work Request #"}, {ID: 4, Title: "Units Completed?"}, {ID: 8, Title: "CU"}},
			wantByKey:    map[string]int64{ColQuantity: 5, ColPrice: 6, ColWorkRequest: 1, ColCompleted: 4, ColCU: 8},
			wantTracked:  []string{ColPrice, ColQuantity, ColCompleted, ColWorkRequest, ColCU},
			wantNeeded:   []int64{1, 4, 5, 6, 8},
			wantFindings: []FindingKind{FindingNoWeekEnding},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.TrackColumns = tt.track
			m, findings := cfg.MapColumns(7, "Crew A", tt.cols)
			gotByKey := make(map[string]int64)
			for k, c := range m.ByKey {
				gotByKey[k] = c.ID
				if m.ByID[c.ID] != k {
					t.Errorf("ByID[%d] = %q, want %q", c.ID, m.ByID[c.ID], k)
				}
			}
			if diff := cmp.Diff(tt.wantByKey, gotByKey); diff != "" {
				t.Errorf("MapColumns ByKey (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantTracked, m.Tracked, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("MapColumns Tracked (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantNeeded, m.NeededColumnIDs()); diff != "" {
				t.Errorf("NeededColumnIDs (-want +got):\n%s", diff)
			}
			var kinds []FindingKind
			for _, f := range findings {
				kinds = append(kinds, f.Kind)
				if f.SheetID != 7 || f.SheetName != "Crew A" || f.Message == "" || f.Column == "" {
					t.Errorf("finding %+v lacks sheet, column or message", f)
				}
			}
			if diff := cmp.Diff(tt.wantFindings, kinds, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("MapColumns findings (-want +got):\n%s", diff)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr bool
	}{
		{name: "default", mutate: func(*Config) {}},
		{name: "nil location", mutate: func(c *Config) { c.Location = nil }, wantErr: true},
		{name: "negative grace", mutate: func(c *Config) { c.Grace = -1 }, wantErr: true},
		{name: "medium above high", mutate: func(c *Config) { c.MediumRisk, c.HighRisk = c.HighRisk, c.MediumRisk }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := DefaultConfig()
			tt.mutate(&c)
			if err := c.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error %v", err, tt.wantErr)
			}
		})
	}
}
