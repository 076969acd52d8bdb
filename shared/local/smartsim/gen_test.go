package smartsim

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

func TestGenerateBilling(t *testing.T) {
	end := time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	sheets := GenerateBilling(GenConfig{Sheets: 3, Rows: 2000, Weeks: 6, Seed: 1, EndWeek: end})
	if d := time.Since(start); d > time.Second {
		t.Errorf("generation took %v, want well under a second", d)
	}
	again := GenerateBilling(GenConfig{Sheets: 3, Rows: 2000, Weeks: 6, Seed: 1, EndWeek: end})
	if fmt.Sprint(sheets[2].Rows[1999].Cells) != fmt.Sprint(again[2].Rows[1999].Cells) {
		t.Error("generation is not deterministic")
	}
	unit := map[string]int64{}
	for _, c := range cuCatalog {
		unit[c.code] = c.cents
	}
	weeks := map[string]bool{}
	for _, sh := range sheets {
		if len(sh.Rows) != 2000 || len(sh.Columns) != 10 || !sh.Columns[0].Primary || sh.Columns[0].Title != ColWorkRequest {
			t.Fatalf("sheet %q: %d rows, %d columns", sh.Name, len(sh.Rows), len(sh.Columns))
		}
		col := map[string]int64{}
		for _, c := range sh.Columns {
			col[c.Title] = c.ID
		}
		for i, r := range sh.Rows {
			get := func(title string) smartsheet.Value { return r.Cell(col[title]).Value }
			wr := get(ColWorkRequest).Text()
			if len(wr) != 8 || get(ColWorkRequest).Kind() != smartsheet.KindNumber {
				t.Fatalf("row %d WR = %q", i, wr)
			}
			week, _ := time.Parse(time.DateOnly, get(ColWeekEnding).Text())
			snap, _ := time.Parse(time.DateOnly, get(ColSnapshotDate).Text())
			if week.Weekday() != time.Sunday || snap.After(week) || week.Sub(snap) >= 7*24*time.Hour || week.After(end) {
				t.Fatalf("row %d week %v snapshot %v", i, week, snap)
			}
			weeks[get(ColWeekEnding).Text()] = true
			qty, _ := strconv.Atoi(get(ColQuantity).Text())
			if qty < 1 || qty > 20 {
				t.Fatalf("row %d qty %d", i, qty)
			}
			total := get(ColTotalPrice)
			want := decimal.New(unit[get(ColCU).Text()]*int64(qty), -2)
			got, err := decimal.NewFromString(total.Text())
			if err != nil || !got.Equal(want) || total.Kind() != smartsheet.KindNumber || !strings.Contains(total.Text(), ".") {
				t.Fatalf("row %d total %s, want %s", i, total.Text(), want.StringFixed(2))
			}
			if _, ok := get(ColCompleted).Bool(); !ok {
				t.Fatalf("row %d completed not a bool", i)
			}
			if r.CreatedBy == nil || r.CreatedAt == nil {
				t.Fatalf("row %d has no author", i)
			}
		}
	}
	if len(weeks) != 6 {
		t.Errorf("weeks = %d, want 6", len(weeks))
	}
}

func TestPopulateIsFast(t *testing.T) {
	s := NewServer(Options{})
	start := time.Now()
	g, err := s.Populate(GenConfig{Sheets: 3, Rows: 2000, Weeks: 6})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Populate 3×2000 took %v", d)
	}
	sh, _ := s.Sheet(g.SheetIDs[0])
	if sh.TotalRowCount != 2000 {
		t.Errorf("rows = %d", sh.TotalRowCount)
	}
	// Every generated cell passed strict validation and has a first history entry.
	h, err := s.CellHistory(sh.ID, sh.Rows[0].ID, sh.Column(ColSnapshotDate).ID)
	if err != nil || len(h) != 1 || h[0].ModifiedBy.Email != sh.Rows[0].CreatedBy.Email {
		t.Errorf("history = %+v, %v", h, err)
	}
}

func BenchmarkPopulate(b *testing.B) {
	for b.Loop() {
		s := NewServer(Options{})
		if _, err := s.Populate(GenConfig{Sheets: 3, Rows: 2000, Weeks: 6}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(6000*b.N)/b.Elapsed().Seconds(), "rows/s")
}
