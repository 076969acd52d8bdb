package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// The webhook items of the table (callback nonces, attribution records, each
// sheet's newest record time, and the webhook status setting) are described
// with the rest of the schema in the package doc (doc.go); keys.go builds
// their keys.

// WebhookAPI is the part of the DynamoDB client the webhook stores use.
type WebhookAPI interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
}

// Defaults of WebhookOptions.
const (
	// DefaultNonceTTL keeps a nonce well past the receiver's MaxSkew (15
	// minutes), after which a replay is refused by its timestamp anyway.
	DefaultNonceTTL = 2 * time.Hour
	// DefaultRecordTTL keeps attribution records for many scans.
	DefaultRecordTTL = 35 * 24 * time.Hour
)

// WebhookOptions tune a WebhookStore; the zero value takes the defaults.
type WebhookOptions struct {
	NonceTTL  time.Duration
	RecordTTL time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// WebhookStore keeps the webhook receiver's nonces and attribution records
// in the audit table.
type WebhookStore struct {
	api   WebhookAPI
	table string
	opts  WebhookOptions
}

var (
	_ webhook.Nonces             = (*WebhookStore)(nil)
	_ webhook.RecordLookup       = (*WebhookStore)(nil)
	_ webhook.NewestRecordLookup = (*WebhookStore)(nil)
	_ pipeline.WebhookRecords    = (*WebhookStore)(nil)
)

// NewWebhookStore returns the webhook stores on table through api.
func NewWebhookStore(api WebhookAPI, table string, opts WebhookOptions) *WebhookStore {
	if opts.NonceTTL <= 0 {
		opts.NonceTTL = DefaultNonceTTL
	}
	if opts.RecordTTL <= 0 {
		opts.RecordTTL = DefaultRecordTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &WebhookStore{api: api, table: table, opts: opts}
}

// Seen records a nonce with a conditional put: it fails when the nonce is
// already there and not expired (DynamoDB deletes expired items late).
func (s *WebhookStore) Seen(ctx context.Context, nonce string, at time.Time) (bool, error) {
	item := key(noncePK(nonce), skNonce)
	item["ttl"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Add(s.opts.NonceTTL).Unix(), 10)}
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &s.table,
		Item:                      item,
		ConditionExpression:       aws.String("attribute_not_exists(pk) OR #ttl < :now"),
		ExpressionAttributeNames:  map[string]string{"#ttl": "ttl"},
		ExpressionAttributeValues: map[string]types.AttributeValue{":now": &types.AttributeValueMemberN{Value: strconv.FormatInt(at.Unix(), 10)}},
	})
	if isConditionFailed(err) {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("record nonce: %w", err)
	}
	return false, nil
}

// Forget deletes a nonce recorded by Seen.
func (s *WebhookStore) Forget(ctx context.Context, nonce string) error {
	if _, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(noncePK(nonce), skNonce)}); err != nil {
		return fmt.Errorf("forget nonce: %w", err)
	}
	return nil
}

type recordItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Data string `dynamodbav:"data"`
	TTL  int64  `dynamodbav:"ttl"`
}

// PutRecords stores attribution records, 25 to a BatchWriteItem, retrying
// what DynamoDB leaves unprocessed. It first raises the newest record time
// of their sheets (see NewestRecord), so a lookup never misses a stored
// record.
func (s *WebhookStore) PutRecords(ctx context.Context, recs []webhook.Record) error {
	newest := map[int64]time.Time{}
	for _, r := range recs {
		if t, ok := newest[r.SheetID]; !ok || r.Time.After(t) {
			newest[r.SheetID] = r.Time
		}
	}
	for sheetID, t := range newest {
		if err := s.raiseNewest(ctx, sheetID, t); err != nil {
			return err
		}
	}
	ttl := s.opts.Now().Add(s.opts.RecordTTL).Unix()
	seen := map[[2]string]bool{}
	var reqs []types.WriteRequest
	for _, r := range recs {
		it := recordItem{PK: recordPK(r.SheetID, r.RowID), SK: recordSK(r), TTL: ttl}
		if k := [2]string{it.PK, it.SK}; seen[k] {
			continue // one batch must not name an item twice
		} else {
			seen[k] = true
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		it.Data = string(b)
		av, err := attributevalue.MarshalMap(it)
		if err != nil {
			return err
		}
		reqs = append(reqs, types.WriteRequest{PutRequest: &types.PutRequest{Item: av}})
	}
	for chunk := range slices.Chunk(reqs, maxBatchWrite) {
		pending := chunk
		for attempt := 0; len(pending) > 0; attempt++ {
			if attempt == 8 {
				return errors.New("store webhook records: items left unprocessed after 8 attempts")
			}
			if attempt > 0 {
				if err := sleep(ctx, time.Duration(25<<attempt)*time.Millisecond); err != nil {
					return err
				}
			}
			out, err := s.api.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]types.WriteRequest{s.table: pending}})
			if err != nil {
				return fmt.Errorf("store webhook records: %w", err)
			}
			pending = out.UnprocessedItems[s.table]
		}
	}
	return nil
}

// raiseNewest sets the sheet's newest record time to t unless it is newer.
func (s *WebhookStore) raiseNewest(ctx context.Context, sheetID int64, t time.Time) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(newestPK(sheetID), skNewest),
		UpdateExpression:          aws.String("SET newest = :t"),
		ConditionExpression:       aws.String("attribute_not_exists(newest) OR newest < :t"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":t": &types.AttributeValueMemberN{Value: strconv.FormatInt(t.UnixNano(), 10)}},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("store newest webhook record time of sheet %d: %w", sheetID, err)
	}
	return nil
}

// NewestRecord returns the time of the newest record PutRecords stored for
// the sheet (one consistent GetItem); ok is false when it stored none.
func (s *WebhookStore) NewestRecord(ctx context.Context, sheetID int64) (time.Time, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(newestPK(sheetID), skNewest), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return time.Time{}, false, fmt.Errorf("read newest webhook record time of sheet %d: %w", sheetID, err)
	}
	v, ok := out.Item["newest"].(*types.AttributeValueMemberN)
	if !ok {
		return time.Time{}, false, nil
	}
	n, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("newest webhook record time of sheet %d: %w", sheetID, err)
	}
	return time.Unix(0, n).UTC(), true, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Records returns the records of one cell (columnID 0: the row's) with
// from < Time ≤ to (a zero bound is open): one Query on the cell's key range.
func (s *WebhookStore) Records(ctx context.Context, sheetID, rowID, columnID int64, from, to time.Time) ([]webhook.Record, error) {
	col := recordColumn(columnID)
	lo, hi := col, col+"~"
	if !from.IsZero() {
		lo = col + sortTime(from)
	}
	if !to.IsZero() {
		hi = col + sortTime(to) + "~"
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: recordPK(sheetID, rowID)},
			":lo": &types.AttributeValueMemberS{Value: lo}, ":hi": &types.AttributeValueMemberS{Value: hi},
		},
	}
	var out []webhook.Record
	for {
		res, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("read webhook records of sheet %d row %d: %w", sheetID, rowID, err)
		}
		for _, item := range res.Items {
			var it recordItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, err
			}
			var r webhook.Record
			if err := json.Unmarshal([]byte(it.Data), &r); err != nil {
				return nil, fmt.Errorf("webhook record %s/%s: %w", it.PK, it.SK, err)
			}
			if (!from.IsZero() && !r.Time.After(from)) || (!to.IsZero() && r.Time.After(to)) || !strings.HasPrefix(it.SK, col) {
				continue
			}
			out = append(out, r)
		}
		if len(res.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}
