package pipeline

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
)

// The fakes of the pipeline's ports are function-field fakes: one func field
// per method, which the method calls. Their constructors fill every field
// with an in-memory implementation good enough for a whole run, so a test
// replaces only the one call it makes fail and everything before it runs
// for real.

// errBoom is the cause a fake returns; tests check that errors.Is reaches it
// through every wrap.
var errBoom = errors.New("boom")

// t0 is the fakes' clock.
var t0 = time.Date(2026, 11, 30, 15, 0, 0, 0, time.UTC)

// fakeStore is a function-field fake of Store (with its Ledger and Leases).
type fakeStore struct {
	SheetStateFunc         func(ctx context.Context, sheetID int64) (SheetState, bool, error)
	BaselineRowIDsFunc     func(ctx context.Context, sheetID int64) ([]int64, error)
	BaselinesFunc          func(ctx context.Context, sheetID int64, rowIDs []int64) (map[int64]audit.Baseline, error)
	CommitFunc             func(ctx context.Context, c Commit) ([]audit.Change, error)
	PendingFunc            func(ctx context.Context) ([]ChangeRecord, error)
	ChangeRecordsFunc      func(ctx context.Context, changeIDs []string) (map[string]ChangeRecord, error)
	MarkSealedFunc         func(ctx context.Context, seals []Sealed) error
	MarkWrittenFunc        func(ctx context.Context, rows []WrittenRow) error
	ChangesFunc            func(ctx context.Context, from, to time.Time) ([]ChangeRecord, error)
	PutRunFunc             func(ctx context.Context, r RunRecord) error
	SaveSheetStateFunc     func(ctx context.Context, st SheetState) error
	PutSheetResultFunc     func(ctx context.Context, r SheetResult) error
	SheetResultsFunc       func(ctx context.Context, runID string) ([]SheetResult, error)
	RunFunc                func(ctx context.Context, runID string) (RunRecord, bool, error)
	RunsFunc               func(ctx context.Context, limit int) ([]RunRecord, error)
	MetaFunc               func(ctx context.Context, key string) (string, bool, error)
	PutMetaFunc            func(ctx context.Context, key, value string) error
	LedgerHeadFunc         func(ctx context.Context) (audit.LedgerEntry, bool, error)
	AppendLedgerFunc       func(ctx context.Context, entries []audit.LedgerEntry) error
	LedgerEntriesFunc      func(ctx context.Context, from uint64, fn func(audit.LedgerEntry) error) error
	LedgerEntriesBySeqFunc func(ctx context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error)
	AcquireLeaseFunc       func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	RenewLeaseFunc         func(ctx context.Context, name, holder string, ttl time.Duration) (bool, error)
	ReleaseLeaseFunc       func(ctx context.Context, name, holder string) error
	AlertsSentFunc         func(ctx context.Context, channel string, changeIDs []string) (map[string]time.Time, error)
	MarkAlertsSentFunc     func(ctx context.Context, channel string, changeIDs []string, at time.Time) error
}

var _ Store = (*fakeStore)(nil)

func (f *fakeStore) SheetState(ctx context.Context, sheetID int64) (SheetState, bool, error) {
	return f.SheetStateFunc(ctx, sheetID)
}
func (f *fakeStore) BaselineRowIDs(ctx context.Context, sheetID int64) ([]int64, error) {
	return f.BaselineRowIDsFunc(ctx, sheetID)
}
func (f *fakeStore) Baselines(ctx context.Context, sheetID int64, rowIDs []int64) (map[int64]audit.Baseline, error) {
	return f.BaselinesFunc(ctx, sheetID, rowIDs)
}
func (f *fakeStore) Commit(ctx context.Context, c Commit) ([]audit.Change, error) {
	return f.CommitFunc(ctx, c)
}
func (f *fakeStore) Pending(ctx context.Context) ([]ChangeRecord, error) { return f.PendingFunc(ctx) }
func (f *fakeStore) ChangeRecords(ctx context.Context, ids []string) (map[string]ChangeRecord, error) {
	return f.ChangeRecordsFunc(ctx, ids)
}
func (f *fakeStore) MarkSealed(ctx context.Context, seals []Sealed) error {
	return f.MarkSealedFunc(ctx, seals)
}
func (f *fakeStore) MarkWritten(ctx context.Context, rows []WrittenRow) error {
	return f.MarkWrittenFunc(ctx, rows)
}
func (f *fakeStore) Changes(ctx context.Context, from, to time.Time) ([]ChangeRecord, error) {
	return f.ChangesFunc(ctx, from, to)
}
func (f *fakeStore) PutRun(ctx context.Context, r RunRecord) error { return f.PutRunFunc(ctx, r) }
func (f *fakeStore) SaveSheetState(ctx context.Context, st SheetState) error {
	return f.SaveSheetStateFunc(ctx, st)
}
func (f *fakeStore) PutSheetResult(ctx context.Context, r SheetResult) error {
	return f.PutSheetResultFunc(ctx, r)
}
func (f *fakeStore) SheetResults(ctx context.Context, runID string) ([]SheetResult, error) {
	return f.SheetResultsFunc(ctx, runID)
}
func (f *fakeStore) Run(ctx context.Context, runID string) (RunRecord, bool, error) {
	return f.RunFunc(ctx, runID)
}
func (f *fakeStore) Runs(ctx context.Context, limit int) ([]RunRecord, error) {
	return f.RunsFunc(ctx, limit)
}
func (f *fakeStore) Meta(ctx context.Context, key string) (string, bool, error) {
	return f.MetaFunc(ctx, key)
}
func (f *fakeStore) PutMeta(ctx context.Context, key, value string) error {
	return f.PutMetaFunc(ctx, key, value)
}
func (f *fakeStore) LedgerHead(ctx context.Context) (audit.LedgerEntry, bool, error) {
	return f.LedgerHeadFunc(ctx)
}
func (f *fakeStore) AppendLedger(ctx context.Context, entries []audit.LedgerEntry) error {
	return f.AppendLedgerFunc(ctx, entries)
}
func (f *fakeStore) LedgerEntries(ctx context.Context, from uint64, fn func(audit.LedgerEntry) error) error {
	return f.LedgerEntriesFunc(ctx, from, fn)
}
func (f *fakeStore) LedgerEntriesBySeq(ctx context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error) {
	return f.LedgerEntriesBySeqFunc(ctx, seqs)
}
func (f *fakeStore) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return f.AcquireLeaseFunc(ctx, name, holder, ttl)
}
func (f *fakeStore) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	return f.RenewLeaseFunc(ctx, name, holder, ttl)
}
func (f *fakeStore) ReleaseLease(ctx context.Context, name, holder string) error {
	return f.ReleaseLeaseFunc(ctx, name, holder)
}

func (f *fakeStore) AlertsSent(ctx context.Context, channel string, changeIDs []string) (map[string]time.Time, error) {
	return f.AlertsSentFunc(ctx, channel, changeIDs)
}
func (f *fakeStore) MarkAlertsSent(ctx context.Context, channel string, changeIDs []string, at time.Time) error {
	return f.MarkAlertsSentFunc(ctx, channel, changeIDs, at)
}

// memStore is the in-memory store behind newFakeStore's fields: no expiry,
// no pagination, one mutex.
type memStore struct {
	mu        sync.Mutex
	states    map[int64]SheetState
	baselines map[int64]map[int64]audit.Baseline
	changes   map[string]ChangeRecord
	runs      map[string]RunRecord
	meta      map[string]string
	ledger    []audit.LedgerEntry
	leases    map[string]string
	results   map[string]map[int64]SheetResult
	alerts    map[string]time.Time // channel + "#" + change id → sent at
}

// newFakeStore is a fakeStore whose every field is mem's method.
func newFakeStore() (*fakeStore, *memStore) {
	m := &memStore{states: map[int64]SheetState{}, baselines: map[int64]map[int64]audit.Baseline{},
		changes: map[string]ChangeRecord{}, runs: map[string]RunRecord{}, meta: map[string]string{}, leases: map[string]string{},
		results: map[string]map[int64]SheetResult{}, alerts: map[string]time.Time{}}
	return &fakeStore{
		SheetStateFunc: m.SheetState, BaselineRowIDsFunc: m.BaselineRowIDs, BaselinesFunc: m.Baselines, CommitFunc: m.Commit,
		PendingFunc: m.Pending, ChangeRecordsFunc: m.ChangeRecords, MarkSealedFunc: m.MarkSealed, MarkWrittenFunc: m.MarkWritten,
		ChangesFunc: m.Changes, PutRunFunc: m.PutRun, RunFunc: m.Run, RunsFunc: m.Runs, MetaFunc: m.Meta, PutMetaFunc: m.PutMeta,
		LedgerHeadFunc: m.LedgerHead, AppendLedgerFunc: m.AppendLedger, LedgerEntriesFunc: m.LedgerEntries,
		LedgerEntriesBySeqFunc: m.LedgerEntriesBySeq, AcquireLeaseFunc: m.AcquireLease, RenewLeaseFunc: m.RenewLease,
		ReleaseLeaseFunc: m.ReleaseLease, SaveSheetStateFunc: m.SaveSheetState, PutSheetResultFunc: m.PutSheetResult,
		SheetResultsFunc: m.SheetResults, AlertsSentFunc: m.AlertsSent, MarkAlertsSentFunc: m.MarkAlertsSent,
	}, m
}

func (m *memStore) SheetState(_ context.Context, id int64) (SheetState, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, ok := m.states[id]
	return st, ok, nil
}

func (m *memStore) BaselineRowIDs(_ context.Context, id int64) ([]int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Sorted(maps.Keys(m.baselines[id])), nil
}

func (m *memStore) Baselines(_ context.Context, id int64, rowIDs []int64) (map[int64]audit.Baseline, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int64]audit.Baseline{}
	for _, r := range rowIDs {
		if b, ok := m.baselines[id][r]; ok {
			out[r] = b
		}
	}
	return out, nil
}

func (m *memStore) Commit(_ context.Context, c Commit) ([]audit.Change, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var fresh []audit.Change
	for _, ch := range c.Changes {
		if _, ok := m.changes[ch.ChangeID]; !ok {
			m.changes[ch.ChangeID] = ChangeRecord{Change: ch, RecordedAt: t0}
			fresh = append(fresh, ch)
		}
	}
	if m.baselines[c.SheetID] == nil {
		m.baselines[c.SheetID] = map[int64]audit.Baseline{}
	}
	for _, b := range c.PutBaselines {
		m.baselines[c.SheetID][b.RowID] = b
	}
	for _, id := range c.DeleteBaselines {
		delete(m.baselines[c.SheetID], id)
	}
	if c.State != nil {
		st := *c.State
		st.RowCount = len(m.baselines[c.SheetID])
		m.states[c.SheetID] = st
	}
	return fresh, nil
}

func (m *memStore) records(keep func(ChangeRecord) bool) []ChangeRecord {
	var out []ChangeRecord
	for _, r := range m.changes {
		if keep(r) {
			out = append(out, r)
		}
	}
	SortChangeRecords(out)
	return out
}

func (m *memStore) Pending(context.Context) ([]ChangeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records(func(r ChangeRecord) bool { return !r.Written }), nil
}

func (m *memStore) ChangeRecords(_ context.Context, ids []string) (map[string]ChangeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]ChangeRecord{}
	for _, id := range ids {
		if r, ok := m.changes[id]; ok {
			out[id] = r
		}
	}
	return out, nil
}

func (m *memStore) MarkSealed(_ context.Context, seals []Sealed) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range seals {
		if r, ok := m.changes[s.ChangeID]; ok {
			r.Seq, r.Hash = s.Seq, s.Hash
			m.changes[s.ChangeID] = r
		}
	}
	return nil
}

func (m *memStore) MarkWritten(_ context.Context, rows []WrittenRow) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range rows {
		r, ok := m.changes[w.ChangeID]
		if !ok {
			continue
		}
		r.Written = true
		if w.RowID != 0 {
			r.AuditRowID = w.RowID
		}
		if w.Seq != 0 {
			r.Seq, r.Hash = w.Seq, w.Hash
		}
		m.changes[w.ChangeID] = r
	}
	return nil
}

func (m *memStore) Changes(_ context.Context, from, to time.Time) ([]ChangeRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.records(func(r ChangeRecord) bool {
		at := r.Change.DetectedAt
		return !at.Before(from) && (to.IsZero() || at.Before(to))
	}), nil
}

func (m *memStore) SaveSheetState(_ context.Context, st SheetState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.states[st.SheetID] = st
	return nil
}

func (m *memStore) PutSheetResult(_ context.Context, r SheetResult) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.results[r.RunID] == nil {
		m.results[r.RunID] = map[int64]SheetResult{}
	}
	if _, ok := m.results[r.RunID][r.Sheet.ID]; !ok {
		m.results[r.RunID][r.Sheet.ID] = r
	}
	return nil
}

func (m *memStore) SheetResults(_ context.Context, runID string) ([]SheetResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []SheetResult
	for _, id := range slices.Sorted(maps.Keys(m.results[runID])) {
		out = append(out, m.results[runID][id])
	}
	return out, nil
}

func (m *memStore) PutRun(_ context.Context, r RunRecord) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.runs[r.RunID] = r
	return nil
}

func (m *memStore) Run(_ context.Context, id string) (RunRecord, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.runs[id]
	return r, ok, nil
}

func (m *memStore) Runs(_ context.Context, limit int) ([]RunRecord, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ids := slices.Sorted(maps.Keys(m.runs))
	slices.Reverse(ids)
	var out []RunRecord
	for _, id := range ids[:min(limit, len(ids))] {
		out = append(out, m.runs[id])
	}
	return out, nil
}

func (m *memStore) Meta(_ context.Context, key string) (string, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	v, ok := m.meta[key]
	return v, ok, nil
}

func (m *memStore) PutMeta(_ context.Context, key, value string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.meta[key] = value
	return nil
}

func (m *memStore) LedgerHead(context.Context) (audit.LedgerEntry, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.ledger) == 0 {
		return audit.LedgerEntry{}, false, nil
	}
	return m.ledger[len(m.ledger)-1], true, nil
}

func (m *memStore) AppendLedger(_ context.Context, entries []audit.LedgerEntry) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range entries {
		if e.Seq != uint64(len(m.ledger))+1 {
			return fmt.Errorf("append entry %d after %d: %w", e.Seq, len(m.ledger), ErrLedgerConflict)
		}
		m.ledger = append(m.ledger, e)
	}
	return nil
}

func (m *memStore) LedgerEntries(_ context.Context, from uint64, fn func(audit.LedgerEntry) error) error {
	m.mu.Lock()
	entries := slices.Clone(m.ledger)
	m.mu.Unlock()
	for _, e := range entries {
		if e.Seq < from {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	return nil
}

func (m *memStore) LedgerEntriesBySeq(_ context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[uint64]audit.LedgerEntry{}
	for _, s := range seqs {
		if s >= 1 && s <= uint64(len(m.ledger)) {
			out[s] = m.ledger[s-1]
		}
	}
	return out, nil
}

func (m *memStore) AcquireLease(_ context.Context, name, holder string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h := m.leases[name]; h != "" && h != holder {
		return false, nil
	}
	m.leases[name] = holder
	return true, nil
}

func (m *memStore) RenewLease(_ context.Context, name, holder string, _ time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.leases[name] == holder, nil
}

func (m *memStore) ReleaseLease(_ context.Context, name, holder string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.leases[name] == holder {
		delete(m.leases, name)
	}
	return nil
}

func (m *memStore) AlertsSent(_ context.Context, channel string, ids []string) (map[string]time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]time.Time{}
	for _, id := range ids {
		if at, ok := m.alerts[channel+"#"+id]; ok {
			out[id] = at
		}
	}
	return out, nil
}

func (m *memStore) MarkAlertsSent(_ context.Context, channel string, ids []string, at time.Time) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, id := range ids {
		if _, ok := m.alerts[channel+"#"+id]; !ok {
			m.alerts[channel+"#"+id] = at
		}
	}
	return nil
}
