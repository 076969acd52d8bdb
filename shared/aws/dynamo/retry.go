package dynamo

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// errUnfinished is returned when DynamoDB still left work unprocessed after
// every attempt.
var errUnfinished = errors.New("still unprocessed after the last attempt")

// retry calls try until it reports done, waiting a doubling backoff between
// tries, at most opts.Attempts times.
func (s *Store) retry(ctx context.Context, try func() (done bool, err error)) error {
	wait := s.opts.Backoff
	for attempt := 1; ; attempt++ {
		done, err := try()
		if err != nil || done {
			return err
		}
		if attempt >= s.opts.Attempts {
			return fmt.Errorf("%d attempts: %w", attempt, errUnfinished)
		}
		t := time.NewTimer(wait/2 + rand.N(wait/2+1)) // jitter: concurrent retries spread out
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// isTransient reports an error that the same request may not meet again: a
// conflict with a transaction on the item, or throttling the SDK's own
// retries did not outlast.
func isTransient(err error) bool {
	var tc *types.TransactionConflictException
	var pt *types.ProvisionedThroughputExceededException
	var rl *types.RequestLimitExceeded
	var th *types.ThrottlingException
	return errors.As(err, &tc) || errors.As(err, &pt) || errors.As(err, &rl) || errors.As(err, &th)
}

// writers is how many single-item writes a Store has in flight at once.
const writers = 16

// concurrently calls fn(ctx, i) for i in [0, n), at most writers at a time.
// The first error cancels the calls not yet started; every error is
// returned, joined.
func (s *Store) concurrently(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	work := make(chan int)
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for range min(writers, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := fn(ctx, i); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					cancel()
					return
				}
			}
		}()
	}
feed:
	for i := range n {
		select {
		case work <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(work)
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		return ctx.Err() // the caller's ctx, cancelled before every call ran
	}
	return errors.Join(errs...)
}

// cancellationReasons returns the per-item reasons of a cancelled transaction.
func cancellationReasons(err error) ([]types.CancellationReason, bool) {
	var tce *types.TransactionCanceledException
	if !errors.As(err, &tce) {
		return nil, false
	}
	return tce.CancellationReasons, true
}

// isConditionFailed reports whether err is a failed write condition.
func isConditionFailed(err error) bool {
	var ccf *types.ConditionalCheckFailedException
	return errors.As(err, &ccf)
}
