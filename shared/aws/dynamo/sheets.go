package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// SheetState returns the stored state of a sheet.
func (s *Store) SheetState(ctx context.Context, sheetID int64) (pipeline.SheetState, bool, error) {
	var st pipeline.SheetState
	ok, err := s.getData(ctx, sheetPK(sheetID), skState, &st)
	if err != nil {
		return pipeline.SheetState{}, false, fmt.Errorf("read sheet state %d: %w", sheetID, err)
	}
	return st, ok, nil
}

// BaselineRowIDs lists the rows of a sheet that have a baseline, in id order.
func (s *Store) BaselineRowIDs(ctx context.Context, sheetID int64) ([]int64, error) {
	var ids []int64
	in := s.rowsQuery(sheetID)
	in.ProjectionExpression = aws.String("#sk")
	err := s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		sk, ok := item["sk"].(*types.AttributeValueMemberS)
		if !ok {
			return errors.New("baseline item without sk")
		}
		id, err := strconv.ParseInt(strings.TrimPrefix(sk.Value, rowPrefix), 10, 64)
		if err != nil {
			return fmt.Errorf("baseline key %q: %w", sk.Value, err)
		}
		ids = append(ids, id)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list baselines of sheet %d: %w", sheetID, err)
	}
	return ids, nil
}

func (s *Store) rowsQuery(sheetID int64) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(#sk, :row)"),
		ExpressionAttributeNames:  map[string]string{"#sk": "sk"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: sheetPK(sheetID)}, ":row": &types.AttributeValueMemberS{Value: rowPrefix}},
		ConsistentRead:            aws.Bool(true),
	}
}

// countBaselines counts a sheet's baselines with a COUNT query (keys only).
func (s *Store) countBaselines(ctx context.Context, sheetID int64) (int, error) {
	in := s.rowsQuery(sheetID)
	in.Select = types.SelectCount
	n := 0
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return 0, err
		}
		n += int(out.Count)
		if len(out.LastEvaluatedKey) == 0 {
			return n, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Baselines returns the baselines of the given rows that have one.
func (s *Store) Baselines(ctx context.Context, sheetID int64, rowIDs []int64) (map[int64]audit.Baseline, error) {
	out := make(map[int64]audit.Baseline, len(rowIDs))
	pk := sheetPK(sheetID)
	keys := make([]map[string]types.AttributeValue, 0, len(rowIDs))
	for _, id := range sortedUnique(rowIDs) {
		keys = append(keys, key(pk, rowSK(id)))
	}
	err := s.batchGet(ctx, keys, "data", func(item map[string]types.AttributeValue) error {
		var it dataItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return err
		}
		var bl audit.Baseline
		if err := json.Unmarshal([]byte(it.Data), &bl); err != nil {
			return err
		}
		out[bl.RowID] = bl
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read baselines of sheet %d: %w", sheetID, err)
	}
	return out, nil
}

// writeBaselines puts and deletes baselines in BatchWriteItem chunks of 25.
// A row both put and deleted is deleted (as in a transaction applying the
// puts first).
func (s *Store) writeBaselines(ctx context.Context, c pipeline.Commit) error {
	byRow := make(map[int64]types.WriteRequest, len(c.PutBaselines)+len(c.DeleteBaselines))
	pk := sheetPK(c.SheetID)
	for _, bl := range c.PutBaselines {
		if bl.SheetID != c.SheetID {
			return fmt.Errorf("baseline of sheet %d in a commit for sheet %d", bl.SheetID, c.SheetID)
		}
		b, err := json.Marshal(bl)
		if err != nil {
			return fmt.Errorf("encode baseline %d: %w", bl.RowID, err)
		}
		item, err := attributevalue.MarshalMap(dataItem{PK: pk, SK: rowSK(bl.RowID), Data: string(b)})
		if err != nil {
			return err
		}
		byRow[bl.RowID] = types.WriteRequest{PutRequest: &types.PutRequest{Item: item}}
	}
	for _, id := range c.DeleteBaselines {
		byRow[id] = types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: key(pk, rowSK(id))}}
	}
	rows := slices.Sorted(maps.Keys(byRow))
	for chunk := range slices.Chunk(rows, maxBatchWrite) {
		reqs := make([]types.WriteRequest, len(chunk))
		for i, id := range chunk {
			reqs[i] = byRow[id]
		}
		pending := map[string][]types.WriteRequest{s.table: reqs}
		err := s.retry(ctx, func() (bool, error) {
			out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return false, err
			}
			pending = out.UnprocessedItems
			return len(pending) == 0, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
