package dynamo

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

var _ pipeline.AlertLog = (*Store)(nil)

// AlertsSent reads the alert markers of these changes on channel: one
// strongly consistent BatchGetItem per 100 ids (each marker sits in its
// change's partition).
func (s *Store) AlertsSent(ctx context.Context, channel string, ids []string) (map[string]time.Time, error) {
	out := map[string]time.Time{}
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range sortedUnique(ids) {
		keys = append(keys, key(changePK(id), alertSK(channel)))
	}
	err := s.batchGet(ctx, keys, "", func(item map[string]types.AttributeValue) error {
		pk, _ := item["pk"].(*types.AttributeValueMemberS)
		at, _ := item["sentAt"].(*types.AttributeValueMemberS)
		if pk == nil || at == nil {
			return fmt.Errorf("alert marker without pk or sentAt")
		}
		t, err := time.Parse(sortTimeForm, at.Value)
		if err != nil {
			return fmt.Errorf("alert marker of %s: %w", pk.Value, err)
		}
		out[strings.TrimPrefix(pk.Value, changePK(""))] = t
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read alert markers of channel %s: %w", channel, err)
	}
	return out, nil
}

// MarkAlertsSent puts an alert marker per change, each a conditional
// PutItem that keeps a marker already there (its first time).
func (s *Store) MarkAlertsSent(ctx context.Context, channel string, ids []string, at time.Time) error {
	ids = sortedUnique(ids)
	err := s.concurrently(ctx, len(ids), func(ctx context.Context, i int) error {
		item := key(changePK(ids[i]), alertSK(channel))
		item["sentAt"] = &types.AttributeValueMemberS{Value: sortTime(at)}
		if ttl := s.expiry(at); ttl > 0 {
			item["ttl"] = &types.AttributeValueMemberN{Value: fmt.Sprint(ttl)}
		}
		_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item,
			ConditionExpression: aws.String("attribute_not_exists(pk)")})
		if err != nil && !isConditionFailed(err) {
			return fmt.Errorf("change %s: %w", ids[i], err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark alerts sent on channel %s: %w", channel, err)
	}
	return nil
}
