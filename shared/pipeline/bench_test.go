package pipeline_test

import (
	"bufio"
	"context"
	"log/slog"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// peakHeap samples the live heap every millisecond until stop is called and
// returns the highest value seen, in bytes.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var ms runtime.MemStats
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > peak.Load() {
				peak.Store(ms.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

// externalSim builds and starts cmd/smartsim in its own process, so that
// the benchmark's memory figures are the scan's alone, and returns its URL.
func externalSim(b *testing.B, sheets, rows int) string {
	b.Helper()
	bin := filepath.Join(b.TempDir(), "smartsim")
	build := exec.Command("go", "build", "-o", bin, "github.com/fieldaudit/billing-audit/cmd/smartsim")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build smartsim: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-no-rate-limit", "-weeks", "8",
		"-sheets", strconv.Itoa(sheets), "-rows", strconv.Itoa(rows))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("smartsim did not start: %v", err)
	}
	return strings.TrimSpace(line)
}

// BenchmarkFullScan is the first (baseline) scan of 20 sheets × 5,000 rows
// served by the simulator (its own process) over loopback HTTP: listing,
// paging, decoding, detection and the store's commits of 100,000 baselines.
// peak-heap-MB is this process's highest HeapInuse during the scan (sampled
// every millisecond), which includes garbage not yet collected.
func BenchmarkFullScan(b *testing.B) {
	const sheets, rows = 20, 5000
	base := externalSim(b, sheets, rows)
	client, err := smartsheet.New(smartsheet.Config{BaseURL: base, Token: "bench", RequestsPerMinute: 1_000_000, HistoryPerMinute: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	list, err := client.ListSheets(context.Background(), smartsheet.ListSheetsOptions{})
	if err != nil || len(list) != sheets {
		b.Fatalf("list sheets: %d, %v", len(list), err)
	}
	var ids []int64
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		store, err := bolt.Open(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		auditID, _, err := pipeline.EnsureAuditSheet(context.Background(), client, store, 0, "Billing Audit Log")
		if err != nil {
			b.Fatal(err)
		}
		r, err := pipeline.New(client, store, pipeline.Options{
			Audit: audit.DefaultConfig(), SourceSheetIDs: ids, AuditSheetID: auditID,
			Logger: slog.New(slog.DiscardHandler),
		})
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		stop := peakHeap()
		b.StartTimer()
		sum, err := r.Run(context.Background())
		b.StopTimer()
		if p := stop(); p > peak {
			peak = p
		}
		if err != nil {
			b.Fatal(err)
		}
		if sum.Run.RowsScanned != sheets*rows {
			b.Fatalf("scanned %d rows, want %d", sum.Run.RowsScanned, sheets*rows)
		}
		store.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(sheets*rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
}

// BenchmarkIncrementalScan is the scheduled scan after a baseline: 20 sheets ×
// 5,000 rows, nothing changed. It costs one small call per sheet.
func BenchmarkIncrementalScan(b *testing.B) {
	const sheets, rows = 20, 5000
	srv := smartsimtest.Start(b, smartsim.Options{Limits: smartsim.Limits{Disabled: true}})
	gen, err := srv.Populate(smartsim.GenConfig{Sheets: sheets, Rows: rows, Weeks: 8})
	if err != nil {
		b.Fatal(err)
	}
	client, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "bench", RequestsPerMinute: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	store, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	auditID, _, err := pipeline.EnsureAuditSheet(context.Background(), client, store, 0, "Billing Audit Log")
	if err != nil {
		b.Fatal(err)
	}
	r, err := pipeline.New(client, store, pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{gen.FolderID}, AuditSheetID: auditID,
		Logger: slog.New(slog.DiscardHandler), Clock: srv.Now,
	})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := r.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	srv.ResetCounters()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv.AdvanceClock(4 * time.Hour)
		if _, err := r.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(srv.Counter(smartsim.EndpointGetSheet).Calls)/float64(b.N), "sheet-GETs/scan")
}
