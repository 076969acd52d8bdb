package bolt

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"go.etcd.io/bbolt"
)

// bucketSheetResults holds what each sheet of a run found: run id → sheet id
// (8 bytes, big-endian: id order) → JSON SheetResult (nested buckets).
var bucketSheetResults = []byte("sheet-results")

func resultKey(sheetID int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(sheetID)) }

// SaveSheetState saves a sheet's state as given, without counting its
// baselines: the watermark of a sheet found unchanged.
func (s *Store) SaveSheetState(_ context.Context, st pipeline.SheetState) error {
	v, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketSheets).Put(sheetKey(st.SheetID), v) }); err != nil {
		return fmt.Errorf("save the state of sheet %d: %w", st.SheetID, err)
	}
	return nil
}

// PutSheetResult keeps a sheet's result under its run; the first put of a
// sheet is kept (a duplicated delivery finds the sheet already done).
func (s *Store) PutSheetResult(_ context.Context, r pipeline.SheetResult) error {
	v, err := json.Marshal(r)
	if err != nil {
		return err
	}
	err = s.db.Update(func(tx *bbolt.Tx) error {
		top, err := tx.CreateBucketIfNotExists(bucketSheetResults)
		if err != nil {
			return err
		}
		b, err := top.CreateBucketIfNotExists([]byte(r.RunID))
		if err != nil {
			return err
		}
		if b.Get(resultKey(r.Sheet.ID)) != nil {
			return nil
		}
		return b.Put(resultKey(r.Sheet.ID), v)
	})
	if err != nil {
		return fmt.Errorf("save the result of sheet %d of run %s: %w", r.Sheet.ID, r.RunID, err)
	}
	return nil
}

// SheetResults returns a run's sheet results in sheet id order.
func (s *Store) SheetResults(_ context.Context, runID string) ([]pipeline.SheetResult, error) {
	var out []pipeline.SheetResult
	err := s.db.View(func(tx *bbolt.Tx) error {
		top := tx.Bucket(bucketSheetResults)
		if top == nil {
			return nil
		}
		b := top.Bucket([]byte(runID))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			var r pipeline.SheetResult
			if err := json.Unmarshal(v, &r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read the sheet results of run %s: %w", runID, err)
	}
	return out, nil
}
