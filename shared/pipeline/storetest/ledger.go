package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// chainOf seals n changes after head.
func chainOf(head audit.LedgerEntry, n int, prefix string) []audit.LedgerEntry {
	var out []audit.LedgerEntry
	for i := range n {
		c := change(fmt.Sprintf("%s%d", prefix, head.Seq+uint64(i)+1), int64(i+1))
		head = audit.NextEntry(head, audit.EntryChange, c.ChangeID, t0, audit.LogFields(c, time.UTC))
		out = append(out, head)
	}
	return out
}

// testLedger: entries are appended only as continuations of the head, read
// back in order and by sequence number, and round-trip exactly.
func testLedger(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	if _, ok, err := s.LedgerHead(ctx); ok || err != nil {
		t.Fatalf("LedgerHead(empty) = ok %v, %v; want false, nil", ok, err)
	}
	first := chainOf(audit.LedgerEntry{}, 3, "c")
	if err := s.AppendLedger(ctx, first); err != nil {
		t.Fatal(err)
	}
	head, ok, err := s.LedgerHead(ctx)
	if err != nil || !ok {
		t.Fatalf("LedgerHead() = ok %v, %v", ok, err)
	}
	if diff := cmp.Diff(first[2], head); diff != "" {
		t.Errorf("LedgerHead() round trip (-want +got):\n%s", diff)
	}

	// A writer that read an old head cannot append.
	stale := chainOf(first[1], 1, "stale")
	if err := s.AppendLedger(ctx, stale); !errors.Is(err, pipeline.ErrLedgerConflict) {
		t.Errorf("AppendLedger(from a stale head) error = %v, want ErrLedgerConflict", err)
	}
	// Nor one whose first entry skips a number.
	gap := chainOf(audit.LedgerEntry{Seq: 4, Hash: head.Hash}, 1, "gap")
	if err := s.AppendLedger(ctx, gap); err == nil {
		t.Error("AppendLedger(with a gap) = nil, want an error")
	}
	more := chainOf(head, 1200, "m")
	if err := s.AppendLedger(ctx, more); err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	var check audit.ChainCheck
	var problems []audit.Problem
	err = s.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error {
		seqs = append(seqs, e.Seq)
		problems = append(problems, check.Add(e)...)
		return nil
	})
	if err != nil || len(seqs) != 1203 || seqs[0] != 1 || seqs[1202] != 1203 || len(problems) != 0 {
		t.Fatalf("LedgerEntries(1) = %d entries (%v … ), problems %v, err %v; want 1 … 1203, a sound chain", len(seqs), seqs[:min(3, len(seqs))], problems, err)
	}
	var from []uint64
	if err := s.LedgerEntries(ctx, 1201, func(e audit.LedgerEntry) error { from = append(from, e.Seq); return nil }); err != nil || !cmp.Equal(from, []uint64{1201, 1202, 1203}) {
		t.Errorf("LedgerEntries(1201) = %v, %v; want 1201, 1202, 1203", from, err)
	}
	got, err := s.LedgerEntriesBySeq(ctx, []uint64{2, 1000, 2, 5000})
	if err != nil || len(got) != 2 || got[1000].Seq != 1000 || got[2].Subject != first[1].Subject {
		t.Errorf("LedgerEntriesBySeq(2, 1000, 5000) = %d entries, %v; want 2 and 1000", len(got), err)
	}
}

// testSealAndWrite: a change's ledger entry and audit row are noted on its
// record, and ChangeRecords reads records as they are now.
func testSealAndWrite(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{change("s1", 1), change("s2", 2)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSealed(ctx, []pipeline.Sealed{{ChangeID: "s1", Seq: 7, Hash: "abc"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSealed(ctx, []pipeline.Sealed{{ChangeID: "nope", Seq: 8, Hash: "x"}}); err == nil {
		t.Error("MarkSealed(unknown change) = nil, want an error")
	}
	if err := s.MarkWritten(ctx, []pipeline.WrittenRow{{ChangeID: "s1", RowID: 4242}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, Changes: []audit.Change{change("s3", 3)}}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkWritten(ctx, []pipeline.WrittenRow{{ChangeID: "s3", RowID: 43, Seq: 9, Hash: "def"}}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.ChangeRecords(ctx, []string{"s1", "s2", "s1", "missing"})
	if err != nil || len(recs) != 2 {
		t.Fatalf("ChangeRecords() = %d, %v; want 2", len(recs), err)
	}
	if r := recs["s1"]; r.Seq != 7 || r.Hash != "abc" || !r.Written || r.AuditRowID != 4242 || r.Change.ChangeID != "s1" {
		t.Errorf("ChangeRecords()[s1] = seq %d hash %q written %v row %d; want 7, abc, true, 4242", r.Seq, r.Hash, r.Written, r.AuditRowID)
	}
	if r := recs["s2"]; r.Seq != 0 || r.Written {
		t.Errorf("ChangeRecords()[s2] = seq %d written %v; want unsealed and pending", r.Seq, r.Written)
	}
	recs, err = s.ChangeRecords(ctx, []string{"s3"})
	if r := recs["s3"]; err != nil || r.Seq != 9 || r.Hash != "def" || !r.Written || r.AuditRowID != 43 {
		t.Errorf("ChangeRecords()[s3] = seq %d hash %q written %v row %d, %v; want 9, def, true, 43 (MarkWritten noting the entry)", r.Seq, r.Hash, r.Written, r.AuditRowID, err)
	}
}

// RunLeases is the contract of pipeline.Leases: one holder at a time, a
// holder renews its own lease, a released or expired lease is free and can
// no longer be renewed. open
// returns fresh leases and a way to move their clock forward.
func RunLeases(t *testing.T, open func(t *testing.T) (pipeline.Leases, func(time.Duration))) {
	ctx := context.Background()
	t.Run("OneHolder", func(t *testing.T) {
		l, advance := open(t)
		steps := []struct {
			name    string
			do      func() (bool, error)
			advance time.Duration
			want    bool
		}{
			{name: "a takes it", do: func() (bool, error) { return l.AcquireLease(ctx, "log", "a", time.Minute) }, want: true},
			{name: "b waits", do: func() (bool, error) { return l.AcquireLease(ctx, "log", "b", time.Minute) }},
			{name: "a renews", do: func() (bool, error) { return l.AcquireLease(ctx, "log", "a", time.Minute) }, want: true},
			{name: "another lease is free", do: func() (bool, error) { return l.AcquireLease(ctx, "other", "b", time.Minute) }, want: true},
			{name: "b still waits after 50s", advance: 50 * time.Second, do: func() (bool, error) { return l.AcquireLease(ctx, "log", "b", time.Minute) }},
			{name: "b takes it once it expired", advance: 11 * time.Second, do: func() (bool, error) { return l.AcquireLease(ctx, "log", "b", time.Minute) }, want: true},
			{name: "a's release does not free b's lease", do: func() (bool, error) {
				return false, l.ReleaseLease(ctx, "log", "a")
			}},
			{name: "a waits", do: func() (bool, error) { return l.AcquireLease(ctx, "log", "a", time.Minute) }},
			{name: "b releases", do: func() (bool, error) { return false, l.ReleaseLease(ctx, "log", "b") }},
			{name: "a takes the released lease", do: func() (bool, error) { return l.AcquireLease(ctx, "log", "a", time.Minute) }, want: true},
			{name: "a renews its lease", advance: 50 * time.Second, do: func() (bool, error) { return l.RenewLease(ctx, "log", "a", time.Minute) }, want: true},
			{name: "b cannot renew a's lease", do: func() (bool, error) { return l.RenewLease(ctx, "log", "b", time.Minute) }},
			{name: "the renewed lease holds past the first minute", advance: 50 * time.Second, do: func() (bool, error) { return l.AcquireLease(ctx, "log", "b", time.Minute) }},
			{name: "a cannot renew once expired", advance: 11 * time.Second, do: func() (bool, error) { return l.RenewLease(ctx, "log", "a", time.Minute) }},
			{name: "nor once released", do: func() (bool, error) {
				if ok, err := l.AcquireLease(ctx, "log", "b", time.Minute); !ok || err != nil {
					return false, fmt.Errorf("b could not take the expired lease: %v, %v", ok, err)
				}
				if err := l.ReleaseLease(ctx, "log", "b"); err != nil {
					return false, err
				}
				return l.RenewLease(ctx, "log", "b", time.Minute)
			}},
			{name: "nor a lease never taken", do: func() (bool, error) { return l.RenewLease(ctx, "never", "a", time.Minute) }},
		}
		for _, st := range steps {
			advance(st.advance)
			got, err := st.do()
			if err != nil || got != st.want {
				t.Fatalf("%s: got %v, %v; want %v, nil", st.name, got, err, st.want)
			}
		}
	})
	t.Run("Concurrent", func(t *testing.T) {
		l, _ := open(t)
		var won atomic.Int32
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := l.AcquireLease(ctx, "log", fmt.Sprint("holder-", i), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					won.Add(1)
				}
			}()
		}
		wg.Wait()
		if n := won.Load(); n != 1 {
			t.Errorf("%d of 8 concurrent holders got the lease, want 1", n)
		}
	})
}
