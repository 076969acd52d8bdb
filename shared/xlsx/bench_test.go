package xlsx

import (
	"fmt"
	"io"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/shopspring/decimal"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// bigInput is a report input of n changes over 50 sheets and 12 weeks,
// most of them attributed, with a quarter unauthorized.
func bigInput(tb testing.TB, n int) audit.ReportInput {
	tb.Helper()
	in := scenarioInput(tb)
	loc := in.Config.Location
	kinds := []audit.Kind{audit.KindValueChanged, audit.KindValueChanged, audit.KindRowDeleted, audit.KindWeekMoved}
	statuses := []audit.Status{audit.StatusUnauthorized, audit.StatusAuthorized, audit.StatusAuthorized, audit.StatusNeedsReview}
	sources := []audit.AttributionSource{audit.SourceWebhook, audit.SourceWriterInfo, audit.SourceCellHistory, audit.SourceUnknown}
	base := in.PeriodEnd.Add(-time.Hour)
	changes := make([]audit.Change, n)
	for i := range changes {
		imp := decimal.New(int64(i%5000-1000)*37, -2)
		when := base.Add(-time.Duration(i%(84*24)) * time.Hour)
		c := audit.Change{
			ChangeID: fmt.Sprintf("%032x", i), RunID: "bench", Kind: kinds[i%len(kinds)],
			SheetID: int64(i % 50), SheetName: fmt.Sprintf("Crew %02d", i%50), RowID: int64(i), RowNumber: i%2000 + 1,
			Permalink:   fmt.Sprintf("https://app.smartsheet.com/sheets/sheet%02d?rowId=%d", i%50, i),
			WorkRequest: fmt.Sprintf("WR-%06d", i), WeekEnding: audit.WeekEndingOf(when.In(loc)).AddDate(0, 0, -7),
			Column: audit.ColPrice, OldValue: "1200.00", NewValue: imp.Add(decimal.NewFromInt(1200)).StringFixed(2),
			Impact: imp, Estimated: i%7 == 0, Risk: in.Config.RiskFor(imp), Status: statuses[i%len(statuses)],
			Note:        "price changed",
			Attribution: audit.Attribution{User: fmt.Sprintf("user%03d@example.com", i%300), Name: fmt.Sprintf("User %03d", i%300), Source: sources[i%len(sources)]},
			DetectedAt:  when.Add(time.Hour),
		}
		if c.Attribution.Source != audit.SourceUnknown {
			t := when
			c.Attribution.Time = &t
		} else {
			c.Attribution.WindowStart, c.Attribution.WindowEnd = when.Add(-time.Hour), when.Add(time.Hour)
		}
		changes[i] = c
	}
	in.Changes, in.History = changes, changes
	return in
}

// peakHeap samples the live heap (runtime/metrics "/memory/classes/heap/objects:bytes":
// memory occupied by live and not-yet-swept objects) every millisecond until stopped,
// and returns the largest sample. It measures what the Go heap holds, not the RSS.
func peakHeap() (stop func() uint64) {
	const name = "/memory/classes/heap/objects:bytes"
	s := []metrics.Sample{{Name: name}}
	var peak uint64
	read := func() {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak {
			peak = v
		}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			read()
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}

// BenchmarkWrite100k builds the report of 100,000 changes (BuildReport) and
// writes its workbook (Write) to io.Discard. Budget: < 3 s and < 200 MB peak
// heap per operation. The input itself (≈ 60 MB) is live during the
// measurement and counted.
func BenchmarkWrite100k(b *testing.B) {
	const n = 100_000
	in := bigInput(b, n)
	runtime.GC()
	var peak uint64
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		stop := peakHeap()
		r := audit.BuildReport(in)
		if err := Write(io.Discard, r); err != nil {
			b.Fatal(err)
		}
		peak = max(peak, stop())
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "changes/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}
