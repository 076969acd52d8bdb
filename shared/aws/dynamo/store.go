package dynamo

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

// API is the part of the DynamoDB client the Store uses.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
}

// DefaultRetention is how long change records are kept unless configured
// otherwise.
const DefaultRetention = 400 * 24 * time.Hour

// Options tune a Store. The zero value is valid: no expiry, default retries.
type Options struct {
	// Retention is how long change records live (their ttl); 0 keeps them
	// forever. Configuration defaults it to [DefaultRetention].
	Retention time.Duration
	// Attempts bounds the tries of a batch whose items DynamoDB left
	// unprocessed, or of a transaction cancelled by a conflict (default 8).
	Attempts int
	// Backoff is the first wait between those tries, doubled each time up to
	// 2 s (default 50 ms).
	Backoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// ClaimLease is how long a claimed run completion is reserved for its
	// claimer before another call may claim it again (default 10 minutes,
	// longer than a function's timeout, shorter than a queue's visibility
	// timeout).
	ClaimLease time.Duration
}

// Store is a pipeline.Store in one DynamoDB table (see the package doc for
// its items).
type Store struct {
	api   API
	table string
	opts  Options
}

var (
	_ pipeline.Store = (*Store)(nil)
	_ pipeline.FanIn = (*Store)(nil)
)

// New returns a Store on table through api.
func New(api API, table string, opts Options) *Store {
	if opts.Attempts <= 0 {
		opts.Attempts = 8
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 50 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ClaimLease <= 0 {
		opts.ClaimLease = pipeline.DefaultClaimLease
	}
	return &Store{api: api, table: table, opts: opts}
}

// Table is the table's name.
func (s *Store) Table() string { return s.table }

// dataItem is every item whose payload is one JSON document.
type dataItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
	Data   string `dynamodbav:"data"`
}

func (s *Store) now() time.Time { return s.opts.Now().UTC() }

func (s *Store) expiry(from time.Time) int64 {
	if s.opts.Retention <= 0 {
		return 0
	}
	return from.Add(s.opts.Retention).Unix()
}

// getData reads the JSON payload of one item into v (strongly consistent).
func (s *Store) getData(ctx context.Context, pk, sk string, v any) (bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, err
	}
	if out.Item == nil {
		return false, nil
	}
	var it dataItem
	if err := attributevalue.UnmarshalMap(out.Item, &it); err != nil {
		return false, err
	}
	return true, json.Unmarshal([]byte(it.Data), v)
}

func (s *Store) putData(ctx context.Context, it dataItem, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	it.Data = string(b)
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return err
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: av})
	return err
}

// query runs in to the end, page by page, calling fn on each item.
func (s *Store) query(ctx context.Context, in *dynamodb.QueryInput, fn func(map[string]types.AttributeValue) error) error {
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// sortedUnique is ids sorted without repeats: BatchGetItem refuses a key
// twice.
func sortedUnique[T cmp.Ordered](ids []T) []T {
	out := slices.Clone(ids)
	slices.Sort(out)
	return slices.Compact(out)
}

// batchGet reads items by key with strongly consistent BatchGetItems of at
// most 100 keys (projected to attr when it is not ""), retrying what
// DynamoDB leaves unprocessed, and calls fn on each item found.
func (s *Store) batchGet(ctx context.Context, keys []map[string]types.AttributeValue, attr string, fn func(map[string]types.AttributeValue) error) error {
	for chunk := range slices.Chunk(keys, maxBatchGet) {
		ka := types.KeysAndAttributes{Keys: chunk, ConsistentRead: aws.Bool(true)}
		if attr != "" {
			ka.ProjectionExpression, ka.ExpressionAttributeNames = aws.String("#a"), map[string]string{"#a": attr}
		}
		req := map[string]types.KeysAndAttributes{s.table: ka}
		err := s.retry(ctx, func() (bool, error) {
			res, err := s.api.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: req})
			if err != nil {
				return false, err
			}
			for _, item := range res.Responses[s.table] {
				if err := fn(item); err != nil {
					return false, err
				}
			}
			req = res.UnprocessedKeys
			return len(req) == 0, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Meta reads a setting.
func (s *Store) Meta(ctx context.Context, k string) (string, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: metaKey(k), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return "", false, fmt.Errorf("read %s: %w", k, err)
	}
	v, ok := out.Item["value"].(*types.AttributeValueMemberS)
	if !ok {
		return "", false, nil
	}
	return v.Value, true, nil
}

// PutMeta writes a setting.
func (s *Store) PutMeta(ctx context.Context, k, value string) error {
	if k == "" {
		return errors.New("empty meta key")
	}
	item := metaKey(k)
	item["value"] = &types.AttributeValueMemberS{Value: value}
	if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("save %s: %w", k, err)
	}
	return nil
}
