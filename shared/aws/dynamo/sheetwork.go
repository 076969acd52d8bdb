package dynamo

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// SaveSheetState saves a sheet's state as given, with one PutItem and no
// read: the watermark of a sheet found unchanged (Commit counts the
// baselines; an unchanged sheet's count has not moved).
func (s *Store) SaveSheetState(ctx context.Context, st pipeline.SheetState) error {
	if err := s.putData(ctx, dataItem{PK: sheetPK(st.SheetID), SK: skState}, st); err != nil {
		return fmt.Errorf("save the state of sheet %d: %w", st.SheetID, err)
	}
	return nil
}

// sheetResultItem is a sheet's result under its run; it expires with the
// change records.
type sheetResultItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Data string `dynamodbav:"data"`
	TTL  int64  `dynamodbav:"ttl,omitempty"`
}

// PutSheetResult keeps a sheet's result under its run: one conditional
// PutItem, so the first put of a sheet is kept (a duplicated delivery finds
// the sheet already done).
func (s *Store) PutSheetResult(ctx context.Context, r pipeline.SheetResult) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	av, err := attributevalue.MarshalMap(sheetResultItem{PK: runPK(r.RunID), SK: sheetResultSK(r.Sheet.ID), Data: string(b), TTL: s.expiry(s.now())})
	if err != nil {
		return err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if isConditionFailed(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("save the result of sheet %d of run %s: %w", r.Sheet.ID, r.RunID, err)
	}
	return nil
}

// SheetResults returns a run's sheet results in sheet id order: one strongly
// consistent Query of the run's partition.
func (s *Store) SheetResults(ctx context.Context, runID string) ([]pipeline.SheetResult, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :sk)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: runPK(runID)},
			":sk": &types.AttributeValueMemberS{Value: sheetResultPrefix},
		},
		ConsistentRead: aws.Bool(true),
	}
	var out []pipeline.SheetResult
	err := s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		var it sheetResultItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return err
		}
		var r pipeline.SheetResult
		if err := json.Unmarshal([]byte(it.Data), &r); err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the sheet results of run %s: %w", runID, err)
	}
	return out, nil
}
