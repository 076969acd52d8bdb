package dynamo

import (
	"cmp"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
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

const (
	pkMeta        = "META"
	pkIndex       = "INDEX"
	skState       = "STATE"
	skChange      = "CHANGE"
	skRun         = "RUN"
	skMonths      = "CHANGE_MONTHS"
	rowPrefix     = "ROW#"
	gsiPending    = "PENDING"
	gsiRuns       = "RUNS"
	indexName     = "gsi1"
	sortTimeForm  = "2006-01-02T15:04:05.000000000Z"
	monthForm     = "2006-01"
	maxTransact   = 100
	maxBatchWrite = 25
	maxBatchGet   = 100
)

func sheetPK(id int64) string     { return "SHEET#" + strconv.FormatInt(id, 10) }
func rowSK(id int64) string       { return fmt.Sprintf("%s%020d", rowPrefix, id) }
func changePK(id string) string   { return "CHANGE#" + id }
func runPK(id string) string      { return "RUN#" + id }
func monthPK(month string) string { return "DETECTED#" + month }
func sortTime(t time.Time) string { return t.UTC().Format(sortTimeForm) }

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: sk}}
}

// dataItem is every item whose payload is one JSON document.
type dataItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
	Data   string `dynamodbav:"data"`
}

// changeItem is a recorded change.
type changeItem struct {
	PK     string `dynamodbav:"pk"`
	SK     string `dynamodbav:"sk"`
	GSI1PK string `dynamodbav:"gsi1pk,omitempty"`
	GSI1SK string `dynamodbav:"gsi1sk,omitempty"`
	Data   string `dynamodbav:"data"`
	// RecordedAt and DetectedAt are in sortTimeForm.
	RecordedAt string `dynamodbav:"recordedAt"`
	DetectedAt string `dynamodbav:"detectedAt"`
	Written    bool   `dynamodbav:"written"`
	// DPK and DSK are the index key the change moves to once written.
	DPK string `dynamodbav:"dpk"`
	DSK string `dynamodbav:"dsk"`
	TTL int64  `dynamodbav:"ttl,omitempty"`
	// Seq and Hash are the change's ledger entry once sealed; AuditRowID the
	// audit-sheet row it was written as.
	Seq        uint64 `dynamodbav:"seq,omitempty"`
	Hash       string `dynamodbav:"hash,omitempty"`
	AuditRowID int64  `dynamodbav:"auditRowId,omitempty"`
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

// readChanges runs a change query to the end.
func (s *Store) readChanges(ctx context.Context, in *dynamodb.QueryInput, out *[]pipeline.ChangeRecord) error {
	return s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		r, err := changeRecord(item)
		if err != nil {
			return err
		}
		*out = append(*out, r)
		return nil
	})
}

// changeRecord decodes a change item.
func changeRecord(item map[string]types.AttributeValue) (pipeline.ChangeRecord, error) {
	var it changeItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return pipeline.ChangeRecord{}, err
	}
	r := pipeline.ChangeRecord{Written: it.Written, Seq: it.Seq, Hash: it.Hash, AuditRowID: it.AuditRowID}
	if err := json.Unmarshal([]byte(it.Data), &r.Change); err != nil {
		return r, fmt.Errorf("change item %s: %w", it.PK, err)
	}
	at, err := time.Parse(sortTimeForm, it.RecordedAt)
	if err != nil {
		return r, fmt.Errorf("change item %s: recordedAt: %w", it.PK, err)
	}
	r.RecordedAt = at
	return r, nil
}

func (s *Store) indexQuery(pk string) *dynamodb.QueryInput {
	return &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(indexName),
		KeyConditionExpression:    aws.String("gsi1pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pk}},
	}
}

// Pending returns changes not yet on the audit sheet, oldest first.
func (s *Store) Pending(ctx context.Context) ([]pipeline.ChangeRecord, error) {
	var out []pipeline.ChangeRecord
	if err := s.readChanges(ctx, s.indexQuery(gsiPending), &out); err != nil {
		return nil, fmt.Errorf("read pending changes: %w", err)
	}
	pipeline.SortChangeRecords(out)
	return out, nil
}

// MarkWritten flags changes as written to the audit sheet, moving each from
// the PENDING index partition to its detection month's: one UpdateItem per
// change, a few at a time. An unknown id is an error; marking twice is not.
func (s *Store) MarkWritten(ctx context.Context, rows []pipeline.WrittenRow) error {
	err := s.concurrently(ctx, len(rows), func(ctx context.Context, i int) error {
		return s.markWritten(ctx, rows[i])
	})
	if err != nil {
		return fmt.Errorf("mark changes written: %w", err)
	}
	return nil
}

func (s *Store) markWritten(ctx context.Context, w pipeline.WrittenRow) error {
	update := "SET #w = :t, gsi1pk = #dpk, gsi1sk = #dsk"
	values := map[string]types.AttributeValue{":t": &types.AttributeValueMemberBOOL{Value: true}}
	names := map[string]string{"#w": "written", "#dpk": "dpk", "#dsk": "dsk"}
	if w.RowID != 0 {
		update += ", auditRowId = :row"
		values[":row"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(w.RowID, 10)}
	}
	if w.Seq != 0 {
		update += ", seq = :seq, #h = :hash"
		names["#h"] = "hash" // a reserved word
		values[":seq"] = &types.AttributeValueMemberN{Value: strconv.FormatUint(w.Seq, 10)}
		values[":hash"] = &types.AttributeValueMemberS{Value: w.Hash}
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &s.table,
		Key:                       key(changePK(w.ChangeID), skChange),
		UpdateExpression:          aws.String(update),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  names,
		ExpressionAttributeValues: values,
	})
	if isConditionFailed(err) {
		return fmt.Errorf("unknown change %s", w.ChangeID)
	}
	if err != nil {
		return fmt.Errorf("change %s: %w", w.ChangeID, err)
	}
	return nil
}

// MarkSealed records each change's ledger entry on its item, a few at a
// time. An unknown id is an error.
func (s *Store) MarkSealed(ctx context.Context, seals []pipeline.Sealed) error {
	err := s.concurrently(ctx, len(seals), func(ctx context.Context, i int) error {
		sl := seals[i]
		_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:           &s.table,
			Key:                 key(changePK(sl.ChangeID), skChange),
			UpdateExpression:    aws.String("SET seq = :seq, #h = :hash"),
			ConditionExpression: aws.String("attribute_exists(pk)"),
			// hash is a reserved word in DynamoDB expressions.
			ExpressionAttributeNames: map[string]string{"#h": "hash"},
			ExpressionAttributeValues: map[string]types.AttributeValue{
				":seq":  &types.AttributeValueMemberN{Value: strconv.FormatUint(sl.Seq, 10)},
				":hash": &types.AttributeValueMemberS{Value: sl.Hash},
			},
		})
		if isConditionFailed(err) {
			return fmt.Errorf("unknown change %s", sl.ChangeID)
		}
		if err != nil {
			return fmt.Errorf("change %s: %w", sl.ChangeID, err)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark changes sealed: %w", err)
	}
	return nil
}

// ChangeRecords reads these changes' items with strongly consistent
// BatchGetItems (the index that Pending queries may lag).
func (s *Store) ChangeRecords(ctx context.Context, ids []string) (map[string]pipeline.ChangeRecord, error) {
	out := make(map[string]pipeline.ChangeRecord, len(ids))
	keys := make([]map[string]types.AttributeValue, 0, len(ids))
	for _, id := range sortedUnique(ids) {
		keys = append(keys, key(changePK(id), skChange))
	}
	err := s.batchGet(ctx, keys, "", func(item map[string]types.AttributeValue) error {
		r, err := changeRecord(item)
		if err != nil {
			return err
		}
		out[r.Change.ChangeID] = r
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read change records: %w", err)
	}
	return out, nil
}

// Changes returns the changes detected in [from, to), oldest recorded first.
// A zero bound is open.
func (s *Store) Changes(ctx context.Context, from, to time.Time) ([]pipeline.ChangeRecord, error) {
	months, err := s.changeMonths(ctx)
	if err != nil {
		return nil, fmt.Errorf("read changes: %w", err)
	}
	var out []pipeline.ChangeRecord
	for _, m := range months {
		start, _ := time.Parse(monthForm, m)
		end := start.AddDate(0, 1, 0)
		if (!to.IsZero() && !start.Before(to)) || (!from.IsZero() && !end.After(from)) {
			continue // the month is outside [from, to)
		}
		in := s.indexQuery(monthPK(m))
		switch {
		case !from.IsZero() && !to.IsZero():
			in.KeyConditionExpression = aws.String("gsi1pk = :pk AND gsi1sk BETWEEN :from AND :to")
		case !from.IsZero():
			in.KeyConditionExpression = aws.String("gsi1pk = :pk AND gsi1sk >= :from")
		case !to.IsZero():
			in.KeyConditionExpression = aws.String("gsi1pk = :pk AND gsi1sk < :to")
		}
		// gsi1sk is "<detectedAt>#<id>": >= "<from>" keeps from itself, and
		// <= "<to>" (BETWEEN) drops to itself, since "<to>#…" > "<to>".
		if !from.IsZero() {
			in.ExpressionAttributeValues[":from"] = &types.AttributeValueMemberS{Value: sortTime(from)}
		}
		if !to.IsZero() {
			in.ExpressionAttributeValues[":to"] = &types.AttributeValueMemberS{Value: sortTime(to)}
		}
		if err := s.readChanges(ctx, in, &out); err != nil {
			return nil, fmt.Errorf("read changes of %s: %w", m, err)
		}
	}
	var pending []pipeline.ChangeRecord
	in := s.indexQuery(gsiPending)
	var conds []string
	if !from.IsZero() {
		conds = append(conds, "#det >= :from")
		in.ExpressionAttributeValues[":from"] = &types.AttributeValueMemberS{Value: sortTime(from)}
	}
	if !to.IsZero() {
		conds = append(conds, "#det < :to")
		in.ExpressionAttributeValues[":to"] = &types.AttributeValueMemberS{Value: sortTime(to)}
	}
	if len(conds) > 0 {
		in.FilterExpression = aws.String(strings.Join(conds, " AND "))
		in.ExpressionAttributeNames = map[string]string{"#det": "detectedAt"}
	}
	if err := s.readChanges(ctx, in, &pending); err != nil {
		return nil, fmt.Errorf("read pending changes: %w", err)
	}
	// A change marked written between the two reads shows in both.
	have := make(map[string]bool, len(out))
	for _, r := range out {
		have[r.Change.ChangeID] = true
	}
	for _, r := range pending {
		if !have[r.Change.ChangeID] {
			out = append(out, r)
		}
	}
	pipeline.SortChangeRecords(out)
	return out, nil
}

// changeMonths lists the months (YYYY-MM) that have recorded changes.
func (s *Store) changeMonths(ctx context.Context) ([]string, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pkIndex, skMonths), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	ss, _ := out.Item["months"].(*types.AttributeValueMemberSS)
	if ss == nil {
		return nil, nil
	}
	months := slices.Clone(ss.Value)
	slices.Sort(months)
	return months, nil
}

// PutRun saves a run record (replacing one with the same id).
func (s *Store) PutRun(ctx context.Context, r pipeline.RunRecord) error {
	it := dataItem{PK: runPK(r.RunID), SK: skRun, GSI1PK: gsiRuns, GSI1SK: sortTime(r.StartedAt) + "#" + r.RunID}
	if err := s.putData(ctx, it, r); err != nil {
		return fmt.Errorf("save run %s: %w", r.RunID, err)
	}
	return nil
}

// Run returns one run record by id.
func (s *Store) Run(ctx context.Context, runID string) (pipeline.RunRecord, bool, error) {
	var r pipeline.RunRecord
	ok, err := s.getData(ctx, runPK(runID), skRun, &r)
	if err != nil {
		return pipeline.RunRecord{}, false, fmt.Errorf("read run %s: %w", runID, err)
	}
	return r, ok, nil
}

// Runs returns the newest runs first, at most limit (0: all).
func (s *Store) Runs(ctx context.Context, limit int) ([]pipeline.RunRecord, error) {
	in := s.indexQuery(gsiRuns)
	in.ScanIndexForward = aws.Bool(false)
	if limit > 0 {
		in.Limit = aws.Int32(int32(min(limit, 1000)))
	}
	var out []pipeline.RunRecord
	errEnough := errors.New("enough")
	err := s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		var it dataItem
		if err := attributevalue.UnmarshalMap(item, &it); err != nil {
			return err
		}
		var r pipeline.RunRecord
		if err := json.Unmarshal([]byte(it.Data), &r); err != nil {
			return fmt.Errorf("run item %s: %w", it.PK, err)
		}
		out = append(out, r)
		if limit > 0 && len(out) >= limit {
			return errEnough
		}
		return nil
	})
	if err != nil && !errors.Is(err, errEnough) {
		return nil, fmt.Errorf("read runs: %w", err)
	}
	return out, nil
}

// Meta reads a setting.
func (s *Store) Meta(ctx context.Context, k string) (string, bool, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.table, Key: key(pkMeta, k), ConsistentRead: aws.Bool(true)})
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
	item := key(pkMeta, k)
	item["value"] = &types.AttributeValueMemberS{Value: value}
	if _, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.table, Item: item}); err != nil {
		return fmt.Errorf("save %s: %w", k, err)
	}
	return nil
}
