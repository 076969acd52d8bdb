package dynamo_test

import (
	"context"
	"errors"
	"maps"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// throttled is a dynamo.API that, like DynamoDB under load, processes only
// part of each batch request and hands the rest back as unprocessed.
type throttled struct {
	dynamo.API
	writes, gets atomic.Int32
}

func (f *throttled) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.writes.Add(1)
	for table, reqs := range in.RequestItems {
		if len(reqs) < 2 {
			break
		}
		half := len(reqs) / 2
		out, err := f.API.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{table: reqs[:half]}}, opts...)
		if err != nil {
			return nil, err
		}
		out.UnprocessedItems = map[string][]types.WriteRequest{table: append(out.UnprocessedItems[table], reqs[half:]...)}
		return out, nil
	}
	return f.API.BatchWriteItem(ctx, in, opts...)
}

func (f *throttled) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	f.gets.Add(1)
	for table, ka := range in.RequestItems {
		if len(ka.Keys) < 2 {
			break
		}
		half := len(ka.Keys) / 2
		first, rest := ka, ka
		first.Keys, rest.Keys = ka.Keys[:half], ka.Keys[half:]
		out, err := f.API.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]types.KeysAndAttributes{table: first}}, opts...)
		if err != nil {
			return nil, err
		}
		out.UnprocessedKeys = map[string]types.KeysAndAttributes{table: rest}
		return out, nil
	}
	return f.API.BatchGetItem(ctx, in, opts...)
}

// TestUnprocessedRetried: baselines left unprocessed by BatchWriteItem and
// BatchGetItem are sent again until all are done.
func TestUnprocessedRetried(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		fake := &throttled{API: api}
		s := dynamo.New(fake, mustTable(t, api), dynamo.Options{Backoff: time.Millisecond})
		var bls []audit.Baseline
		var rows []int64
		for i := range 30 {
			rows = append(rows, int64(i+1))
			bls = append(bls, audit.Baseline{SheetID: 9, RowID: int64(i + 1), Values: map[string]string{"Quantity": "1"}, SeenAt: time.Unix(0, 0).UTC()})
		}
		if _, err := s.Commit(ctx, pipeline.Commit{SheetID: 9, PutBaselines: bls}); err != nil {
			t.Fatal(err)
		}
		// 25 → 13 left → 7 → 4 → 2 → 1 → done (6 calls), and 5 → 3 → 2 → 1 → done (4).
		if n := fake.writes.Load(); n != 10 {
			t.Errorf("%d BatchWriteItem calls, want 10", n)
		}
		got, err := s.Baselines(ctx, 9, rows)
		if err != nil || len(got) != 30 {
			t.Fatalf("Baselines() = %d, %v; want 30", len(got), err)
		}
		if n := fake.gets.Load(); n < 2 {
			t.Errorf("%d BatchGetItem calls, want the unprocessed keys asked again", n)
		}
	})
}

// stuck never processes anything.
type stuck struct {
	dynamo.API
	calls int
}

func (f *stuck) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.calls++
	return &dynamodb.BatchWriteItemOutput{UnprocessedItems: in.RequestItems}, nil
}

func TestUnprocessedBounded(t *testing.T) {
	f := &stuck{}
	s := dynamo.New(f, "t", dynamo.Options{Attempts: 4, Backoff: time.Microsecond})
	_, err := s.Commit(context.Background(), pipeline.Commit{SheetID: 1, DeleteBaselines: []int64{1, 2}})
	if err == nil || f.calls != 4 {
		t.Errorf("Commit(never processed) = %v after %d calls; want an error after 4", err, f.calls)
	}
}

// conflicted refuses the first put of each change with a conflict (the item
// is in another transaction), then passes the puts through.
type conflicted struct {
	dynamo.API
	mu    sync.Mutex
	calls map[string]int
}

func (f *conflicted) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	pk := in.Item["pk"].(*types.AttributeValueMemberS).Value
	f.mu.Lock()
	f.calls[pk]++
	first := f.calls[pk] == 1
	f.mu.Unlock()
	if first {
		return nil, &types.TransactionConflictException{Message: aws.String("conflict")}
	}
	return f.API.PutItem(ctx, in, opts...)
}

func TestTransactionConflictRetried(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		f := &conflicted{API: api, calls: map[string]int{}}
		s := dynamo.New(f, mustTable(t, api), dynamo.Options{Backoff: time.Millisecond})
		fresh, err := s.Commit(context.Background(), pipeline.Commit{SheetID: 9, Changes: []audit.Change{testChange("a"), testChange("b")}})
		want := map[string]int{"CHANGE#a": 2, "CHANGE#b": 2}
		if err != nil || len(fresh) != 2 || !maps.Equal(f.calls, want) {
			t.Errorf("Commit() = %d fresh, %v after puts %v; want 2 fresh after %v", len(fresh), err, f.calls, want)
		}
	})
}

func TestOtherErrorsNotRetried(t *testing.T) {
	f := &failing{err: errors.New("boom")}
	s := dynamo.New(f, "t", dynamo.Options{})
	if _, err := s.Commit(context.Background(), pipeline.Commit{SheetID: 1, DeleteBaselines: []int64{1}}); !errors.Is(err, f.err) || f.calls != 1 {
		t.Errorf("Commit() = %v after %d calls; want boom after 1", err, f.calls)
	}
}

type failing struct {
	dynamo.API
	err   error
	calls int
}

func (f *failing) BatchWriteItem(context.Context, *dynamodb.BatchWriteItemInput, ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	f.calls++
	return nil, f.err
}

// lostAnswer applies the first put of each change, then reports a conflict
// as if the answer was lost: the store's repeat must still count it as new.
type lostAnswer struct {
	dynamo.API
	mu    sync.Mutex
	calls map[string]int
}

func (f *lostAnswer) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	pk := in.Item["pk"].(*types.AttributeValueMemberS).Value
	f.mu.Lock()
	f.calls[pk]++
	first := f.calls[pk] == 1
	f.mu.Unlock()
	out, err := f.API.PutItem(ctx, in, opts...)
	if first && err == nil {
		return nil, &types.TransactionConflictException{Message: aws.String("answer lost")}
	}
	return out, err
}

func TestAppliedPutWithLostAnswerIsFresh(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		f := &lostAnswer{API: api, calls: map[string]int{}}
		s := dynamo.New(f, mustTable(t, api), dynamo.Options{Backoff: time.Millisecond})
		fresh, err := s.Commit(context.Background(), pipeline.Commit{SheetID: 9, Changes: []audit.Change{testChange("a"), testChange("b")}})
		if err != nil || len(fresh) != 2 {
			t.Errorf("Commit() = %d fresh, %v; want 2 fresh (the repeats match their own puts)", len(fresh), err)
		}
		// Recorded by someone else before: not fresh.
		s2 := dynamo.New(api, s.Table(), dynamo.Options{})
		again, err := s2.Commit(context.Background(), pipeline.Commit{SheetID: 9, Changes: []audit.Change{testChange("a")}})
		if err != nil || len(again) != 0 {
			t.Errorf("Commit(recorded) = %d fresh, %v; want 0", len(again), err)
		}
	})
}
