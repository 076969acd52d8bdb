package pipeline

import (
	"testing"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// A row's other cells prove writer info only when their print is known and
// unchanged and its week cells are as they were (a Snapshot Date re-stamped
// within its week is a save, though no change), but the cell a week move
// names: the other week cell must be as it was too.
func TestUntrackedSame(t *testing.T) {
	base := &audit.Baseline{Untracked: "p1", Values: map[string]string{audit.ColSnapshotDate: "2024-01-03", audit.ColPrice: "650"}}
	snap := func(print, snapshot string) *audit.RowSnapshot {
		return &audit.RowSnapshot{Untracked: print, Values: map[string]string{audit.ColSnapshotDate: snapshot, audit.ColPrice: "5000"}}
	}
	value := []audit.Change{{Kind: audit.KindValueChanged}}
	moved := []audit.Change{{Kind: audit.KindWeekMoved, ColumnKey: audit.ColSnapshotDate}}
	movedEnding := []audit.Change{{Kind: audit.KindWeekMoved, ColumnKey: audit.ColWeekEnding}}
	tests := []struct {
		name string
		p    *audit.Baseline
		cur  *audit.RowSnapshot
		cs   []audit.Change
		want bool
	}{
		{"unchanged", base, snap("p1", "2024-01-03"), value, true},
		{"another cell saved", base, snap("p2", "2024-01-03"), value, false},
		{"other cells not read", base, snap("", "2024-01-03"), value, false},
		{"no baseline (a new row)", nil, snap("p1", "2024-01-03"), value, false},
		{"Snapshot Date re-stamped within its week", base, snap("p1", "2024-01-04"), value, false},
		{"the week's move itself", base, snap("p1", "2024-01-09"), moved, true},
		{"Snapshot Date re-stamped beside a moved week ending", base, snap("p1", "2024-01-09"), movedEnding, false},
		{"baseline from before prints", &audit.Baseline{Values: base.Values}, snap("p1", "2024-01-03"), value, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := untrackedSame(tt.p, tt.cur, tt.cs); got != tt.want {
				t.Errorf("untrackedSame() = %t, want %t", got, tt.want)
			}
		})
	}
}

// The print leaves out what a save changes by itself: system columns
// (Modified, Modified By) and formula cells; blank cells count as absent.
func TestUntrackedPrint(t *testing.T) {
	m := audit.Mapping{ByID: map[int64]string{1: audit.ColPrice}, Tracked: []string{audit.ColPrice}}
	cols := []smartsheet.Column{{ID: 1}, {ID: 2}, {ID: 3, SystemColumnType: "MODIFIED_DATE"}, {ID: 4}}
	skip := otherCells(cols, false).skip
	cells := func(price, pole, modified, formula string) []smartsheet.Cell {
		return []smartsheet.Cell{
			{ColumnID: 1, Value: smartsheet.StringValue(price)},
			{ColumnID: 2, Value: smartsheet.StringValue(pole)},
			{ColumnID: 3, Value: smartsheet.StringValue(modified)},
			{ColumnID: 4, Value: smartsheet.StringValue(formula), Formula: "=[Price]1*2"},
		}
	}
	was := untrackedPrint(m, cells("650", "P-1", "2024-01-03T10:00:00Z", "1300"), skip)
	tests := []struct {
		name  string
		cells []smartsheet.Cell
		same  bool
	}{
		{"the tracked cell changed", cells("5000", "P-1", "2024-01-03T10:00:00Z", "1300"), true},
		{"saved again: Modified and the formula moved", cells("5000", "P-1", "2024-01-04T09:00:00Z", "10000"), true},
		{"an untracked cell saved", cells("650", "P-2", "2024-01-03T10:00:00Z", "1300"), false},
		{"an untracked cell cleared", cells("650", "", "2024-01-03T10:00:00Z", "1300"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := untrackedPrint(m, tt.cells, skip) == was; got != tt.same {
				t.Errorf("print unchanged = %t, want %t", got, tt.same)
			}
		})
	}
	if otherCells(cols, true) != nil {
		t.Error("otherCells(trimmed) != nil: a read of the mapped columns alone cannot print the others")
	}
}
