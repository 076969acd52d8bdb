package demo_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/google/go-cmp/cmp"
	"github.com/shopspring/decimal"
	bbolt "go.etcd.io/bbolt"
)

// closedWeekRow is a row of the closed week on sheet, and its price.
func (s *stack) closedWeekRow(t *testing.T, sheet int64, skip int) (rowID int64, price string) {
	t.Helper()
	sh, err := s.srv.Sheet(sheet)
	if err != nil {
		t.Fatal(err)
	}
	cols := s.setup.Columns[sheet]
	for _, r := range sh.Rows {
		if c := r.Cell(cols[smartsim.ColWeekEnding]); c != nil && c.Value.Text() == s.setup.ClosedWeek.Format(time.DateOnly) {
			if skip > 0 {
				skip--
				continue
			}
			return r.ID, r.Cell(cols[smartsim.ColTotalPrice]).Value.Text()
		}
	}
	t.Fatalf("no closed-week row on sheet %d", sheet)
	return 0, ""
}

func (s *stack) verify(t *testing.T) audit.Verification {
	t.Helper()
	v, err := s.runner(t, nil).Verify(context.Background())
	if err != nil {
		t.Fatalf("Verify() error = %v", err)
	}
	return v
}

func (s *stack) attest(t *testing.T, run pipeline.RunRecord) pipeline.Attestation {
	t.Helper()
	a, err := s.runner(t, nil).Attest(context.Background(), run)
	if err != nil {
		t.Fatalf("Attest() error = %v", err)
	}
	return a
}

func problemKinds(v audit.Verification) []string {
	var out []string
	for _, p := range v.Problems {
		out = append(out, string(p.Kind)+" "+p.ChangeID)
	}
	slices.Sort(out)
	return out
}

// TestReappliedEditIsLoggedEachTime: 650 → 5000, back to 650, then 5000
// again gives three audit rows with three Change IDs; the log nets to what
// the cell bills.
func TestReappliedEditIsLoggedEachTime(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	s.run(t, nil)
	sheet := s.setup.Gen.SheetIDs[0]
	row, orig := s.closedWeekRow(t, sheet, 0)
	var ids []string
	for i, price := range []string{"5000.00", orig, "5000.00"} {
		s.srv.AdvanceClock(time.Hour)
		if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, s.setup.Columns[sheet][smartsim.ColTotalPrice], smartsheet.NumberValue(price)); err != nil {
			t.Fatal(err)
		}
		s.srv.AdvanceClock(time.Minute)
		sum := s.run(t, nil)
		if len(sum.Changes) != 1 || sum.Changes[0].RowID != row || sum.Changes[0].NewValue != price {
			t.Fatalf("run %d found %+v, want the one edit to %s", i+1, sum.Changes, price)
		}
		ids = append(ids, sum.Changes[0].ChangeID)
		// A run checks the digests after the last one found sound: one here.
		if att := s.attest(t, sum.Run); att.Verification.Digests != min(i, 1) {
			t.Errorf("run %d's attestation checked %d digests, want %d", i+1, att.Verification.Digests, min(i, 1))
		}
	}
	if ids[0] == ids[2] || ids[0] == ids[1] || ids[1] == ids[2] {
		t.Errorf("Change IDs = %v, want three different ids", ids)
	}
	net := decimal.Zero
	var got []string
	for _, r := range s.auditRows(t) {
		got = append(got, r[audit.LogChangeID])
		net = net.Add(decimal.RequireFromString(r[audit.LogImpact]))
	}
	if !cmp.Equal(got, ids) {
		t.Errorf("audit rows = %v, want %v in order", got, ids)
	}
	// Putting the price back reverses the first edit: the second row names
	// it, both are Reversed; the edit made again is a new open exception.
	var reverses, dispositions []string
	for _, r := range s.auditRows(t) {
		reverses = append(reverses, r[audit.LogReverses])
		dispositions = append(dispositions, r[audit.LogDisposition])
	}
	if want := []string{"", ids[0], ""}; !cmp.Equal(reverses, want) {
		t.Errorf("Reverses column = %q, want %q", reverses, want)
	}
	if want := []string{audit.DispositionReversed, audit.DispositionReversed, audit.DispositionOpen}; !cmp.Equal(dispositions, want) {
		t.Errorf("Disposition column = %q, want %q", dispositions, want)
	}
	if want := decimal.RequireFromString("5000").Sub(decimal.RequireFromString(orig)); !net.Equal(want) {
		t.Errorf("sum of Money Impact = %s, want %s: what the cell bills now", net, want)
	}
	if v := s.verify(t); !v.OK() || v.Matched != 3 || v.Digests != 3 {
		t.Errorf("Verify() = %s (%d matched, %d digests); want clean, 3 and 3", v.Summary(), v.Matched, v.Digests)
	}
}

// TestLostResponseLeavesNoDuplicate: the audit write is applied but its answer
// is lost (a gateway 502). The write is not replayed: the sheet is read back
// and only what is missing is sent. One row per change, and nothing deleted.
func TestLostResponseLeavesNoDuplicate(t *testing.T) {
	tests := []struct {
		name       string
		fault      smartsim.FaultKind
		times      int
		wantFaults int64
		// wantAnswered is how many add-rows requests were answered: the
		// rows go in once whatever was lost.
		wantAnswered int64
	}{
		// Applied, answer lost: the read-back finds every row; nothing resent.
		{name: "lost response", fault: smartsim.FaultLostResponse, times: 1, wantFaults: 1, wantAnswered: 0},
		// Not applied (a bare 500): the read-back finds none; all resent once.
		{name: "server error", fault: smartsim.Fault500, times: 1, wantFaults: 1, wantAnswered: 1},
		// Twice: two read-backs, then one resend.
		{name: "server error twice", fault: smartsim.Fault500, times: 2, wantFaults: 2, wantAnswered: 1},
		// "Unexpected error, or sheet busy" (4004): may or may not be applied.
		{name: "4004", fault: smartsim.FaultUnexpected, times: 1, wantFaults: 1, wantAnswered: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
			s.run(t, nil)
			s.srv.AdvanceClock(time.Hour)
			expected, err := s.setup.Script(s.srv)
			if err != nil {
				t.Fatal(err)
			}
			s.srv.AdvanceClock(time.Hour)
			s.srv.ResetCounters()
			s.srv.FailNext(smartsim.EndpointAddRows, tt.times, tt.fault)
			sum := s.run(t, nil)
			if f := s.srv.Counter(smartsim.EndpointAddRows).Faults; f != tt.wantFaults {
				t.Fatalf("faults injected = %d, want %d", f, tt.wantFaults)
			}
			ids := map[string]int{}
			for _, r := range s.auditRows(t) {
				ids[r[audit.LogChangeID]]++
			}
			for id, n := range ids {
				if n != 1 {
					t.Errorf("change %s is on the audit sheet %d times", id, n)
				}
			}
			if len(ids) != len(expected) || sum.Run.AuditRows != len(expected) {
				t.Errorf("audit sheet holds %d changes, run wrote %d; want %d", len(ids), sum.Run.AuditRows, len(expected))
			}
			if n := s.srv.Counter(smartsim.EndpointDeleteRows).Calls; n != 0 {
				t.Errorf("%d DELETE rows calls on the audit sheet, want none: the log is append-only", n)
			}
			if got := s.srv.Counter(smartsim.EndpointAddRows).Calls - s.srv.Counter(smartsim.EndpointAddRows).Faults; got != tt.wantAnswered {
				t.Errorf("add-rows requests answered = %d, want %d", got, tt.wantAnswered)
			}
			if v := s.verify(t); !v.OK() || v.Matched != len(expected) {
				t.Errorf("Verify() = %s, want clean with %d rows", v.Summary(), len(expected))
			}
		})
	}
}

// TestVerifyNamesTampering: an untouched log verifies clean; a deleted, an
// altered and a forged row are each named by Change ID, Work Request # and
// row; the next run says so, signs no lie, and repairs nothing.
func TestVerifyNamesTampering(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	base := s.run(t, nil)
	s.attest(t, base.Run)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	sum := s.run(t, nil)
	att := s.attest(t, sum.Run)
	if v := att.Verification; !v.OK() || v.Matched != 10 || v.Entries != 10 || v.Digests != 1 || att.Digest.Name == "" {
		t.Fatalf("untouched log: %s, digest %+v; want clean, 10 rows, the baseline's digest checked and a new one signed", v.Summary(), att.Digest)
	}
	before := s.auditRows(t)
	wr := map[string]string{}
	for _, r := range before {
		wr[r[audit.LogChangeID]] = r[audit.LogWorkRequest]
	}

	tam, err := demo.Tamper(s.srv, s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	v := s.verify(t)
	want := []audit.Problem{
		{Kind: audit.ProblemAlteredCell, ChangeID: tam.Altered, WorkRequest: wr[tam.Altered], RowNumber: tam.AlteredRowNumber,
			Column: audit.LogImpact, Ledger: tam.AlteredFrom, Sheet: "0"},
		{Kind: audit.ProblemForgedRow, ChangeID: tam.Forged, RowNumber: 10},
		{Kind: audit.ProblemDeletedRow, ChangeID: tam.Deleted, WorkRequest: wr[tam.Deleted]},
	}
	ignore := func(p audit.Problem) audit.Problem { p.RowID, p.Seq, p.Detail = 0, 0, ""; return p }
	var got []audit.Problem
	for _, p := range v.Problems {
		got = append(got, ignore(p))
	}
	want[1].WorkRequest = got[min(1, len(got)-1)].WorkRequest // the forger copied a real row's Work Request #
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify() problems (-want +got):\n%s", diff)
	}
	if v.OK() || !v.LedgerOK() || v.Matched != 8 {
		t.Errorf("Verify() OK %v, LedgerOK %v, matched %d; want false, true (only the sheet was edited), 8", v.OK(), v.LedgerOK(), v.Matched)
	}

	// The next run reports it, still signs (the ledger holds), and repairs nothing.
	s.srv.AdvanceClock(time.Hour)
	s.srv.ResetCounters()
	next := s.run(t, nil)
	att = s.attest(t, next.Run)
	if att.Verification.Total() != 3 || att.Digest.Name == "" || att.Digest.Digest.Problems != 3 {
		t.Errorf("next run: %s, digest %+v; want 3 problems, a digest that counts them", att.Verification.Summary(), att.Digest)
	}
	for _, ep := range []string{smartsim.EndpointAddRows, smartsim.EndpointUpdateRows, smartsim.EndpointDeleteRows} {
		if n := s.srv.Counter(ep).Calls; n != 0 {
			t.Errorf("the run after tampering made %d %s calls, want none: nothing is repaired", n, ep)
		}
	}
	fields, err := s.srv.SummaryFields(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if f.Title == pipeline.SumIntegrity && !strings.HasPrefix(f.ObjectValue.Text(), "TAMPERING DETECTED: 3 problems") {
			t.Errorf("summary %s = %q, want the tampering named", f.Title, f.ObjectValue.Text())
		}
	}
}

// TestResealedLedgerIsCaughtByTheDigest: someone with the state file edits
// a ledger entry and re-computes every hash after it. The chain holds, but
// the signed digest pins the old head, and the sheet's seals differ: both
// are named, and no new digest is signed over the rewritten ledger.
func TestResealedLedgerIsCaughtByTheDigest(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	sum := s.run(t, nil)
	s.attest(t, sum.Run)

	// Rewrite entry 5's Money Impact (the first change of the second run;
	// entry 1 is the adoption of the empty sheet) and re-seal the chain
	// from there.
	var edited audit.LedgerEntry
	var head audit.LedgerEntry
	s.rewriteLedger(t, func(e audit.LedgerEntry) audit.LedgerEntry {
		if e.Seq >= 5 {
			if e.Seq == 5 {
				for i := range e.Fields {
					if e.Fields[i].Title == audit.LogImpact {
						e.Fields[i].Value = "0.00"
					}
				}
				edited = e
			}
			e = audit.NextEntry(head, e.Type, e.Subject, e.SealedAt, e.Fields)
		}
		head = e
		return e
	})

	v := s.verify(t)
	if v.LedgerOK() || v.Counts[audit.ProblemDigestMismatch] != 1 || v.Counts[audit.ProblemBrokenChain]+v.Counts[audit.ProblemAlteredEntry] != 0 {
		t.Errorf("Verify() = %s; want the chain to hold and 1 DIGEST_MISMATCH", v.Summary())
	}
	// Every re-sealed entry's row shows another seal; entry 5's Money Impact differs too.
	if n := v.Counts[audit.ProblemSealMismatch]; n != 7 {
		t.Errorf("%d SEAL_MISMATCH, want 7 (entries 5 to 11)", n)
	}
	if !slices.ContainsFunc(v.Problems, func(p audit.Problem) bool {
		return p.Kind == audit.ProblemAlteredCell && p.ChangeID == edited.Subject && p.Column == audit.LogImpact && p.Ledger == "0.00"
	}) {
		t.Errorf("problems %v lack the altered Money Impact of change %s", problemKinds(v), edited.Subject)
	}
	s.srv.AdvanceClock(time.Hour)
	next := s.run(t, nil)
	att := s.attest(t, next.Run)
	if att.Digest.Name != "" || !strings.Contains(att.Digest.Withheld, "ledger failed verification") {
		t.Errorf("digest after a rewritten ledger = %+v, want none signed", att.Digest)
	}
}

// rewriteLedger passes every ledger entry of the state file through edit
// (in order), as someone with the file would.
func (s *stack) rewriteLedger(t *testing.T, edit func(audit.LedgerEntry) audit.LedgerEntry) {
	t.Helper()
	s.rawBolt(t, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("ledger"))
		return b.ForEach(func(k, v []byte) error {
			e, err := audit.DecodeEntry(v)
			if err != nil {
				return err
			}
			return b.Put(k, audit.EncodeEntry(edit(e)))
		})
	})
}

// rawBolt closes the store, runs fn in a transaction on its file, and
// reopens it.
func (s *stack) rawBolt(t *testing.T, fn func(*bbolt.Tx) error) {
	t.Helper()
	path := s.store.Path()
	if err := s.store.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(fn)
	if cerr := db.Close(); err != nil || cerr != nil {
		t.Fatal(err, cerr)
	}
	if s.store, err = bolt.Open(s.dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.store.Close() })
}

// TestRenumberedEntryIsNamed: an entry whose sequence number was edited, to
// anything, is named by verification; it does not stop it.
func TestRenumberedEntryIsNamed(t *testing.T) {
	tests := []struct {
		name string
		seq  uint64
	}{
		{name: "beyond the head", seq: 1000},
		{name: "huge", seq: 1 << 62},
		{name: "a duplicate number", seq: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStack(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
			s.run(t, nil)
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.setup.Script(s.srv); err != nil {
				t.Fatal(err)
			}
			s.srv.AdvanceClock(time.Hour)
			s.run(t, nil)
			s.rewriteLedger(t, func(e audit.LedgerEntry) audit.LedgerEntry {
				if e.Seq == 3 {
					e.Seq = tt.seq
				}
				return e
			})
			v := s.verify(t)
			if v.Counts[audit.ProblemOutOfOrder] == 0 || v.LedgerOK() {
				t.Errorf("Verify() = %s; want the renumbering named", v.Summary())
			}
		})
	}
}

// TestConcurrentWritersWriteOnce: a run's flush and another writer (an
// overlapping run, a webhook refresh) publish the same pending changes at
// once: each change is sealed once and written once.
func TestConcurrentWritersWriteOnce(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 300, Weeks: 3})
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	expected, err := s.setup.Script(s.srv)
	if err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	// Recorded but not written: the audit sheet could not be reached.
	if _, err := s.runner(t, func(o *pipeline.Options) { o.AuditSheetID = 12345 }).Run(context.Background()); err == nil {
		t.Fatal("Run() with a missing audit sheet succeeded")
	}
	var wg sync.WaitGroup
	written := make([][]audit.Change, 4)
	for i := range written {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cs, err := s.runner(t, nil).FlushAudit(context.Background())
			if err != nil {
				t.Error(err)
			}
			written[i] = cs
		}()
	}
	wg.Wait()
	total := 0
	for _, w := range written {
		total += len(w)
	}
	rows := s.auditRows(t)
	if total != len(expected) || len(rows) != len(expected) {
		t.Errorf("4 concurrent flushes wrote %d rows in all, the sheet has %d; want %d each", total, len(rows), len(expected))
	}
	if v := s.verify(t); !v.OK() || v.Entries != uint64(len(expected)) {
		t.Errorf("Verify() = %s; want clean with %d entries (each change sealed once)", v.Summary(), len(expected))
	}
}

// TestAnalyzeRefusesBatchesItDidNotQueue: only what the system scanned enters
// the log. A sheet's work of an unrecorded run (the sample event), or of a
// sheet its run did not scan, is refused with a clear error and writes
// nothing.
func TestAnalyzeRefusesBatchesItDidNotQueue(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	ctx := context.Background()
	q, pub := &memQueue{}, &memPublisher{}
	r := s.runner(t, nil)
	if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, s.store, pub); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join("..", "..", "..", "events", "analyze", "sqs-sheet-work.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ev struct{ Records []struct{ Body string } }
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	var samples []pipeline.SheetWork
	for _, rec := range ev.Records {
		w, ok, err := pipeline.DecodeSheetWork([]byte(rec.Body))
		if !ok || err != nil {
			t.Fatalf("DecodeSheetWork(sample) = %v, %v", ok, err)
		}
		samples = append(samples, w)
	}
	otherSheet := q.sheets[0]
	otherSheet.Sheet.ID = 4583173393803140
	tests := []struct {
		name string
		w    pipeline.SheetWork
	}{
		{name: "the sample event: its run is not recorded", w: samples[0]},
		{name: "the sample event's resumed sheet", w: samples[1]},
		{name: "a sheet its run did not scan", w: otherSheet},
		{name: "no run id", w: pipeline.SheetWork{Sheet: otherSheet.Sheet}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := r.ProcessSheet(ctx, tt.w, q, s.store, pub)
			if !errors.Is(err, pipeline.ErrBatchRefused) {
				t.Errorf("ProcessSheet() error = %v, want ErrBatchRefused", err)
			}
		})
	}
	if n := len(s.auditRows(t)); n != 0 {
		t.Errorf("audit sheet has %d rows after refused batches, want 0", n)
	}
	if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{SheetIDs: []int64{4583173393803140}}, q, s.store, pub); err == nil ||
		!strings.Contains(err.Error(), "not a configured source") {
		t.Errorf("ScanToQueue(an unconfigured sheet) error = %v, want it refused", err)
	}
}

// TestSetupTypesTheAuditSheet: the audit sheet's columns are typed so
// Smartsheet can sum, filter and sort them, the product's columns are
// locked, the run's status lives in summary fields; a sheet made by an
// earlier version is brought up to date.
func TestSetupTypesTheAuditSheet(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, demo.Size{Sheets: 3, Rows: 50, Weeks: 2})
	// An older audit sheet: every column TEXT_NUMBER, no Seal, no summary.
	var old []smartsheet.Column
	for _, c := range pipeline.AuditColumns {
		if c.Title == audit.LogSeal || c.Title == audit.LogChangedOn {
			continue
		}
		old = append(old, smartsheet.Column{Title: c.Title, Type: smartsheet.TypeTextNumber, Primary: c.Primary})
	}
	legacy, err := s.client.CreateSheet(ctx, "Old Audit Log", old)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int64{s.auditID, legacy.ID} {
		got, _, err := pipeline.EnsureAuditSheet(ctx, s.client, s.store, id, "")
		if err != nil || got != id {
			t.Fatalf("EnsureAuditSheet(%d) = %d, %v", id, got, err)
		}
		sh, _, err := s.client.GetSheet(ctx, id, smartsheet.GetSheetOptions{PageSize: 1, Include: []string{smartsheet.IncludeFormat}})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range pipeline.AuditColumns {
			c := sh.Column(want.Title)
			if c == nil {
				t.Errorf("sheet %d lacks column %q", id, want.Title)
				continue
			}
			// The review columns are the ones left open to edit.
			wantLocked := !audit.EditableColumns()[want.Title]
			locked := c.Locked != nil && *c.Locked
			if !want.Primary && (c.Type != want.Type || c.Format != want.Format || locked != wantLocked) {
				t.Errorf("sheet %d column %q = %s format %q locked %t; want %s format %q locked %t", id, c.Title, c.Type, c.Format, locked, want.Type, want.Format, wantLocked)
			}
		}
		fields, err := s.client.GetSummaryFields(ctx, id)
		if err != nil || len(fields) != len(pipeline.SummaryFields) {
			t.Errorf("sheet %d has %d summary fields, %v; want %d", id, len(fields), err, len(pipeline.SummaryFields))
		}
	}
	// Setting up again changes nothing.
	s.srv.ResetCounters()
	if _, _, err := pipeline.EnsureAuditSheet(ctx, s.client, s.store, legacy.ID, ""); err != nil {
		t.Fatal(err)
	}
	for _, ep := range []string{smartsim.EndpointAddColumns, smartsim.EndpointUpdateColumn, smartsim.EndpointAddSummaryFields} {
		if n := s.srv.Counter(ep).Calls; n != 0 {
			t.Errorf("a second setup made %d %s calls, want 0", n, ep)
		}
	}
}

// TestUpgradeAdoptsEarlierRows: an audit sheet written by a version without
// the ledger — change rows without a Seal, its status row at the top, a row
// deleted since — is adopted once: the rows as they stand are sealed, so the
// log verifies, the deleted row is named, and a later edit of an old row is
// named too.
func TestUpgradeAdoptsEarlierRows(t *testing.T) {
	t.Run("in one go", func(t *testing.T) { testUpgrade(t, false) })
	t.Run("resumed after a crash", func(t *testing.T) { testUpgrade(t, true) })
}

func testUpgrade(t *testing.T, crash bool) {
	ctx := context.Background()
	s := newStack(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	// The earlier version: it recorded the changes and wrote them as rows
	// without a Seal (here: record them, write the rows by hand).
	if _, err := s.runner(t, func(o *pipeline.Options) { o.AuditSheetID = 12345 }).Run(ctx); err == nil {
		t.Fatal("Run() with a missing audit sheet succeeded")
	}
	pending, err := s.store.Pending(ctx)
	if err != nil || len(pending) != 10 {
		t.Fatalf("Pending() = %d, %v; want 10", len(pending), err)
	}
	// The state file as the earlier version left it: no ledger.
	s.rawBolt(t, func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket([]byte("ledger")); err != nil {
			return err
		}
		if _, err := tx.CreateBucket([]byte("ledger")); err != nil {
			return err
		}
		meta := tx.Bucket([]byte("meta"))
		return errors.Join(meta.Delete([]byte("ledger-adopted")), meta.Delete([]byte("ledger-synced")))
	})
	sh, _ := s.srv.Sheet(s.auditID)
	col := map[string]int64{}
	for _, c := range sh.Columns {
		col[c.Title] = c.ID
	}
	cellsOf := func(fields []audit.Field) []smartsheet.Cell {
		var cells []smartsheet.Cell
		for _, f := range fields {
			if f.Value == "" || f.Title == audit.LogChangedOn || f.Title == audit.LogDetectedOn {
				continue // columns the earlier version did not have
			}
			cells = append(cells, smartsheet.Cell{ColumnID: col[f.Title], Value: smartsheet.StringValue(f.Value)})
		}
		return cells
	}
	status := smartsheet.Row{ToTop: true, Cells: []smartsheet.Cell{
		{ColumnID: col[audit.LogWorkRequest], Value: smartsheet.StringValue("CHANGES DETECTED")},
		{ColumnID: col[audit.LogChangeID], Value: smartsheet.StringValue("AUDIT-STATUS")},
		{ColumnID: col[audit.LogImpact], Value: smartsheet.NumberValue("7432.50")},
	}}
	var rows []smartsheet.Row
	for _, p := range pending {
		rows = append(rows, smartsheet.Row{ToBottom: true, Cells: cellsOf(audit.LogFields(p.Change, time.UTC))})
	}
	added, err := s.srv.AddRows(smartsim.Edit{User: smartsim.DefaultUser}, s.auditID, rows)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.srv.AddRows(smartsim.Edit{User: smartsim.DefaultUser}, s.auditID, []smartsheet.Row{status}); err != nil {
		t.Fatal(err)
	}
	// The earlier version stopped between writing pending[5]'s row and
	// marking it written: its row is there, its record still pending.
	unmarked := pending[5].Change.ChangeID
	if err := s.store.MarkWritten(ctx, pipeline.WrittenIDs(slices.DeleteFunc(ids(pending), func(id string) bool { return id == unmarked })...)); err != nil {
		t.Fatal(err)
	}
	// A row whose change record has expired (the store's retention).
	expired := smartsheet.Row{ToBottom: true, Cells: []smartsheet.Cell{
		{ColumnID: col[audit.LogWorkRequest], Value: smartsheet.StringValue("WR-EXPIRED")},
		{ColumnID: col[audit.LogChangeID], Value: smartsheet.StringValue("0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e")},
	}}
	if _, err := s.srv.AddRows(smartsim.Edit{User: smartsim.DefaultUser}, s.auditID, []smartsheet.Row{expired}); err != nil {
		t.Fatal(err)
	}
	// Someone deleted one row before the upgrade.
	gone := pending[3].Change.ChangeID
	if _, err := s.srv.DeleteRows(smartsim.Edit{User: demo.Dana}, s.auditID, []int64{added[3].ID}); err != nil {
		t.Fatal(err)
	}

	// Before a run that writes, verification leaves the old rows alone.
	if v := s.verify(t); !v.OK() || len(v.Skipped) == 0 {
		t.Errorf("Verify() before the first run = %s; want the audit sheet not checked yet", v.Summary())
	}
	// The first writer stops after appending the adopted entries, before
	// their records learn them and before the adoption entry: verification
	// still leaves the sheet alone, and the next writer finishes.
	if crash {
		s.srv.AdvanceClock(time.Hour)
		errCrash := errors.New("crash")
		if _, err := s.runner(t, func(o *pipeline.Options) { o.AfterAdoptChunk = func() error { return errCrash } }).Run(ctx); !errors.Is(err, errCrash) {
			t.Fatalf("Run() with a crash during adoption = %v, want the crash", err)
		}
		if v := s.verify(t); !v.OK() || len(v.Skipped) == 0 {
			t.Errorf("Verify() after an unfinished adoption = %s; want the audit sheet not checked yet", v.Summary())
		}
	}
	s.srv.AdvanceClock(time.Hour)
	s.run(t, nil) // finishes the adoption
	v := s.verify(t)
	want := []string{string(audit.ProblemDeletedRow) + " " + gone}
	// 9 change rows, the status row and the expired change's row match;
	// 12 entries: those 11 and the deleted change.
	if diff := cmp.Diff(want, problemKinds(v)); diff != "" || v.Matched != 11 || v.Entries != 12 {
		t.Errorf("after the upgrade Verify() = %s, matched %d of %d entries; problems (-want +got):\n%s", v.Summary(), v.Matched, v.Entries, diff)
	}
	// Adopted once, each row once, and every record learned its entry.
	if again := s.verify(t); again.Entries != 12 || again.HeadSeq != 13 {
		t.Errorf("second Verify() = %d entries, head %d; want 12 and 13 (the adoption entry)", again.Entries, again.HeadSeq)
	}
	recs, err := s.store.ChangeRecords(ctx, ids(pending))
	if err != nil {
		t.Fatal(err)
	}
	for id, rec := range recs {
		if rec.Seq == 0 || !rec.Written {
			t.Errorf("change %s: seq %d, written %v after the adoption; want its entry noted and written", id, rec.Seq, rec.Written)
		}
	}
	n := 0
	for _, row := range s.auditRows(t) {
		if row[audit.LogChangeID] == unmarked {
			n++
		}
	}
	if n != 1 {
		t.Errorf("the change the earlier version wrote but never marked is on the sheet %d times, want 1 (adopted, not written again)", n)
	}
	// An old row edited after the upgrade is named.
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Dana}, s.auditID, added[0].ID, col[audit.LogImpact], smartsheet.NumberValue("1")); err != nil {
		t.Fatal(err)
	}
	v = s.verify(t)
	if v.Counts[audit.ProblemAlteredCell] != 1 {
		t.Errorf("after editing an adopted row Verify() = %s; want 1 ALTERED_CELL", v.Summary())
	}
	// New changes are sealed as usual after the adopted rows.
	s.srv.AdvanceClock(time.Hour)
	sheet := s.setup.Gen.SheetIDs[1]
	row, _ := s.closedWeekRow(t, sheet, 3)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, s.setup.Columns[sheet][smartsim.ColTotalPrice], smartsheet.NumberValue("777.00")); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Minute)
	if sum := s.run(t, nil); sum.Run.AuditRows != 1 {
		t.Fatalf("run after the upgrade wrote %d rows, want 1", sum.Run.AuditRows)
	}
	if v := s.verify(t); v.Entries != 13 || v.Matched != 11 || v.Total() != 2 {
		t.Errorf("Verify() = %s, %d entries, %d matched; want 13 entries, the new row matched, the 2 old problems", v.Summary(), v.Entries, v.Matched)
	}
}

func ids(rs []pipeline.ChangeRecord) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		out[i] = r.Change.ChangeID
	}
	return out
}

// TestDigestsCheckedWithTheStoredKey: the digests are checked with the
// public key stored beside them, as a third party checks them, so a verify
// without the signing key still checks them; a replaced public key is named.
func TestDigestsCheckedWithTheStoredKey(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	base := s.run(t, nil)
	s.attest(t, base.Run)
	s.srv.AdvanceClock(time.Hour)
	next := s.run(t, nil)
	s.attest(t, next.Run)
	withoutKey, err := s.runner(t, func(o *pipeline.Options) { o.Signer = nil }).Verify(context.Background())
	if err != nil || !withoutKey.OK() || withoutKey.Digests != 2 {
		t.Errorf("Verify() without the signing key = %s, %v; want clean with 2 digests checked", withoutKey.Summary(), err)
	}
	other := filepath.Join(t.TempDir(), "other")
	if _, err := digestfile.CreateKey(other); err != nil {
		t.Fatal(err)
	}
	o, err := digestfile.Open(other)
	if err != nil {
		t.Fatal(err)
	}
	pem, _ := o.PublicKeyPEM(context.Background())
	path := filepath.Join(string(s.digests), digestfile.PublicKeyFile)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem, 0o444); err != nil {
		t.Fatal(err)
	}
	v := s.verify(t)
	if v.Counts[audit.ProblemDigestSignature] != 3 { // the key mismatch, and each digest fails with the stored key
		t.Errorf("Verify() with a replaced public key = %s; want 3 DIGEST_BAD_SIGNATURE", v.Summary())
	}
}

// TestNewestEntriesCutWithTheirRows: entries sealed after the last digest,
// cut from the ledger together with their rows on the sheet, are still
// named: their change records say which entries sealed them.
func TestNewestEntriesCutWithTheirRows(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
	base := s.run(t, nil)
	s.attest(t, base.Run)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	s.run(t, nil) // written, not yet attested: no digest pins these entries
	rows := s.auditRows(t)
	sh, _ := s.srv.Sheet(s.auditID)
	var cut []int64
	for i := 7; i < len(rows); i++ {
		cut = append(cut, sh.Rows[i].ID)
	}
	if _, err := s.srv.DeleteRows(smartsim.Edit{User: demo.Dana}, s.auditID, cut); err != nil {
		t.Fatal(err)
	}
	s.rawBolt(t, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("ledger"))
		var keys [][]byte
		b.ForEach(func(k, v []byte) error {
			if e, _ := audit.DecodeEntry(v); e.Seq > 8 { // entry 1 is the adoption
				keys = append(keys, slices.Clone(k))
			}
			return nil
		})
		for _, k := range keys {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	v := s.verify(t)
	t.Log(v.Summary())
	if v.Counts[audit.ProblemEntryMissing] != 3 || v.LedgerOK() {
		t.Errorf("Verify() after cutting entries 9-11 and their rows = %s; want 3 ENTRY_MISSING", v.Summary())
	}
}

// TestConcurrentAnalysesOfOneRow: a scan batch and a webhook refresh hold
// two snapshots of a row edited twice (A→B, then B→C) and commit at the same
// moment. One commits A→B; the other finds the baseline moved and compares
// its snapshot with the new baseline: B→C. Each edit is logged once, never
// A→C as well, and nothing is left for a later scan to find (which, past
// the scan's overlap, it would not).
func TestConcurrentAnalysesOfOneRow(t *testing.T) {
	ctx := context.Background()
	s := newStack(t, demo.Size{Sheets: 3, Rows: 100, Weeks: 2})
	s.run(t, nil)
	sheet := s.setup.Gen.SheetIDs[0]
	row, _ := s.closedWeekRow(t, sheet, 0)
	price := s.setup.Columns[sheet][smartsim.ColTotalPrice]
	fetch := func(runID string) pipeline.Batch { // the row as a scan reads it now
		t.Helper()
		page, _, err := s.client.GetSheet(ctx, sheet, smartsheet.GetSheetOptions{RowIDs: []int64{row},
			Include: []string{smartsheet.IncludeWriterInfo, smartsheet.IncludeRowPermalink}})
		if err != nil || len(page.Rows) != 1 {
			t.Fatalf("GetSheet(row %d) = %v", row, err)
		}
		b, _, _ := s.runner(t, nil).PageBatch(runID, page, audit.ScanWindow{Previous: s.srv.Now().Add(-2 * time.Hour), Current: s.srv.Now()}, false, true)
		return b
	}
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, price, smartsheet.NumberValue("5000.00")); err != nil {
		t.Fatal(err)
	}
	first := fetch("run-a") // the row as 5000.00
	s.srv.AdvanceClock(time.Minute)
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Raj}, sheet, row, price, smartsheet.NumberValue("6000.00")); err != nil {
		t.Fatal(err)
	}
	second := fetch("run-b") // the row as 6000.00

	var other []audit.Change
	done := make(chan error, 1)
	started := false
	r := s.runner(t, func(o *pipeline.Options) {
		o.BeforeCommit = func(pipeline.Batch) {
			if started {
				return
			}
			started = true
			// The second analysis compares now, against the same baseline,
			// then waits for this one's commit.
			go func() {
				cs, _, err := s.runner(t, nil).Analyze(ctx, second)
				other = cs
				done <- err
			}()
			time.Sleep(200 * time.Millisecond)
		}
	})
	mine, _, err := r.Analyze(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(mine) != 1 || mine[0].NewValue != "5000.00" {
		t.Fatalf("the first analysis committed %+v; want its edit to 5000.00", mine)
	}
	if len(other) != 1 || other[0].OldValue != "5000.00" || other[0].NewValue != "6000.00" || other[0].Attribution.User != demo.Raj.Email {
		t.Fatalf("the second analysis committed %+v; want Raj's 5000.00 → 6000.00", other)
	}
	// Nothing left over, even for a scan well past the overlap.
	s.srv.AdvanceClock(time.Hour)
	if sum := s.run(t, nil); len(sum.Changes) != 0 {
		t.Errorf("next scan found %+v, want nothing", sum.Changes)
	}
}

// TestSummaryLedgerHeadEdited: the audit sheet's summary fields are locked,
// but the sheet's owner may still edit them. An edited Ledger Head is named
// (SUMMARY_MISMATCH) without counting as a ledger problem: the next
// attestation still signs a digest and writes the field again.
func TestSummaryLedgerHeadEdited(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	sum := s.run(t, nil)
	s.attest(t, sum.Run)
	fields, err := s.srv.SummaryFields(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	var head string
	for _, f := range fields {
		if f.Locked == nil || !*f.Locked {
			t.Errorf("summary field %q is not locked", f.Title)
		}
		if f.Title == pipeline.SumLedger {
			head = f.ObjectValue.Text()
		}
	}
	if !strings.HasPrefix(head, "entry 11, hash ") {
		t.Fatalf("%s = %q, want entry 11 (the adoption and 10 changes)", pipeline.SumLedger, head)
	}
	if err := s.srv.SetSummaryField(smartsim.Edit{User: demo.Dana}, s.auditID, pipeline.SumLedger, smartsheet.StringValue("entry 2, hash 0123456789abcdef")); err != nil {
		t.Fatal(err)
	}
	v := s.verify(t)
	if got := problemKinds(v); !slices.Equal(got, []string{string(audit.ProblemSummaryMismatch) + " "}) || !v.LedgerOK() {
		t.Fatalf("Verify() after editing %s = %v (%s); want 1 SUMMARY_MISMATCH and the ledger sound", pipeline.SumLedger, got, v.Summary())
	}
	if p := v.Problems[0]; p.Seq != 2 || p.Sheet != "0123456789abcdef" || p.Ledger == "" || p.Ledger == p.Sheet {
		t.Errorf("problem = %+v, want entry 2 with the sheet's and the ledger's hash", p)
	}
	s.srv.AdvanceClock(time.Hour)
	next := s.run(t, nil)
	if att := s.attest(t, next.Run); att.Digest.Name == "" {
		t.Errorf("attestation after an edited summary = %+v, want a digest signed", att.Digest)
	}
	if v := s.verify(t); !v.OK() {
		t.Errorf("Verify() after the summary was written again = %s, want no problem", v.Summary())
	}

	// A Ledger Head beyond the ledger's end says the ledger lost entries:
	// a ledger problem. No digest is signed and the witness is kept.
	beyond := "entry 99, hash 0123456789abcdef"
	if err := s.srv.SetSummaryField(smartsim.Edit{User: demo.Dana}, s.auditID, pipeline.SumLedger, smartsheet.StringValue(beyond)); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	again := s.run(t, nil)
	att := s.attest(t, again.Run)
	if v := att.Verification; v.Counts[audit.ProblemEntryMissing] != 1 || v.LedgerOK() || att.Digest.Name != "" {
		t.Errorf("attestation with the Ledger Head past the ledger = %s, digest %+v; want 1 ENTRY_MISSING and no digest", v.Summary(), att.Digest)
	}
	fields, err = s.srv.SummaryFields(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fields {
		if f.Title == pipeline.SumLedger && f.ObjectValue.Text() != beyond {
			t.Errorf("%s after a failed verification = %q, want the witness kept (%q)", f.Title, f.ObjectValue.Text(), beyond)
		}
	}
}

// TestAdoptionEntryCannotBeForgedAway: the writer reads back the adoption
// entry its store flag names, so a flag forged before the first run does not
// skip adoption; and a ledger re-sealed without its adoption entry is named
// while the audit sheet is still compared.
func TestAdoptionEntryCannotBeForgedAway(t *testing.T) {
	s := newStack(t, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
	s.rawBolt(t, func(tx *bbolt.Tx) error {
		meta, err := tx.CreateBucketIfNotExists([]byte("meta"))
		if err != nil {
			return err
		}
		return meta.Put([]byte("ledger-adoption-entry"), []byte("7"))
	})
	s.run(t, nil)
	s.srv.AdvanceClock(time.Hour)
	if _, err := s.setup.Script(s.srv); err != nil {
		t.Fatal(err)
	}
	s.srv.AdvanceClock(time.Hour)
	s.run(t, nil)
	if v := s.verify(t); !v.OK() || len(v.Skipped) != 0 || v.Matched != 10 {
		t.Fatalf("Verify() after a forged adoption flag = %s, skipped %v; want the sheet compared and clean", v.Summary(), v.Skipped)
	}

	// Entry 1 (the adoption) cut out and the chain re-sealed, then an
	// audit row edited: both named.
	var head audit.LedgerEntry
	s.rawBolt(t, func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("ledger"))
		var es []audit.LedgerEntry
		if err := b.ForEach(func(_, v []byte) error {
			e, err := audit.DecodeEntry(v)
			es = append(es, e)
			return err
		}); err != nil {
			return err
		}
		if err := b.Delete(binary.BigEndian.AppendUint64(nil, uint64(len(es)))); err != nil {
			return err
		}
		for i, e := range es[1:] {
			head = audit.NextEntry(head, e.Type, e.Subject, e.SealedAt, e.Fields)
			if err := b.Put(binary.BigEndian.AppendUint64(nil, uint64(i+1)), audit.EncodeEntry(head)); err != nil {
				return err
			}
		}
		return nil
	})
	sh, _ := s.srv.Sheet(s.auditID)
	var impact int64
	for _, c := range sh.Columns {
		if c.Title == audit.LogImpact {
			impact = c.ID
		}
	}
	if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Dana}, s.auditID, sh.Rows[0].ID, impact, smartsheet.NumberValue("0")); err != nil {
		t.Fatal(err)
	}
	v := s.verify(t)
	if v.LedgerOK() || len(v.Skipped) != 0 || v.Counts[audit.ProblemAlteredCell] != 1 ||
		!slices.ContainsFunc(v.Problems, func(p audit.Problem) bool {
			return p.Kind == audit.ProblemEntryMissing && strings.Contains(p.Detail, "no adoption entry")
		}) {
		t.Errorf("Verify() without the adoption entry = %s, skipped %v; want the missing adoption entry and the altered cell named", v.Summary(), v.Skipped)
	}
}
