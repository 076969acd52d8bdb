package dynamo

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// The fan-in of a serverless run (pipeline.FanIn): the scan queues the run's
// batches and then Seals the run with their count; each batch's handler
// calls BatchDone once it has committed its work, possibly before the Seal.
// Deliveries may repeat and run concurrently; each batch id counts once, and
// exactly one call over the whole run, Seal or BatchDone, gets claimed =
// true, so exactly one AuditRunCompleted event is published.
//
// Both work on the run's fan-in counter item (its attributes are in the
// package doc's schema):
//
//   - BatchDone: one transaction puts the batch marker
//     (attribute_not_exists(pk)) and adds 1 to done (while the run is not
//     sealed, or done < expected). A second delivery of the batch fails the
//     marker's condition, so the whole transaction, increment included, is
//     cancelled: it is counted once.
//   - Seal: SET expected (if unset or equal, and not below done).
//   - then both try the claim: SET completedAt if
//     attribute_not_exists(completedAt) AND done = expected. At most one
//     claim can succeed; its caller gets claimed = true.
//
// The claim is tried by every call, duplicates too: if the handler whose
// increment finished the run dies before claiming, the queue's redelivery of
// its batch (now a duplicate) makes the claim, so the completion is not lost
// to a crash between the two writes. Without a crash the claimer is the call
// that completed the run, unless a concurrent duplicate races it to the
// claim (then that duplicate claims instead: still exactly one).

// ErrUnknownRun is returned by RunProgress for a run with no fan-in yet.
var ErrUnknownRun = errors.New("unknown run")

// Seal records that runID has batches batches; see pipeline.FanIn. Sealing
// again with the same count is a no-op; with another count, or fewer than
// were already done, it is an error.
func (s *Store) Seal(ctx context.Context, runID string, batches int) (claimed bool, err error) {
	if batches < 0 {
		return false, fmt.Errorf("seal run %s: %d batches", runID, batches)
	}
	n := &types.AttributeValueMemberN{Value: strconv.Itoa(batches)}
	_, err = s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(runPK(runID), skFanIn),
		UpdateExpression:          aws.String("SET #expected = :n, #done = if_not_exists(#done, :zero), #sealedAt = if_not_exists(#sealedAt, :now)"),
		ConditionExpression:       aws.String("(attribute_not_exists(#expected) OR #expected = :n) AND (attribute_not_exists(#done) OR #done <= :n)"),
		ExpressionAttributeNames:  map[string]string{"#expected": "expected", "#done": "done", "#sealedAt": "sealedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":n": n, ":zero": &types.AttributeValueMemberN{Value: "0"}, ":now": &types.AttributeValueMemberS{Value: sortTime(s.now())}},
	})
	if isConditionFailed(err) {
		p, perr := s.RunProgress(ctx, runID)
		if perr != nil {
			return false, fmt.Errorf("seal run %s with %d batches: refused (reading it: %w)", runID, batches, perr)
		}
		return false, fmt.Errorf("seal run %s with %d batches: already sealed with %d, %d done", runID, batches, p.Expected, p.Done)
	}
	if err != nil {
		return false, fmt.Errorf("seal run %s: %w", runID, err)
	}
	return s.claim(ctx, runID, "seal")
}

// BatchDone counts batchID of runID as done, once however often it is
// called; see pipeline.FanIn.
func (s *Store) BatchDone(ctx context.Context, runID, batchID string) (claimed bool, err error) {
	if batchID == "" {
		return false, fmt.Errorf("batch done in run %s: empty batch id", runID)
	}
	now := s.now()
	marker := key(runPK(runID), batchPrefix+batchID)
	marker["doneAt"] = &types.AttributeValueMemberS{Value: sortTime(now)}
	if ttl := s.expiry(now); ttl > 0 {
		marker["ttl"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl, 10)}
	}
	tx := []types.TransactWriteItem{
		{Put: &types.Put{TableName: &s.table, Item: marker, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       key(runPK(runID), skFanIn),
			UpdateExpression:          aws.String("ADD #done :one"),
			ConditionExpression:       aws.String("attribute_not_exists(#expected) OR #done < #expected"),
			ExpressionAttributeNames:  map[string]string{"#done": "done", "#expected": "expected"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":one": &types.AttributeValueMemberN{Value: "1"}},
		}},
	}
	err = s.retry(ctx, func() (bool, error) {
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: tx})
		if err == nil {
			return true, nil
		}
		reasons, ok := cancellationReasons(err)
		if !ok || len(reasons) != 2 {
			return false, err
		}
		marker, counter := aws.ToString(reasons[0].Code), aws.ToString(reasons[1].Code)
		switch {
		case marker == "ConditionalCheckFailed":
			return true, nil // a duplicate delivery: counted before
		case counter == "ConditionalCheckFailed":
			p, perr := s.RunProgress(ctx, runID)
			if perr != nil {
				return false, fmt.Errorf("%w (and reading the run: %w)", err, perr)
			}
			return false, fmt.Errorf("one batch more than the %d sealed: %w", p.Expected, err)
		case marker == "TransactionConflict" || counter == "TransactionConflict":
			return false, nil // concurrent deliveries: try again
		}
		return false, err
	})
	if err != nil {
		return false, fmt.Errorf("batch %s of run %s done: %w", batchID, runID, err)
	}
	return s.claim(ctx, runID, batchID)
}

// claim sets the run's completion flag if it is complete and unclaimed,
// reporting whether this call set it. A claim is a lease: if the completion
// is not Finished before the lease ends (the claimer died half-way), the next
// call — typically the redelivery of a batch — may claim it again.
func (s *Store) claim(ctx context.Context, runID, by string) (bool, error) {
	now := s.now()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &s.table,
		Key:              key(runPK(runID), skFanIn),
		UpdateExpression: aws.String("SET #completedAt = if_not_exists(#completedAt, :now), #completedBy = :by, #lease = :lease"),
		ConditionExpression: aws.String("attribute_exists(#expected) AND #done = #expected AND " +
			"(attribute_not_exists(#completedAt) OR (attribute_not_exists(#finishedAt) AND #lease < :now))"),
		ExpressionAttributeNames: map[string]string{"#completedAt": "completedAt", "#completedBy": "completedBy",
			"#done": "done", "#expected": "expected", "#finishedAt": "finishedAt", "#lease": "leaseUntil"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now": &types.AttributeValueMemberS{Value: sortTime(now)}, ":by": &types.AttributeValueMemberS{Value: by},
			":lease": &types.AttributeValueMemberS{Value: sortTime(now.Add(s.opts.ClaimLease))}},
	})
	if isConditionFailed(err) {
		return false, nil // not complete yet, or claimed by another call
	}
	if err != nil {
		return false, fmt.Errorf("claim completion of run %s: %w", runID, err)
	}
	return true, nil
}

// Finish marks the claimed completion done; the claimer cannot claim again.
func (s *Store) Finish(ctx context.Context, runID string) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(runPK(runID), skFanIn),
		UpdateExpression:          aws.String("SET #finishedAt = :now"),
		ConditionExpression:       aws.String("attribute_exists(#completedAt)"),
		ExpressionAttributeNames:  map[string]string{"#finishedAt": "finishedAt", "#completedAt": "completedAt"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberS{Value: sortTime(s.now())}},
	})
	if err != nil {
		return fmt.Errorf("finish run %s: %w", runID, err)
	}
	return nil
}

// Progress is the state of a run's fan-in.
type Progress struct {
	// Expected is the sealed batch count, -1 before the Seal.
	Expected int
	Done     int
	// Completed is set once a BatchDone call has claimed the completion;
	// CompletedBy is the batch id of that call ("seal" for the Seal).
	Completed   bool
	CompletedBy string
}

// RunProgress reads the fan-in counter of runID (ErrUnknownRun before its
// first Seal or BatchDone).
func (s *Store) RunProgress(ctx context.Context, runID string) (Progress, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(runPK(runID), skFanIn), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return Progress{}, fmt.Errorf("read progress of run %s: %w", runID, err)
	}
	if out.Item == nil {
		return Progress{}, fmt.Errorf("run %s: %w", runID, ErrUnknownRun)
	}
	var p Progress
	num := func(name string) (int, error) {
		n, ok := out.Item[name].(*types.AttributeValueMemberN)
		if !ok {
			return 0, fmt.Errorf("run %s: fan-in item without %s", runID, name)
		}
		return strconv.Atoi(n.Value)
	}
	p.Expected = -1
	if _, sealed := out.Item["expected"]; sealed {
		if p.Expected, err = num("expected"); err != nil {
			return Progress{}, err
		}
	}
	if p.Done, err = num("done"); err != nil {
		return Progress{}, err
	}
	if by, ok := out.Item["completedBy"].(*types.AttributeValueMemberS); ok {
		p.Completed, p.CompletedBy = true, by.Value
	}
	return p, nil
}
