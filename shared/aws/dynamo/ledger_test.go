package dynamo_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/digestfile"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/local/smartsim"
	"github.com/fieldaudit/billing-audit/shared/local/smartsimtest"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// The audit log of record on the DynamoDB store, through the real client and
// simulator: the scenarios of shared/local/demo's ledger tests that depend on the
// store (the conditional append, the lease, consistent reads behind an
// eventually consistent index).

type ledgerStack struct {
	srv     *smartsim.Server
	client  *smartsheet.Client
	store   *dynamo.Store
	setup   *demo.Setup
	auditID int64
	signer  *digestfile.Signer
	digests digestfile.Dir
}

var wednesday = time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)

func newLedgerStack(t *testing.T, api testAPI) *ledgerStack {
	t.Helper()
	srv := smartsimtest.Start(t, smartsim.Options{Clock: func() time.Time { return wednesday }})
	client, err := smartsheet.New(smartsheet.Config{BaseURL: srv.URL(), Token: "test-token", ChangeAgent: "billing-audit-test", RetryBudget: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	store := MustStore(t, api, dynamo.Options{Retention: dynamo.DefaultRetention})
	setup, err := demo.Prepare(srv, demo.Size{Sheets: 3, Rows: 200, Weeks: 3})
	if err != nil {
		t.Fatal(err)
	}
	id, _, err := pipeline.EnsureAuditSheet(context.Background(), client, store, 0, "Billing Audit Log")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if _, err := digestfile.CreateKey(dir); err != nil {
		t.Fatal(err)
	}
	signer, err := digestfile.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return &ledgerStack{srv: srv, client: client, store: store, setup: setup, auditID: id, signer: signer, digests: digestfile.Dir(t.TempDir())}
}

func (s *ledgerStack) runner(t *testing.T, mod func(*pipeline.Options)) *pipeline.Runner {
	t.Helper()
	o := pipeline.Options{Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{s.setup.Gen.FolderID}, AuditSheetID: s.auditID,
		Clock: s.srv.Now, Logger: slog.New(slog.DiscardHandler), Signer: s.signer, Digests: s.digests, PageSize: 500, ReadBackDelay: time.Millisecond}
	if mod != nil {
		mod(&o)
	}
	r, err := pipeline.New(s.client, s.store, o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (s *ledgerStack) auditChangeIDs(t *testing.T) map[string]int {
	t.Helper()
	sh, err := s.srv.Sheet(s.auditID)
	if err != nil {
		t.Fatal(err)
	}
	var col int64
	for _, c := range sh.Columns {
		if c.Title == audit.LogChangeID {
			col = c.ID
		}
	}
	ids := map[string]int{}
	for _, r := range sh.Rows {
		if c := r.Cell(col); c != nil {
			ids[c.Value.Text()]++
		}
	}
	return ids
}

func TestLedgerScenariosOnDynamoDB(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()

		t.Run("re-applied edit, lost answer, concurrent writers, tampering", func(t *testing.T) {
			s := newLedgerStack(t, api)
			if _, err := s.runner(t, nil).Run(ctx); err != nil {
				t.Fatal(err)
			}
			sheet := s.setup.Gen.SheetIDs[0]
			sh, _ := s.srv.Sheet(sheet)
			row := sh.Rows[0].ID
			col := s.setup.Columns[sheet][smartsim.ColTotalPrice]
			orig := sh.Rows[0].Cell(col).Value.Text()

			// 650 → 5000 → 650 → 5000: three changes; the last write's answer is lost.
			var ids []string
			for i, price := range []string{"5000.00", orig, "5000.00"} {
				s.srv.AdvanceClock(time.Hour)
				if _, err := s.srv.SetCell(smartsim.Edit{User: demo.Kim}, sheet, row, col, smartsheet.NumberValue(price)); err != nil {
					t.Fatal(err)
				}
				s.srv.AdvanceClock(time.Minute)
				if i == 2 {
					s.srv.FailNext(smartsim.EndpointAddRows, 1, smartsim.FaultLostResponse)
				}
				sum, err := s.runner(t, nil).Run(ctx)
				if err != nil || len(sum.Changes) != 1 {
					t.Fatalf("run %d = %d changes, %v; want 1", i+1, len(sum.Changes), err)
				}
				ids = append(ids, sum.Changes[0].ChangeID)
			}
			got := s.auditChangeIDs(t)
			for _, id := range ids {
				if got[id] != 1 {
					t.Errorf("change %s is on the audit sheet %d times, want once (ids %v, sheet %v)", id, got[id], ids, got)
				}
			}
			if len(got) != 3 || s.srv.Counter(smartsim.EndpointDeleteRows).Calls != 0 {
				t.Errorf("audit sheet holds %d changes, %d deletes; want 3, 0", len(got), s.srv.Counter(smartsim.EndpointDeleteRows).Calls)
			}

			// Recorded but not written (the sheet was unreachable), then four writers at once.
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.setup.Script(s.srv); err != nil {
				t.Fatal(err)
			}
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.runner(t, func(o *pipeline.Options) { o.AuditSheetID = 12345 }).Run(ctx); err == nil {
				t.Fatal("Run() with a missing audit sheet succeeded")
			}
			var wg sync.WaitGroup
			for range 4 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if _, err := s.runner(t, nil).FlushAudit(ctx); err != nil {
						t.Error(err)
					}
				}()
			}
			wg.Wait()
			got = s.auditChangeIDs(t)
			for id, n := range got {
				if n != 1 {
					t.Errorf("change %s is on the audit sheet %d times after concurrent flushes", id, n)
				}
			}
			if len(got) != 13 {
				t.Errorf("audit sheet holds %d changes, want 13", len(got))
			}
			v, err := s.runner(t, nil).Verify(ctx)
			if err != nil || !v.OK() || v.Entries != 13 || v.Matched != 13 {
				t.Fatalf("Verify() = %s, %v; want clean, 13 entries and rows", v.Summary(), err)
			}

			tam, err := demo.Tamper(s.srv, s.auditID)
			if err != nil {
				t.Fatal(err)
			}
			v, err = s.runner(t, nil).Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			named := map[audit.ProblemKind]string{}
			for _, p := range v.Problems {
				named[p.Kind] = p.ChangeID
			}
			want := map[audit.ProblemKind]string{audit.ProblemDeletedRow: tam.Deleted, audit.ProblemAlteredCell: tam.Altered, audit.ProblemForgedRow: tam.Forged}
			if v.Total() != 3 || named[audit.ProblemDeletedRow] != want[audit.ProblemDeletedRow] ||
				named[audit.ProblemAlteredCell] != want[audit.ProblemAlteredCell] || named[audit.ProblemForgedRow] != want[audit.ProblemForgedRow] {
				t.Errorf("Verify() problems = %v, want %v", named, want)
			}
		})

		t.Run("an edited ledger entry is named", func(t *testing.T) {
			s := newLedgerStack(t, api)
			if _, err := s.runner(t, nil).Run(ctx); err != nil {
				t.Fatal(err)
			}
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.setup.Script(s.srv); err != nil {
				t.Fatal(err)
			}
			s.srv.AdvanceClock(time.Hour)
			if _, err := s.runner(t, nil).Run(ctx); err != nil {
				t.Fatal(err)
			}
			// Someone with table access lowers an entry's Money Impact.
			heads, err := s.store.LedgerEntriesBySeq(ctx, []uint64{3})
			if err != nil {
				t.Fatal(err)
			}
			e := heads[3]
			for i := range e.Fields {
				if e.Fields[i].Title == audit.LogImpact {
					e.Fields[i].Value = "1.00"
				}
			}
			item, _ := attributevalue.MarshalMap(map[string]string{"pk": "LEDGER", "sk": "SEQ#00000000000000000003", "data": string(audit.EncodeEntry(e))})
			if _, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.store.Table()), Item: item}); err != nil {
				t.Fatal(err)
			}
			v, err := s.runner(t, nil).Verify(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if v.Counts[audit.ProblemAlteredEntry] != 1 || v.LedgerOK() {
				t.Errorf("Verify() = %s; want 1 ALTERED_ENTRY", v.Summary())
			}
			// Another entry's bytes are mangled past decoding: named too,
			// and verification reads on.
			item, _ = attributevalue.MarshalMap(map[string]string{"pk": "LEDGER", "sk": "SEQ#00000000000000000005", "data": "not an entry"})
			if _, err := api.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.store.Table()), Item: item}); err != nil {
				t.Fatal(err)
			}
			v, err = s.runner(t, nil).Verify(ctx)
			if err != nil {
				t.Fatalf("Verify() with an unreadable entry: %v", err)
			}
			var seqs []uint64
			for _, p := range v.Problems {
				if p.Kind == audit.ProblemAlteredEntry {
					seqs = append(seqs, p.Seq)
				}
			}
			if !slices.Equal(seqs, []uint64{3, 5}) || v.Counts[audit.ProblemBrokenChain] != 0 {
				t.Errorf("Verify() = %s, altered entries %v; want entries 3 and 5 altered, no broken chain", v.Summary(), seqs)
			}
		})
	})
}

// failEntry fails the put of one ledger entry (a throttle the SDK gave up
// on, a function killed mid-append), and loses the answer of another (the
// put applied, the error seen).
type failEntry struct {
	dynamo.API
	fail, lose string // sort keys
}

func (f *failEntry) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	if sk, ok := in.Item["sk"].(*types.AttributeValueMemberS); ok {
		switch sk.Value {
		case f.fail:
			f.fail = ""
			return nil, errors.New("put failed")
		case f.lose:
			f.lose = ""
			if _, err := f.API.PutItem(ctx, in, opts...); err != nil {
				return nil, err
			}
			return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("answer lost")}
		}
	}
	return f.API.PutItem(ctx, in, opts...)
}

// TestAppendStopsAtTheFirstFailure: an append that fails part way leaves a
// prefix of its entries and no gap; the next append continues from there;
// an entry whose put was applied but answered with an error counts as put.
func TestAppendStopsAtTheFirstFailure(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		f := &failEntry{API: api, fail: "SEQ#00000000000000000004", lose: "SEQ#00000000000000000002"}
		s := dynamo.New(f, mustTable(t, api), dynamo.Options{Backoff: time.Millisecond})
		var head audit.LedgerEntry
		var entries []audit.LedgerEntry
		for i := range 8 {
			c := testChange(fmt.Sprint("c", i))
			head = audit.NextEntry(head, audit.EntryChange, c.ChangeID, t0, audit.LogFields(c, time.UTC))
			entries = append(entries, head)
		}
		if err := s.AppendLedger(ctx, entries); err == nil {
			t.Fatal("AppendLedger() with a failing put = nil, want the error")
		}
		got, ok, err := s.LedgerHead(ctx)
		if err != nil || !ok || got.Seq != 3 {
			t.Fatalf("LedgerHead() after the failure = %d, %v, %v; want entry 3 (a prefix, no gap)", got.Seq, ok, err)
		}
		if err := s.AppendLedger(ctx, entries[3:]); err != nil {
			t.Fatalf("AppendLedger(the rest) = %v", err)
		}
		var check audit.ChainCheck
		var problems []audit.Problem
		n := 0
		if err := s.LedgerEntries(ctx, 1, func(e audit.LedgerEntry) error { n++; problems = append(problems, check.Add(e)...); return nil }); err != nil {
			t.Fatal(err)
		}
		if n != 8 || len(problems) != 0 {
			t.Errorf("ledger = %d entries, problems %v; want 8, a sound chain", n, problems)
		}
	})
}
