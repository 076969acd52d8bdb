package pipeline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/shopspring/decimal"
)

// syntheticChanges are n recorded changes, every field of an audit row
// filled, detected one every five minutes up to at (100,000 changes: a
// year of a busy fleet).
func syntheticChanges(n int, at time.Time) []audit.Change {
	out := make([]audit.Change, n)
	for i := range out {
		delta := decimal.New(int64(100+i%900), 0)
		detected := at.Add(-time.Duration(n-i) * 5 * time.Minute)
		t := detected.Add(-time.Duration(i%3600) * time.Second)
		out[i] = audit.Change{
			ChangeID: fmt.Sprintf("%032x", i+1), RunID: "20261125T150000Z-bench0", Kind: audit.KindValueChanged,
			SheetID: int64(1 + i%68), SheetName: fmt.Sprintf("Billing Log - Crew %02d", i%68), RowID: int64(1_000_000 + i),
			RowNumber: 1 + i%3000, Permalink: fmt.Sprintf("https://app.smartsheet.com/b/home?lx=r%d", 1_000_000+i),
			WorkRequest: fmt.Sprint(90_000_000 + i), WeekEnding: time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC),
			Column: "Units Total Price", ColumnKey: audit.ColPrice, OldValue: "1200.00", NewValue: delta.Add(decimal.New(1200, 0)).StringFixed(2),
			Delta: &delta, Impact: delta, Risk: audit.RiskMedium, Status: audit.StatusUnauthorized, DetectedAt: detected,
			Attribution: audit.Attribution{User: "kim.lee@fieldops.example.com", Name: "Kim Lee", Time: &t, Source: audit.SourceWebhook},
		}
	}
	return out
}

// BenchmarkVerify100k is `billing-audit verify` of an audit log of 100,000
// changes (a year of them): the ledger's 100,000 entries re-hashed and chained, and the
// 100,000-row audit sheet read from the simulator (its own process, over
// loopback HTTP) 5,000 rows a page and compared row by row with the ledger.
// The setup records the changes and publishes them (seal + write) through
// the real pipeline; its figures are reported too: seal-us/change is what
// the ledger adds to recording a change (the append and its note on the
// change record, in the embedded store).
func BenchmarkVerify100k(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	base := externalSim(b, 1, 10)
	client, err := smartsheet.New(smartsheet.Config{BaseURL: base, Token: "bench", RequestsPerMinute: 1_000_000, HistoryPerMinute: 1_000_000})
	if err != nil {
		b.Fatal(err)
	}
	store, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	auditID, _, err := pipeline.EnsureAuditSheet(ctx, client, store, 0, "Billing Audit Log")
	if err != nil {
		b.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	changes := syntheticChanges(n, at)
	for i := 0; i < n; i += 1000 {
		if _, err := store.Commit(ctx, pipeline.Commit{SheetID: 1, Changes: changes[i : i+1000]}); err != nil {
			b.Fatal(err)
		}
	}
	keyDir := b.TempDir()
	if _, err := digestfile.CreateKey(keyDir); err != nil {
		b.Fatal(err)
	}
	signer, err := digestfile.Open(keyDir)
	if err != nil {
		b.Fatal(err)
	}
	r, err := pipeline.New(client, store, pipeline.Options{Audit: audit.DefaultConfig(), SourceSheetIDs: []int64{1}, AuditSheetID: auditID,
		Logger: slog.New(slog.DiscardHandler), Clock: func() time.Time { return at },
		Signer: signer, Digests: digestfile.Dir(b.TempDir())})
	if err != nil {
		b.Fatal(err)
	}
	if path := os.Getenv("PUBLISH_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer f.Close()
	}
	start := time.Now()
	written, err := r.WriteAudit(ctx)
	if os.Getenv("PUBLISH_CPUPROFILE") != "" {
		pprof.StopCPUProfile()
	}
	if err != nil || len(written) != n {
		b.Fatalf("WriteAudit() = %d rows, %v; want %d", len(written), err, n)
	}
	publish := time.Since(start)
	// The run's attestation (a verification and the first digest), as every
	// run ends: what a later verify checks against.
	if att, err := r.Attest(ctx, pipeline.RunRecord{RunID: "20261125T150000Z-bench0", Changes: n}); err != nil || !att.Verification.OK() || att.Digest.Name == "" {
		b.Fatalf("Attest() = %s, %+v, %v", att.Verification.Summary(), att.Digest, err)
	}
	// The seal alone: the same n changes sealed into a fresh ledger.
	sealStore, err := bolt.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer sealStore.Close()
	var head audit.LedgerEntry
	entries := make([]audit.LedgerEntry, n)
	seals := make([]pipeline.Sealed, n)
	for i := 0; i < n; i += 1000 {
		if _, err := sealStore.Commit(ctx, pipeline.Commit{SheetID: 1, Changes: changes[i : i+1000]}); err != nil {
			b.Fatal(err)
		}
	}
	start = time.Now()
	for i, c := range changes {
		head = audit.NextEntry(head, audit.EntryChange, c.ChangeID, at, audit.LogFields(c, time.UTC))
		entries[i], seals[i] = head, pipeline.Sealed{ChangeID: c.ChangeID, Seq: head.Seq, Hash: head.Hash}
	}
	if err := sealStore.AppendLedger(ctx, entries); err != nil {
		b.Fatal(err)
	}
	if err := sealStore.MarkSealed(ctx, seals); err != nil {
		b.Fatal(err)
	}
	seal := time.Since(start)
	// Only verification's own memory is measured: drop the setup's.
	changes, entries, seals, written = nil, nil, nil, nil
	runtime.GC()

	if path := os.Getenv("VERIFY_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		pprof.StartCPUProfile(f)
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	var peak uint64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		runtime.GC()
		stop := peakHeap()
		b.StartTimer()
		v, err := r.Verify(ctx)
		b.StopTimer()
		if p := stop(); p > peak {
			peak = p
		}
		if err != nil || !v.OK() || v.Matched != n || v.Entries != n || v.Digests != 1 {
			b.Fatalf("Verify() = %s, %v; want %d rows clean", v.Summary(), err, n)
		}
		b.StartTimer()
	}
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/verify")
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MB")
	b.ReportMetric(publish.Seconds(), "publish-100k-s")
	b.ReportMetric(float64(seal.Microseconds())/n, "seal-us/change")
}
