package audit

import (
	"strconv"
	"testing"
	"time"
)

// BenchmarkCompare compares 100,000 rows × 10 tracked columns with their
// baselines; one row in 1,000 has a changed cell.
func BenchmarkCompare(b *testing.B) {
	const rows = 100_000
	cfg := DefaultConfig()
	cfg.TrackColumns = []string{"Foreman", "Work Type", "Pole #", "Notes", "Crew"}
	cols := append(append([]ColumnInfo(nil), standardColumns...), ColumnInfo{ID: 111, Title: "Notes"}, ColumnInfo{ID: 112, Title: "Crew"})
	m, findings := cfg.MapColumns(testSheetID, "Crew A", cols)
	if len(findings) != 0 || len(m.Tracked) != 10 {
		b.Fatalf("MapColumns = %d tracked, findings %v, want 10 and none", len(m.Tracked), findings)
	}
	d := NewDetector(cfg, m, "bench")
	seen := time.Date(2024, 1, 5, 0, 0, 0, 0, time.UTC)
	w := ScanWindow{Previous: seen, Current: seen.Add(24 * time.Hour)}
	prevs := make([]Baseline, rows)
	curs := make([]RowSnapshot, rows)
	for i := range rows {
		vals := row(ColPrice, strconv.Itoa(100+i%900)+".50", ColQuantity, strconv.Itoa(1+i%20), ColPole, "P-"+strconv.Itoa(i), "Notes", "ok", "Crew", "North")
		s := RowSnapshot{SheetID: testSheetID, RowID: int64(i + 1), RowNumber: i + 1, Values: vals}
		prevs[i] = d.NewBaseline(s, seen)
		cur := row(ColPrice, vals[ColPrice], ColQuantity, vals[ColQuantity], ColPole, vals[ColPole], "Notes", "ok", "Crew", "North")
		if i%1000 == 0 {
			cur[ColPrice] = "$9,999.00"
		}
		s.Values = cur
		curs[i] = s
	}
	b.ReportAllocs()
	b.ResetTimer()
	changes := 0
	for b.Loop() {
		for i := range rows {
			c, _ := d.Compare(&prevs[i], &curs[i], false, w)
			changes += len(c)
		}
	}
	b.StopTimer()
	if changes == 0 {
		b.Fatal("no change detected")
	}
	cells := float64(rows*len(m.Tracked)) * float64(b.N)
	b.ReportMetric(cells/b.Elapsed().Seconds(), "cells/s")
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
