package demo_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/google/go-cmp/cmp"
)

// memQueue is an in-memory SheetQueue (a fake of our own port); the SQS
// adapter is proven against moto and the whole chain through the Lambda
// runtime emulator elsewhere.
type memQueue struct {
	mu     sync.Mutex
	sheets []pipeline.SheetWork
}

func (q *memQueue) SendSheetWork(_ context.Context, w pipeline.SheetWork) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sheets = append(q.sheets, w)
	return nil
}

type memPublisher struct {
	mu     sync.Mutex
	events []pipeline.RunCompleted
}

func (p *memPublisher) RunCompleted(_ context.Context, e pipeline.RunCompleted) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, e)
	return nil
}

// auditRowsWithoutRun is the audit sheet's content minus the Run ID and the
// Seal (which seals the run id, the time and the order of sealing), sorted:
// what two runs of the same scenario must agree on.
func auditRowsWithoutRun(t *testing.T, s *stack) []string {
	rows := s.auditRows(t)
	out := make([]string, 0, len(rows))
	for _, r := range rows {
		delete(r, audit.LogRunID)
		delete(r, audit.LogSeal)
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		line := ""
		for _, k := range keys {
			line += fmt.Sprintf("%s=%s|", k, r[k])
		}
		out = append(out, line)
	}
	sort.Strings(out)
	return out
}

// TestChainMatchesLocalRun runs the demo scenario through the serverless
// stages — every sheet's work delivered twice in random order, one sheet
// worker "killed" after writing its audit rows — and through the local run,
// and requires the same audit rows and exactly one AuditRunCompleted.
func TestChainMatchesLocalRun(t *testing.T) {
	size := demo.Size{Sheets: 3, Rows: 600, Weeks: 4}
	local := newStack(t, size)
	chain := newStack(t, size)
	for _, s := range []*stack{local, chain} {
		s.run(t, nil) // baseline, the same way for both
		s.srv.AdvanceClock(time.Hour)
		if _, err := s.setup.Script(s.srv); err != nil {
			t.Fatal(err)
		}
		s.srv.AdvanceClock(time.Hour)
	}
	local.run(t, nil)

	ctx := context.Background()
	q, pub := &memQueue{}, &memPublisher{}
	killed := false
	r := chain.runner(t, func(o *pipeline.Options) {
		o.AfterAuditWrite = func() error {
			if !killed {
				killed = true
				return errors.New("killed mid-sheet")
			}
			return nil
		}
	})
	run, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, chain.store, pub)
	if err != nil {
		t.Fatal(err)
	}
	if run.Batches == 0 || len(q.sheets) != run.Batches {
		t.Fatalf("scan queued %d sheets, run says %d", len(q.sheets), run.Batches)
	}
	deliveries := append(append([]pipeline.SheetWork{}, q.sheets...), q.sheets...)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
	failed := 0
	for i := 0; i < len(deliveries); i++ {
		w := deliveries[i]
		w.Attempt++
		if _, err := r.ProcessSheet(ctx, w, q, chain.store, pub); err != nil {
			failed++ // stays on the queue: redelivered below
			deliveries = append(deliveries, w)
		}
	}
	if failed != 1 || !killed {
		t.Errorf("%d analyze invocations failed, want exactly the killed one", failed)
	}
	if len(pub.events) != 1 || pub.events[0].RunID != run.RunID {
		t.Fatalf("AuditRunCompleted events = %+v, want exactly one for %s", pub.events, run.RunID)
	}
	if diff := cmp.Diff(auditRowsWithoutRun(t, local), auditRowsWithoutRun(t, chain)); diff != "" {
		t.Errorf("chain and local run wrote different audit rows (-local +chain):\n%s", diff)
	}
	rec, ok, err := chain.store.Run(ctx, run.RunID)
	if err != nil || !ok || rec.FinishedAt.IsZero() || rec.Changes != 10 || len(rec.PendingStates) != 0 {
		t.Errorf("run record = %+v, %v, %v; want finished with 10 changes", rec, ok, err)
	}
	// Watermarks moved: the next scan of unchanged sheets queues nothing.
	chain.srv.AdvanceClock(time.Hour)
	q2 := &memQueue{}
	if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q2, chain.store, pub); err != nil {
		t.Fatal(err)
	}
	if len(q2.sheets) != 0 || len(pub.events) != 2 {
		t.Errorf("next scan queued %d sheets and announced %d runs in all; want 0 and 2", len(q2.sheets), len(pub.events))
	}
}
