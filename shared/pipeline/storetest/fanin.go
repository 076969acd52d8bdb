package storetest

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// RunFanIn is the contract of pipeline.FanIn: exactly one claim per run,
// whatever the order of Seal and BatchDone, with duplicate and concurrent
// deliveries.
// open returns a fresh FanIn and a way to move its clock forward.
func RunFanIn(t *testing.T, open func(t *testing.T) (pipeline.FanIn, func(time.Duration))) {
	ctx := context.Background()
	t.Run("SealLast", func(t *testing.T) {
		f, _ := open(t)
		for i := range 3 {
			if c, err := f.BatchDone(ctx, "r1", "r1/"+strconv.Itoa(i)); c || err != nil {
				t.Fatalf("BatchDone before Seal = %v, %v; want false, nil", c, err)
			}
		}
		if c, err := f.Seal(ctx, "r1", 3); !c || err != nil {
			t.Errorf("Seal after all batches = %v, %v; want claimed", c, err)
		}
		if c, _ := f.BatchDone(ctx, "r1", "r1/2"); c {
			t.Error("a redelivered batch claimed the run again")
		}
	})
	t.Run("ReclaimAfterLease", func(t *testing.T) {
		f, advance := open(t)
		if _, err := f.Seal(ctx, "r3", 2); err != nil {
			t.Fatal(err)
		}
		f.BatchDone(ctx, "r3", "a")
		if c, _ := f.BatchDone(ctx, "r3", "b"); !c {
			t.Fatal("the last batch did not claim")
		}
		if c, _ := f.BatchDone(ctx, "r3", "b"); c {
			t.Error("a concurrent duplicate claimed within the lease")
		}
		// The claimer died; after the lease a redelivery claims again.
		advance(pipeline.DefaultClaimLease + time.Second)
		if c, _ := f.BatchDone(ctx, "r3", "b"); !c {
			t.Error("no call could claim an unfinished run after the lease")
		}
		if err := f.Finish(ctx, "r3"); err != nil {
			t.Fatal(err)
		}
		advance(2 * pipeline.DefaultClaimLease)
		if c, _ := f.BatchDone(ctx, "r3", "a"); c {
			t.Error("a finished run was claimed again")
		}
	})
	t.Run("ZeroBatches", func(t *testing.T) {
		f, _ := open(t)
		if c, err := f.Seal(ctx, "r0", 0); !c || err != nil {
			t.Errorf("Seal(0) = %v, %v; want claimed", c, err)
		}
	})
	t.Run("ConcurrentDuplicates", func(t *testing.T) {
		f, _ := open(t)
		const batches = 12
		if c, err := f.Seal(ctx, "r2", batches); c || err != nil {
			t.Fatalf("Seal before batches = %v, %v", c, err)
		}
		var claims atomic.Int32
		var wg sync.WaitGroup
		for dup := range 3 { // every batch delivered three times, concurrently
			for i := range batches {
				wg.Add(1)
				go func() {
					defer wg.Done()
					c, err := f.BatchDone(ctx, "r2", "r2/"+strconv.Itoa((i+dup*5)%batches))
					if err != nil {
						t.Error(err)
					}
					if c {
						claims.Add(1)
					}
				}()
			}
		}
		wg.Wait()
		if n := claims.Load(); n != 1 {
			t.Errorf("%d claims, want exactly 1", n)
		}
	})
}
