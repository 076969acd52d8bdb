package bolt_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/pipeline/storetest"
	bbolt "go.etcd.io/bbolt"
)

func TestStoreContract(t *testing.T) {
	storetest.Run(t, func(t *testing.T) pipeline.Store {
		s, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// A second opener of a store held by another gets ErrInUse within about a
// second, not a long wait and an opaque timeout.
func TestOpenWhileHeld(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	other, err := bolt.Open(dir)
	if err == nil {
		other.Close()
		t.Fatal("second Open() error = nil, want ErrInUse")
	}
	if !errors.Is(err, bolt.ErrInUse) {
		t.Errorf("second Open() error = %v, want ErrInUse", err)
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("second Open() took %s, want about a second", took)
	}
}

func TestReopenKeepsState(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutMeta(t.Context(), "audit-sheet-id", "77"); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v, ok, _ := s.Meta(t.Context(), "audit-sheet-id"); !ok || v != "77" {
		t.Errorf("after reopen Meta = %q, %v; want 77", v, ok)
	}
}

func TestFanInContract(t *testing.T) {
	storetest.RunFanIn(t, func(t *testing.T) (pipeline.FanIn, func(time.Duration)) {
		s, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		now := time.Now()
		s.SetClock(func() time.Time { return now })
		return s, func(d time.Duration) { now = now.Add(d) }
	})
}

func TestLeasesContract(t *testing.T) {
	storetest.RunLeases(t, func(t *testing.T) (pipeline.Leases, func(time.Duration)) {
		s, err := bolt.Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		now := time.Now()
		var mu sync.Mutex
		s.SetClock(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
		return s, func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	})
}

// TestDetectionIndexBuiltForOlderFiles: a state file of an earlier version
// has no detection-time index; opening it builds one from its changes.
func TestDetectionIndexBuiltForOlderFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := bolt.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	c := audit.Change{ChangeID: "c1", Kind: audit.KindValueChanged, SheetID: 1, RowID: 2, DetectedAt: at}
	if _, err := s.Commit(t.Context(), pipeline.Commit{SheetID: 1, Changes: []audit.Change{c}}); err != nil {
		t.Fatal(err)
	}
	path := s.Path()
	s.Close()
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("detected")) }); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err = bolt.Open(dir); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	got, err := s.Changes(t.Context(), at, at.Add(time.Second))
	if err != nil || len(got) != 1 || got[0].Change.ChangeID != "c1" {
		t.Errorf("Changes() after reopening an older file = %v, %v; want c1", got, err)
	}
}
