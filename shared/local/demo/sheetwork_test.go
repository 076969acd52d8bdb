package demo_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/local/demo"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
)

// pageCounter is the Smartsheet client, counting the GETs of source sheets
// (the audit sheet's reads are not the scan's).
type pageCounter struct {
	*smartsheet.Client
	audit int64
	n     atomic.Int64
}

func (c *pageCounter) GetSheet(ctx context.Context, id int64, o smartsheet.GetSheetOptions) (*smartsheet.Sheet, bool, error) {
	if id != c.audit {
		c.n.Add(1)
	}
	return c.Client.GetSheet(ctx, id, o)
}

// countingRunner is s.runner on a client that counts source-sheet GETs.
func (s *stack) countingRunner(t *testing.T, mod func(*pipeline.Options)) (*pipeline.Runner, *pageCounter) {
	t.Helper()
	c := &pageCounter{Client: s.client, audit: s.auditID}
	o := pipeline.Options{
		Audit: audit.DefaultConfig(), SourceFolderIDs: []int64{s.setup.Gen.FolderID}, AuditSheetID: s.auditID,
		Clock: s.srv.Now, Logger: slog.New(slog.DiscardHandler), Signer: s.signer, Digests: s.digests, ReadBackDelay: time.Millisecond,
		Stats: s.client.Stats,
	}
	if mod != nil {
		mod(&o)
	}
	r, err := pipeline.New(c, s.store, o)
	if err != nil {
		t.Fatal(err)
	}
	return r, c
}

// The scan at scale, through the real client and simulator: a sheet that
// cannot be read does not stop the others, and a sheet's scan cut short
// resumes at its checkpoint.

// unreadableFindings are the SHEET_UNREADABLE findings of fs, by sheet.
func unreadableFindings(fs []audit.Finding) map[int64]bool {
	out := map[int64]bool{}
	for _, f := range fs {
		if f.Kind == audit.FindingSheetUnreadable {
			out[f.SheetID] = true
		}
	}
	return out
}

// TestUnreadableSheetDoesNotStopTheOthers: one of five configured sheets
// answers 1006 (deleted). The local run, the serverless scan (the sheet
// known: its version check fails) and the sheet worker (a first scan: its
// page fails) each audit the other four and name the fifth in a finding;
// the serverless run still completes, once.
func TestUnreadableSheetDoesNotStopTheOthers(t *testing.T) {
	ctx := context.Background()
	size := demo.Size{Sheets: 5, Rows: 60, Weeks: 2}
	sources := func(s *stack) func(*pipeline.Options) {
		return func(o *pipeline.Options) { o.SourceFolderIDs, o.SourceSheetIDs = nil, s.setup.Gen.SheetIDs }
	}

	t.Run("local run", func(t *testing.T) {
		s := newStack(t, size)
		gone := s.setup.Gen.SheetIDs[4]
		if err := s.srv.DeleteSheet(gone); err != nil {
			t.Fatal(err)
		}
		sum := s.run(t, sources(s))
		if got := unreadableFindings(sum.Findings); len(got) != 1 || !got[gone] {
			t.Errorf("findings = %v, want SHEET_UNREADABLE for sheet %d alone", sum.Findings, gone)
		}
		for _, f := range sum.Findings {
			if f.Kind == audit.FindingSheetUnreadable && (!strings.Contains(f.Message, "not shared with the token's user") ||
				!strings.Contains(f.Message, "check SOURCE_SHEET_IDS")) {
				t.Errorf("finding %q does not say what to check", f.Message)
			}
		}
		for _, id := range s.setup.Gen.SheetIDs[:4] {
			if st, ok, err := s.store.SheetState(ctx, id); err != nil || !ok || st.RowCount == 0 {
				t.Errorf("sheet %d: state %+v, %v, %v; want it audited", id, st, ok, err)
			}
		}
	})

	t.Run("serverless: a known sheet's version check, a first scan's page", func(t *testing.T) {
		s := newStack(t, size)
		s.run(t, sources(s)) // every sheet known
		known := s.setup.Gen.SheetIDs[3]
		if err := s.srv.DeleteSheet(known); err != nil {
			t.Fatal(err)
		}
		s.srv.AdvanceClock(time.Hour)
		if _, err := s.setup.Script(s.srv); err != nil {
			t.Fatal(err)
		}
		s.srv.AdvanceClock(time.Hour)
		// A fifth source never read before, gone by now: its first scan fails in the worker.
		r := s.runner(t, func(o *pipeline.Options) {
			o.SourceFolderIDs, o.SourceSheetIDs = nil, append(s.setup.Gen.SheetIDs[:4:4], 1006)
		})
		q, pub := &memQueue{}, &memPublisher{}
		run, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, s.store, pub)
		if err != nil {
			t.Fatal(err)
		}
		if got := unreadableFindings(run.Findings); len(got) != 1 || !got[known] {
			t.Errorf("scan findings = %v, want SHEET_UNREADABLE for sheet %d", run.Findings, known)
		}
		for i := 0; i < len(q.sheets); i++ {
			w := q.sheets[i]
			w.Attempt = 1
			if _, err := r.ProcessSheet(ctx, w, q, s.store, pub); err != nil {
				t.Fatalf("ProcessSheet(%d) error = %v", w.Sheet.ID, err)
			}
		}
		rec, ok, err := s.store.Run(ctx, run.RunID)
		if err != nil || !ok || rec.FinishedAt.IsZero() || len(pub.events) != 1 {
			t.Fatalf("run = %+v, %v, %v, %d events; want it completed once", rec, ok, err, len(pub.events))
		}
		if got := unreadableFindings(rec.Findings); len(got) != 2 || !got[known] || !got[1006] {
			t.Errorf("run findings = %v, want SHEET_UNREADABLE for sheets %d and 1006", rec.Findings, known)
		}
		if rec.Changes == 0 {
			t.Error("the run recorded no change: the other sheets were not audited")
		}
	})
}

// TestSheetScanResumesAtItsCheckpoint: a first scan of sheets of six pages
// each. A worker killed after its third page is delivered again and reads
// pages 4 to 6 only; a worker whose slice ends after each page hands the rest
// on, page by page, and every page is read once; a local run killed mid-sheet
// is resumed by the next run.
func TestSheetScanResumesAtItsCheckpoint(t *testing.T) {
	ctx := context.Background()
	size := demo.Size{Sheets: 3, Rows: 300, Weeks: 2}
	const pageSize, pages = 50, 6
	crash := errors.New("killed")

	t.Run("a killed worker, delivered again", func(t *testing.T) {
		s := newStack(t, size)
		sheet := s.setup.Gen.SheetIDs[0]
		killed := false
		r, c := s.countingRunner(t, func(o *pipeline.Options) {
			o.PageSize = pageSize
			o.AfterPage = func(id int64, page int) error {
				if id == sheet && page == 3 && !killed {
					killed = true
					return crash
				}
				return nil
			}
		})
		q, pub := &memQueue{}, &memPublisher{}
		if _, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, s.store, pub); err != nil {
			t.Fatal(err)
		}
		w := q.sheets[0]
		if w.Sheet.ID != sheet {
			t.Fatalf("first work item is sheet %d, want %d", w.Sheet.ID, sheet)
		}
		w.Attempt = 1
		before := c.n.Load()
		if _, err := r.ProcessSheet(ctx, w, q, s.store, pub); !errors.Is(err, crash) {
			t.Fatalf("ProcessSheet() with a crash after page 3 = %v", err)
		}
		if n := c.n.Load() - before; n != 3 {
			t.Errorf("the killed worker read %d pages, want 3", n)
		}
		w.Attempt = 2
		before = c.n.Load()
		res, err := r.ProcessSheet(ctx, w, q, s.store, pub)
		if err != nil {
			t.Fatal(err)
		}
		if n := c.n.Load() - before; n != pages-3 {
			t.Errorf("the next delivery read %d pages, want %d (4 to %d): it resumes at the checkpoint", n, pages-3, pages)
		}
		if res.Rows != size.Rows || res.Pages != pages {
			t.Errorf("result = %d rows in %d pages, want %d in %d", res.Rows, res.Pages, size.Rows, pages)
		}
		if ids, err := s.store.BaselineRowIDs(ctx, sheet); err != nil || len(ids) != size.Rows {
			t.Errorf("baselines = %d, %v; want %d", len(ids), err, size.Rows)
		}
	})

	t.Run("a slice of one page: the rest handed on", func(t *testing.T) {
		s := newStack(t, size)
		r, c := s.countingRunner(t, func(o *pipeline.Options) { o.PageSize, o.SheetSlice = pageSize, time.Nanosecond })
		q, pub := &memQueue{}, &memPublisher{}
		run, err := r.ScanToQueue(ctx, pipeline.ScanRequest{}, q, s.store, pub)
		if err != nil {
			t.Fatal(err)
		}
		before := c.n.Load()
		invocations := 0
		for i := 0; i < len(q.sheets); i++ {
			w := q.sheets[i]
			w.Attempt = 1
			invocations++
			g := c.n.Load()
			if _, err := r.ProcessSheet(ctx, w, q, s.store, pub); err != nil {
				t.Fatal(err)
			}
			if n := c.n.Load() - g; n != 1 {
				t.Errorf("invocation %d read %d pages, want 1", invocations, n)
			}
		}
		if n, want := c.n.Load()-before, int64(size.Sheets*pages); n != want || invocations != size.Sheets*pages {
			t.Errorf("%d invocations read %d pages, want %d and %d: each page once", invocations, n, size.Sheets*pages, want)
		}
		rec, _, _ := s.store.Run(ctx, run.RunID)
		if rec.FinishedAt.IsZero() || rec.RowsScanned != size.Sheets*size.Rows || len(pub.events) != 1 {
			t.Errorf("run = finished %v, %d rows, %d events; want finished, %d rows, 1 event", !rec.FinishedAt.IsZero(), rec.RowsScanned, len(pub.events), size.Sheets*size.Rows)
		}
		// The run's figures count every worker's calls, continuations
		// included: each page read (a first scan has no version to check).
		if got, want := rec.APICalls["GET /sheets/{sheetId}"], size.Sheets*pages; got != want {
			t.Errorf("run's GET /sheets/{sheetId} calls = %d, want %d: every page the workers read", got, want)
		}
	})

	t.Run("a local run killed mid-sheet, resumed by the next run", func(t *testing.T) {
		s := newStack(t, size)
		sheet := s.setup.Gen.SheetIDs[1]
		if _, err := s.runner(t, func(o *pipeline.Options) {
			o.PageSize = pageSize
			o.AfterPage = func(id int64, page int) error {
				if id == sheet && page == 4 {
					return crash
				}
				return nil
			}
		}).Run(ctx); !errors.Is(err, crash) {
			t.Fatalf("Run() with a crash = %v", err)
		}
		s.srv.AdvanceClock(time.Minute)
		r, c := s.countingRunner(t, func(o *pipeline.Options) { o.PageSize = pageSize })
		sum, err := r.Run(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Sheet 1 was done (unchanged: one call), sheet 2 resumes at page 5
		// (two pages), sheet 3 is read whole (six).
		if n, want := c.n.Load(), int64(1+2+pages); n != want {
			t.Errorf("the next run read %d pages, want %d", n, want)
		}
		if ids, err := s.store.BaselineRowIDs(ctx, sheet); err != nil || len(ids) != size.Rows || len(sum.Changes) != 0 {
			t.Errorf("sheet %d: %d baselines, %v, %d changes; want %d and none", sheet, len(ids), err, len(sum.Changes), size.Rows)
		}
	})
}
