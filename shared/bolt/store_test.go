package bolt_test

import (
	"sync"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/bolt"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/pipeline/storetest"
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
