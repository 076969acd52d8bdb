package dynamo_test

import (
	"context"
	"io"
	"log/slog"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// pageSizes are the sheet page sizes measured: Smartsheet's default (100) up
// to a whole 3,000-row sheet in one page (the spec sets no maximum for
// sheets; a sheet holds at most 20,000 rows).
var pageSizes = []int{100, 250, 500, 1000, 3000}

// BenchmarkFirstScanPageSize is what the page size costs the sheet worker:
// the first scan of one 3,000-row sheet (every page read, every baseline
// written) in process, wired as the Lambda is (the real client drawing on
// the shared rate budget in the table, the store on each emulator), against
// the simulator at Smartsheet-like latency (400 ms + 1 ms a row, the
// assumption of `make scale`). It reports the sheet's wall time (sheet-s),
// its Smartsheet calls (calls/sheet), the slowest page from request to
// stored baselines, the last one with the sheet's finish (page-s: what a worker's time slice must hold, and the
// work repeated after a crash) and the heap's peak above the start
// (peak-heap-MB). BENCHMARKS.md records the figures and the choice.
func BenchmarkFirstScanPageSize(b *testing.B) {
	for _, e := range emulators {
		b.Run(e.name, func(b *testing.B) {
			e.ready(b)
			api := client(e.endpoint, e.noCRC)
			for _, size := range pageSizes {
				b.Run("page="+strconv.Itoa(size), func(b *testing.B) { benchFirstScan(b, api, size) })
			}
		})
	}
}

func benchFirstScan(b *testing.B, api *dynamodb.Client, pageSize int) {
	ctx := context.Background()
	var sheetTime, slowest time.Duration
	var calls int64
	var peak uint64
	for range b.N {
		b.StopTimer()
		table := mustTable(b, api)
		store := dynamo.New(api, table, dynamo.Options{Retention: dynamo.DefaultRetention})
		srv := smartsimtest.Start(b, smartsim.Options{})
		gen, err := srv.Populate(smartsim.GenConfig{Sheets: 1, Rows: 3000, Weeks: 12, Seed: 7})
		if err != nil {
			b.Fatal(err)
		}
		ss, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "bench", RetryBudget: time.Minute,
			Limiter: dynamo.NewRateBudget(api, table, "bench", dynamo.BudgetOptions{})})
		if err != nil {
			b.Fatal(err)
		}
		auditID, _, err := pipeline.EnsureAuditSheet(ctx, ss, store, 0, "Billing Audit Log")
		if err != nil {
			b.Fatal(err)
		}
		var pageStart time.Time
		var pageMu sync.Mutex
		r, err := pipeline.New(ss, store, pipeline.Options{
			Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{gen.FolderID}, AuditSheetID: auditID, PageSize: pageSize,
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Stats: ss.Stats,
			SheetSlice: time.Hour, // the whole sheet in one call: the time slice is not what is measured
			AfterPage: func(int64, int) error {
				pageMu.Lock()
				defer pageMu.Unlock()
				slowest = max(slowest, time.Since(pageStart))
				pageStart = time.Now()
				return nil
			},
		})
		if err != nil {
			b.Fatal(err)
		}
		q := &queue{}
		if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, store, noPublisher{}); err != nil {
			b.Fatal(err)
		}
		if len(q.sheets) != 1 {
			b.Fatalf("scan queued %d sheets, want 1", len(q.sheets))
		}
		srv.SetLatency(smartsim.Latency{Base: 400 * time.Millisecond, PerRow: time.Millisecond})
		before := srv.Counter(smartsim.EndpointGetSheet).Calls
		runtime.GC()
		var base runtime.MemStats
		runtime.ReadMemStats(&base)
		stop := samplePeakHeap(&peak, base.HeapAlloc)
		w := q.sheets[0]
		w.Attempt = 1
		b.StartTimer()
		start := time.Now()
		pageMu.Lock()
		pageStart = start
		pageMu.Unlock()
		res, err := r.ProcessSheet(ctx, w, &queue{}, store, noPublisher{})
		sheetTime += time.Since(start)
		b.StopTimer()
		pageMu.Lock()
		slowest = max(slowest, time.Since(pageStart)) // the last page, with the sheet's finish
		pageMu.Unlock()
		stop()
		if err != nil {
			b.Fatal(err)
		}
		if res.Rows != 3000 || res.FinishedAt.IsZero() {
			b.Fatalf("ProcessSheet() = %d rows, finished %t; want 3000, finished", res.Rows, !res.FinishedAt.IsZero())
		}
		calls += srv.Counter(smartsim.EndpointGetSheet).Calls - before
	}
	n := float64(b.N)
	b.ReportMetric(sheetTime.Seconds()/n, "sheet-s")
	b.ReportMetric(float64(calls)/n, "calls/sheet")
	b.ReportMetric(slowest.Seconds(), "page-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(0, "ns/op")
}

// samplePeakHeap records in peak the highest heap in use above base, sampled
// every 20 ms until the returned stop is called.
func samplePeakHeap(peak *uint64, base uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base {
				*peak = max(*peak, m.HeapAlloc-base)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
