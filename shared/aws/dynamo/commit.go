package dynamo

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// Commit writes scan results in the crash-safe order of the package doc:
// change records, then baselines, then the sheet state. It returns the
// changes whose Change ID was not recorded before.
func (s *Store) Commit(ctx context.Context, c pipeline.Commit) ([]audit.Change, error) {
	now := s.now()
	fresh, err := s.recordChanges(ctx, c.Changes, now)
	if err != nil {
		return nil, fmt.Errorf("commit scan of sheet %d: record changes: %w", c.SheetID, err)
	}
	if err := s.writeBaselines(ctx, c); err != nil {
		return nil, fmt.Errorf("commit scan of sheet %d: write baselines: %w", c.SheetID, err)
	}
	if c.State != nil {
		st := *c.State
		n, err := s.countBaselines(ctx, st.SheetID)
		if err != nil {
			return nil, fmt.Errorf("commit scan of sheet %d: count baselines: %w", c.SheetID, err)
		}
		st.RowCount = n
		if err := s.putData(ctx, dataItem{PK: sheetPK(st.SheetID), SK: skState}, st); err != nil {
			return nil, fmt.Errorf("commit scan of sheet %d: save state: %w", c.SheetID, err)
		}
	}
	return fresh, nil
}

// recordChanges puts each change not yet recorded (writers at a time) and
// returns those it put, in their order.
func (s *Store) recordChanges(ctx context.Context, changes []audit.Change, now time.Time) ([]audit.Change, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	// A Change ID given twice is one change: keep the first.
	seen := make(map[string]bool, len(changes))
	var todo []audit.Change
	months := map[string]bool{}
	for _, ch := range changes {
		if ch.ChangeID == "" {
			return nil, fmt.Errorf("change of sheet %d row %d has no id", ch.SheetID, ch.RowID)
		}
		if seen[ch.ChangeID] {
			continue
		}
		seen[ch.ChangeID] = true
		todo = append(todo, ch)
		months[ch.DetectedAt.UTC().Format(monthForm)] = true
	}
	// The months first: an extra month costs one empty query later, a
	// missing one would hide changes from Changes(from, to).
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(pkIndex, skMonths),
		UpdateExpression:          aws.String("ADD #m :m"),
		ExpressionAttributeNames:  map[string]string{"#m": "months"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":m": &types.AttributeValueMemberSS{Value: slices.Sorted(maps.Keys(months))}},
	})
	if err != nil {
		return nil, fmt.Errorf("index change months: %w", err)
	}
	fresh := make([]bool, len(todo))
	err = s.concurrently(ctx, len(todo), func(ctx context.Context, i int) error {
		ok, err := s.putChange(ctx, todo[i], now)
		fresh[i] = ok
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []audit.Change
	for i, ch := range todo {
		if fresh[i] {
			out = append(out, ch)
		}
	}
	return out, nil
}

func (s *Store) changeItem(ch audit.Change, now time.Time) (map[string]types.AttributeValue, error) {
	data, err := json.Marshal(ch)
	if err != nil {
		return nil, fmt.Errorf("encode change %s: %w", ch.ChangeID, err)
	}
	tail := "#" + ch.ChangeID
	it := changeItem{
		PK: changePK(ch.ChangeID), SK: skChange,
		GSI1PK: gsiPending, GSI1SK: sortTime(now) + tail,
		Data:       string(data),
		RecordedAt: sortTime(now), DetectedAt: sortTime(ch.DetectedAt),
		DPK: monthPK(ch.DetectedAt.UTC().Format(monthForm)), DSK: sortTime(ch.DetectedAt) + tail,
		TTL: s.expiry(now),
	}
	return attributevalue.MarshalMap(it)
}

// putChange records one change with a conditional put
// (attribute_not_exists(pk)) and reports whether it was new: a change
// already recorded is left untouched. A put that DynamoDB refuses for a
// moment (a conflict with a transaction on the item, throttling) is tried
// again after a backoff.
//
// One PutItem per change, not TransactWriteItems of 100: a transaction buys
// no atomicity the commit order needs (each change stands alone), costs two
// write units per item instead of one, and makes one existing change cancel
// its 99 neighbours.
func (s *Store) putChange(ctx context.Context, ch audit.Change, now time.Time) (bool, error) {
	item, err := s.changeItem(ch, now)
	if err != nil {
		return false, err
	}
	// The put carries a token of this call: if an earlier attempt of the
	// same call was applied but its answer lost (the SDK or we retried), the
	// repeat matches its own token and still counts as new.
	var tok [8]byte
	_, _ = crand.Read(tok[:])
	token := hex.EncodeToString(tok[:])
	item["recordedBy"] = &types.AttributeValueMemberS{Value: token}
	fresh := false
	err = s.retry(ctx, func() (bool, error) {
		_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName:                 &s.table,
			Item:                      item,
			ConditionExpression:       aws.String("attribute_not_exists(pk) OR #rb = :rb"),
			ExpressionAttributeNames:  map[string]string{"#rb": "recordedBy"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":rb": &types.AttributeValueMemberS{Value: token}},
		})
		switch {
		case err == nil:
			fresh = true
			return true, nil
		case isConditionFailed(err): // already recorded
			return true, nil
		case isTransient(err):
			return false, nil
		default:
			return false, err
		}
	})
	if err != nil {
		return false, fmt.Errorf("record change %s: %w", ch.ChangeID, err)
	}
	return fresh, nil
}
