// Package bolt is the embedded store of the local run: one bbolt file under
// STATE_DIR holding baselines, change records, scan watermarks and runs.
package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	bbolt "go.etcd.io/bbolt"
)

// FileName is the store's file name inside STATE_DIR.
const FileName = "billing-audit.db"

var (
	bucketSheets    = []byte("sheets")
	bucketBaselines = []byte("baselines") // nested: one bucket per sheet id
	bucketChanges   = []byte("changes")
	bucketPending   = []byte("pending") // changeID → recordedAt key order
	bucketRuns      = []byte("runs")
	bucketMeta      = []byte("meta")
	bucketLedger    = []byte("ledger") // seq (8 bytes, big-endian) → entry
	// bucketDetected indexes changes by detection time: "<detectedAt>#<id>"
	// (sortable UTC) → nil, so Changes(from, to) reads only its range.
	bucketDetected = []byte("detected")
)

// detectedForm is the detection time in bucketDetected keys: fixed width, so
// byte order is time order.
const detectedForm = "2006-01-02T15:04:05.000000000Z"

func detectedKey(c audit.Change) []byte {
	return []byte(c.DetectedAt.UTC().Format(detectedForm) + "#" + c.ChangeID)
}

// Store is a pipeline.Store in a bbolt file.
type Store struct {
	db  *bbolt.DB
	now func() time.Time

	// leases live in memory: bbolt locks its file for one process, so no
	// other process can hold one, and a lease of a process that died dies
	// with it.
	leaseMu sync.Mutex
	leases  map[string]lease
}

type lease struct {
	holder string
	until  time.Time
}

var _ pipeline.Store = (*Store)(nil)

// ErrInUse is the error of Open when another process holds the store: bbolt
// locks its file, and one process at a time may have it open.
var ErrInUse = errors.New("the store is in use by another process")

// openTimeout is how long Open waits for another process to let go of the
// store: long enough for a command that is just finishing, short enough that
// a command started beside a long-running one (`billing-audit listen`) says
// so at once.
const openTimeout = time.Second

// Open opens (creating if needed) the store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("create state dir: %w", err)
	}
	path := filepath.Join(dir, FileName)
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: openTimeout})
	if errors.Is(err, bbolt.ErrTimeout) {
		return nil, fmt.Errorf("open store %s: %w", path, ErrInUse)
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketSheets, bucketBaselines, bucketChanges, bucketPending, bucketRuns, bucketMeta, bucketLedger} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return indexDetected(tx)
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("init store: %w", err)
	}
	return &Store{db: db, now: func() time.Time { return time.Now().UTC() }, leases: map[string]lease{}}, nil
}

// indexDetected creates the detection-time index, from the recorded changes
// when a file of an earlier version has none.
func indexDetected(tx *bbolt.Tx) error {
	if tx.Bucket(bucketDetected) != nil {
		return nil
	}
	idx, err := tx.CreateBucket(bucketDetected)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketChanges).ForEach(func(_, v []byte) error {
		var r pipeline.ChangeRecord
		if err := json.Unmarshal(v, &r); err != nil {
			return err
		}
		return idx.Put(detectedKey(r.Change), nil)
	})
}

// Close closes the file.
func (s *Store) Close() error { return s.db.Close() }

// Path is the store's file.
func (s *Store) Path() string { return s.db.Path() }

func idKey(id int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(id))
	return b[:]
}

func sheetKey(id int64) []byte { return []byte(strconv.FormatInt(id, 10)) }

// SheetState returns the stored state of a sheet.
func (s *Store) SheetState(_ context.Context, sheetID int64) (pipeline.SheetState, bool, error) {
	var st pipeline.SheetState
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketSheets).Get(sheetKey(sheetID))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &st)
	})
	if err != nil {
		return st, false, fmt.Errorf("read sheet state %d: %w", sheetID, err)
	}
	return st, found, nil
}

// BaselineRowIDs lists the rows of a sheet that have a baseline, in id order.
func (s *Store) BaselineRowIDs(_ context.Context, sheetID int64) ([]int64, error) {
	var ids []int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketBaselines).Bucket(sheetKey(sheetID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, _ []byte) error {
			ids = append(ids, int64(binary.BigEndian.Uint64(k)))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list baselines of sheet %d: %w", sheetID, err)
	}
	return ids, nil
}

// Baselines returns the baselines of the given rows that have one.
func (s *Store) Baselines(_ context.Context, sheetID int64, rowIDs []int64) (map[int64]audit.Baseline, error) {
	out := make(map[int64]audit.Baseline, len(rowIDs))
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketBaselines).Bucket(sheetKey(sheetID))
		if b == nil {
			return nil
		}
		for _, id := range rowIDs {
			v := b.Get(idKey(id))
			if v == nil {
				continue
			}
			var bl audit.Baseline
			if err := json.Unmarshal(v, &bl); err != nil {
				return fmt.Errorf("row %d: %w", id, err)
			}
			out[id] = bl
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read baselines of sheet %d: %w", sheetID, err)
	}
	return out, nil
}

// Commit writes scan results in one transaction. It returns the changes whose
// Change ID was not recorded before.
func (s *Store) Commit(_ context.Context, c pipeline.Commit) ([]audit.Change, error) {
	var fresh []audit.Change
	now := s.now()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		fresh = fresh[:0]
		changes, pending := tx.Bucket(bucketChanges), tx.Bucket(bucketPending)
		for _, ch := range c.Changes {
			key := []byte(ch.ChangeID)
			if changes.Get(key) != nil {
				continue
			}
			v, err := json.Marshal(pipeline.ChangeRecord{Change: ch, RecordedAt: now})
			if err != nil {
				return err
			}
			if err := changes.Put(key, v); err != nil {
				return err
			}
			if err := pending.Put(key, []byte(now.Format(time.RFC3339Nano))); err != nil {
				return err
			}
			if err := tx.Bucket(bucketDetected).Put(detectedKey(ch), nil); err != nil {
				return err
			}
			fresh = append(fresh, ch)
		}
		if len(c.PutBaselines) > 0 || len(c.DeleteBaselines) > 0 {
			b, err := tx.Bucket(bucketBaselines).CreateBucketIfNotExists(sheetKey(c.SheetID))
			if err != nil {
				return err
			}
			for _, bl := range c.PutBaselines {
				if bl.SheetID != c.SheetID {
					return fmt.Errorf("baseline of sheet %d in a commit for sheet %d", bl.SheetID, c.SheetID)
				}
				v, err := json.Marshal(bl)
				if err != nil {
					return err
				}
				if err := b.Put(idKey(bl.RowID), v); err != nil {
					return err
				}
			}
			for _, id := range c.DeleteBaselines {
				if err := b.Delete(idKey(id)); err != nil {
					return err
				}
			}
		}
		if c.State != nil {
			st := *c.State
			st.RowCount = 0
			if b := tx.Bucket(bucketBaselines).Bucket(sheetKey(st.SheetID)); b != nil {
				c := b.Cursor()
				for k, _ := c.First(); k != nil; k, _ = c.Next() {
					st.RowCount++
				}
			}
			v, err := json.Marshal(st)
			if err != nil {
				return err
			}
			return tx.Bucket(bucketSheets).Put(sheetKey(st.SheetID), v)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("commit scan of sheet %d: %w", c.SheetID, err)
	}
	return fresh, nil
}

// Pending returns changes not yet on the audit sheet, oldest first.
func (s *Store) Pending(_ context.Context) ([]pipeline.ChangeRecord, error) {
	var out []pipeline.ChangeRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		changes := tx.Bucket(bucketChanges)
		return tx.Bucket(bucketPending).ForEach(func(k, _ []byte) error {
			var r pipeline.ChangeRecord
			if err := json.Unmarshal(changes.Get(k), &r); err != nil {
				return fmt.Errorf("change %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read pending changes: %w", err)
	}
	pipeline.SortChangeRecords(out)
	return out, nil
}

// MarkWritten flags changes as written to the audit sheet, as the given rows.
func (s *Store) MarkWritten(_ context.Context, rows []pipeline.WrittenRow) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		pending := tx.Bucket(bucketPending)
		for _, w := range rows {
			if err := updateRecord(tx, w.ChangeID, func(r *pipeline.ChangeRecord) {
				r.Written = true
				if w.RowID != 0 {
					r.AuditRowID = w.RowID
				}
				if w.Seq != 0 {
					r.Seq, r.Hash = w.Seq, w.Hash
				}
			}); err != nil {
				return err
			}
			if err := pending.Delete([]byte(w.ChangeID)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark changes written: %w", err)
	}
	return nil
}

// MarkSealed records each change's ledger entry.
func (s *Store) MarkSealed(_ context.Context, seals []pipeline.Sealed) error {
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, sl := range seals {
			if err := updateRecord(tx, sl.ChangeID, func(r *pipeline.ChangeRecord) { r.Seq, r.Hash = sl.Seq, sl.Hash }); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark changes sealed: %w", err)
	}
	return nil
}

// updateRecord rewrites one change record in tx.
func updateRecord(tx *bbolt.Tx, id string, update func(*pipeline.ChangeRecord)) error {
	changes := tx.Bucket(bucketChanges)
	key := []byte(id)
	v := changes.Get(key)
	if v == nil {
		return fmt.Errorf("unknown change %s", id)
	}
	var r pipeline.ChangeRecord
	if err := json.Unmarshal(v, &r); err != nil {
		return fmt.Errorf("change %s: %w", id, err)
	}
	update(&r)
	nv, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return changes.Put(key, nv)
}

// ChangeRecords reads the records of these changes.
func (s *Store) ChangeRecords(_ context.Context, ids []string) (map[string]pipeline.ChangeRecord, error) {
	out := make(map[string]pipeline.ChangeRecord, len(ids))
	err := s.db.View(func(tx *bbolt.Tx) error {
		changes := tx.Bucket(bucketChanges)
		for _, id := range ids {
			v := changes.Get([]byte(id))
			if v == nil {
				continue
			}
			var r pipeline.ChangeRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return fmt.Errorf("change %s: %w", id, err)
			}
			out[id] = r
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read change records: %w", err)
	}
	return out, nil
}

// Changes returns the changes detected in [from, to), oldest first.
func (s *Store) Changes(_ context.Context, from, to time.Time) ([]pipeline.ChangeRecord, error) {
	var out []pipeline.ChangeRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		changes := tx.Bucket(bucketChanges)
		c := tx.Bucket(bucketDetected).Cursor()
		k, _ := c.First()
		if !from.IsZero() {
			k, _ = c.Seek([]byte(from.UTC().Format(detectedForm)))
		}
		var end []byte
		if !to.IsZero() {
			end = []byte(to.UTC().Format(detectedForm))
		}
		for ; k != nil && (end == nil || bytes.Compare(k, end) < 0); k, _ = c.Next() {
			_, id, ok := bytes.Cut(k, []byte("#"))
			if !ok {
				return fmt.Errorf("detection index key %q", k)
			}
			var r pipeline.ChangeRecord
			if err := json.Unmarshal(changes.Get(id), &r); err != nil {
				return fmt.Errorf("change %s: %w", id, err)
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	pipeline.SortChangeRecords(out)
	return out, nil
}

// PutRun saves a run record, keyed by its id (run ids sort by start time).
func (s *Store) PutRun(_ context.Context, r pipeline.RunRecord) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	key := []byte(r.RunID)
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketRuns).Put(key, v) }); err != nil {
		return fmt.Errorf("save run %s: %w", r.RunID, err)
	}
	return nil
}

// Run returns one run record.
func (s *Store) Run(_ context.Context, runID string) (pipeline.RunRecord, bool, error) {
	var r pipeline.RunRecord
	var found bool
	err := s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketRuns).Get([]byte(runID))
		if v == nil {
			return nil
		}
		found = true
		return json.Unmarshal(v, &r)
	})
	if err != nil {
		return r, false, fmt.Errorf("read run %s: %w", runID, err)
	}
	return r, found, nil
}

// Runs returns the newest runs first, at most limit (0: all).
func (s *Store) Runs(_ context.Context, limit int) ([]pipeline.RunRecord, error) {
	var out []pipeline.RunRecord
	err := s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketRuns).Cursor()
		for k, v := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, v = c.Prev() {
			var r pipeline.RunRecord
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// Meta reads a setting.
func (s *Store) Meta(_ context.Context, key string) (string, bool, error) {
	var v []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		v = bytes.Clone(tx.Bucket(bucketMeta).Get([]byte(key)))
		return nil
	})
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", key, err)
	}
	return string(v), v != nil, nil
}

// PutMeta writes a setting.
func (s *Store) PutMeta(_ context.Context, key, value string) error {
	if key == "" {
		return errors.New("empty meta key")
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put([]byte(key), []byte(value)) }); err != nil {
		return fmt.Errorf("save %s: %w", key, err)
	}
	return nil
}

var bucketFanIn = []byte("fanin")

type fanIn struct {
	Expected   int             `json:"expected"` // -1 until sealed
	Done       map[string]bool `json:"done"`
	ClaimedBy  string          `json:"claimedBy,omitempty"`
	LeaseUntil time.Time       `json:"leaseUntil,omitzero"`
	Finished   bool            `json:"finished,omitempty"`
}

// SetClock replaces the store's clock (tests of the claim lease).
func (s *Store) SetClock(now func() time.Time) { s.now = now }

var _ pipeline.FanIn = (*Store)(nil)

// Seal records how many batches a run has; see pipeline.FanIn.
func (s *Store) Seal(_ context.Context, runID string, batches int) (bool, error) {
	return s.fanIn(runID, "seal", func(f *fanIn) { f.Expected = batches })
}

// BatchDone counts a batch once; see pipeline.FanIn.
func (s *Store) BatchDone(_ context.Context, runID, batchID string) (bool, error) {
	return s.fanIn(runID, batchID, func(f *fanIn) { f.Done[batchID] = true })
}

// Finish marks the claimed completion done; see pipeline.FanIn.
func (s *Store) Finish(_ context.Context, runID string) error {
	_, err := s.fanIn(runID, "", func(f *fanIn) { f.Finished = true })
	return err
}

func (s *Store) fanIn(runID, by string, update func(*fanIn)) (bool, error) {
	claimed := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFanIn)
		if err != nil {
			return err
		}
		f := fanIn{Expected: -1, Done: map[string]bool{}}
		if v := b.Get([]byte(runID)); v != nil {
			if err := json.Unmarshal(v, &f); err != nil {
				return err
			}
		}
		update(&f)
		complete := f.Expected >= 0 && len(f.Done) >= f.Expected
		now := s.now()
		if complete && by != "" && (f.ClaimedBy == "" || (!f.Finished && now.After(f.LeaseUntil))) {
			f.ClaimedBy, f.LeaseUntil, claimed = by, now.Add(pipeline.DefaultClaimLease), true
		}
		v, err := json.Marshal(f)
		if err != nil {
			return err
		}
		return b.Put([]byte(runID), v)
	})
	if err != nil {
		return false, fmt.Errorf("count batches of run %s: %w", runID, err)
	}
	return claimed, nil
}
