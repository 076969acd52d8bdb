package dynamo

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/audit"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
)

var (
	_ pipeline.Ledger = (*Store)(nil)
	_ pipeline.Leases = (*Store)(nil)
)

// ledgerItem is one ledger entry, its data as audit.EncodeEntry writes it.
// It has no ttl: the ledger is kept for as long as the table, whatever the
// change records' retention.
type ledgerItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Data string `dynamodbav:"data"`
}

// decodeEntry reads a ledger item; one that cannot be decoded (edited in
// the table) is returned as audit.UnreadableEntry, for verification to name.
func decodeEntry(item map[string]types.AttributeValue) audit.LedgerEntry {
	var seq uint64
	if sk, ok := item["sk"].(*types.AttributeValueMemberS); ok {
		seq, _ = strconv.ParseUint(strings.TrimPrefix(sk.Value, ledgerPrefix), 10, 64)
	}
	var it ledgerItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return audit.UnreadableEntry(seq, fmt.Errorf("ledger item %d: %w", seq, err))
	}
	e, err := audit.DecodeEntry([]byte(it.Data))
	if err != nil {
		return audit.UnreadableEntry(seq, fmt.Errorf("ledger item %d: %w", seq, err))
	}
	return e
}

// LedgerHead reads the last entry: one strongly consistent Query, newest
// first, limit 1.
func (s *Store) LedgerHead(ctx context.Context) (audit.LedgerEntry, bool, error) {
	out, err := s.api.Query(ctx, &dynamodb.QueryInput{
		TableName:                 &s.table,
		KeyConditionExpression:    aws.String("pk = :pk AND begins_with(sk, :seq)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": &types.AttributeValueMemberS{Value: pkLedger}, ":seq": &types.AttributeValueMemberS{Value: ledgerPrefix}},
		ScanIndexForward:          aws.Bool(false),
		Limit:                     aws.Int32(1),
		ConsistentRead:            aws.Bool(true),
	})
	if err != nil {
		return audit.LedgerEntry{}, false, fmt.Errorf("read ledger head: %w", err)
	}
	if len(out.Items) == 0 {
		return audit.LedgerEntry{}, false, nil
	}
	e := decodeEntry(out.Items[0])
	if e.Type == audit.EntryUnreadable {
		// No writer extends a chain from an entry it cannot read.
		return e, false, fmt.Errorf("read ledger head: %s", audit.FieldValue(e.Fields, "Error"))
	}
	return e, true, nil
}

// AppendLedger appends entries one conditional PutItem each
// (attribute_not_exists on the entry's sequence number), after checking that
// the first follows an entry that is there: a sequence number is taken once,
// so two writers can never both extend the chain from the same head, and the
// one that loses gets ErrLedgerConflict. Not a transaction: an entry stands
// on its own (its Prev ties it to the one before), a transaction holds 100
// items at most, and moto copies the whole table per transaction item. The
// puts go one after the other: entries put in parallel could land after one
// that failed, and leave a gap in the chain.
func (s *Store) AppendLedger(ctx context.Context, entries []audit.LedgerEntry) error {
	if len(entries) == 0 {
		return nil
	}
	// The first entry must follow an entry that is there: entries never
	// change once put, so this read stays true while the puts run.
	first := entries[0]
	switch {
	case first.Seq == 0:
		return fmt.Errorf("append ledger entry 0: sequence numbers start at 1")
	case first.Seq == 1:
		if first.Prev != audit.GenesisHash {
			return fmt.Errorf("append ledger entry 1: %w", pipeline.ErrLedgerConflict)
		}
	default:
		prev, err := s.LedgerEntriesBySeq(ctx, []uint64{first.Seq - 1})
		if err != nil {
			return fmt.Errorf("append ledger entry %d: %w", first.Seq, err)
		}
		p, ok := prev[first.Seq-1]
		if !ok {
			return fmt.Errorf("append ledger entry %d: entry %d is not there: the ledger has no gaps", first.Seq, first.Seq-1)
		}
		if p.Hash != first.Prev {
			return fmt.Errorf("append ledger entry %d: %w", first.Seq, pipeline.ErrLedgerConflict)
		}
	}
	for i, e := range entries {
		if i > 0 && (e.Seq != entries[i-1].Seq+1 || e.Prev != entries[i-1].Hash) {
			return fmt.Errorf("append ledger entry %d: does not follow entry %d", e.Seq, entries[i-1].Seq)
		}
	}
	// In order, one at a time, stopping at the first failure: what is
	// appended is always a prefix of entries, so a writer that stops leaves
	// no gap for the next one to build past.
	for _, e := range entries {
		if err := s.putEntry(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// putEntry puts one entry in its slot, once.
func (s *Store) putEntry(ctx context.Context, e audit.LedgerEntry) error {
	item, err := attributevalue.MarshalMap(ledgerItem{PK: pkLedger, SK: ledgerSK(e.Seq), Data: string(audit.EncodeEntry(e))})
	if err != nil {
		return err
	}
	err = s.retry(ctx, func() (bool, error) {
		_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
			TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		})
		switch {
		case err == nil:
			return true, nil
		case isTransient(err):
			return false, nil
		default:
			return false, err
		}
	})
	if isConditionFailed(err) {
		return s.appendConflict(ctx, e)
	}
	if err != nil {
		return fmt.Errorf("append ledger entry %d: %w", e.Seq, err)
	}
	return nil
}

// appendConflict explains a refused append. The entry at that sequence
// number may be this very entry, put by an earlier try whose answer was
// lost: then the append went through.
func (s *Store) appendConflict(ctx context.Context, e audit.LedgerEntry) error {
	have, err := s.LedgerEntriesBySeq(ctx, []uint64{e.Seq})
	if err != nil {
		// Not known to be a conflict: the caller retries or stops, and the
		// next writer finds out.
		return fmt.Errorf("append ledger entry %d: refused, and reading it back failed: %w", e.Seq, err)
	}
	if have[e.Seq].Hash == e.Hash {
		return nil
	}
	return fmt.Errorf("append ledger entry %d: %w", e.Seq, pipeline.ErrLedgerConflict)
}

// LedgerEntries reads entries from seq from on, in order: strongly
// consistent Query pages of up to 1 MB.
func (s *Store) LedgerEntries(ctx context.Context, from uint64, fn func(audit.LedgerEntry) error) error {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :from AND :to"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":   &types.AttributeValueMemberS{Value: pkLedger},
			":from": &types.AttributeValueMemberS{Value: ledgerSK(max(from, 1))},
			":to":   &types.AttributeValueMemberS{Value: ledgerPrefix + strings.Repeat("9", 20)},
		},
		ConsistentRead: aws.Bool(true),
	}
	err := s.query(ctx, in, func(item map[string]types.AttributeValue) error {
		return fn(decodeEntry(item))
	})
	if err != nil {
		return fmt.Errorf("read ledger from %d: %w", from, err)
	}
	return nil
}

// LedgerEntriesBySeq reads entries by sequence number with strongly
// consistent BatchGetItems.
func (s *Store) LedgerEntriesBySeq(ctx context.Context, seqs []uint64) (map[uint64]audit.LedgerEntry, error) {
	out := make(map[uint64]audit.LedgerEntry, len(seqs))
	keys := make([]map[string]types.AttributeValue, 0, len(seqs))
	for _, seq := range sortedUnique(seqs) {
		keys = append(keys, key(pkLedger, ledgerSK(seq)))
	}
	err := s.batchGet(ctx, keys, "", func(item map[string]types.AttributeValue) error {
		e := decodeEntry(item)
		out[e.Seq] = e
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read ledger entries: %w", err)
	}
	return out, nil
}

// AcquireLease takes a lease with one conditional PutItem: it succeeds when
// the lease item is absent, expired or already the holder's. Expiry is in
// epoch milliseconds of the store's clock; the functions' clocks agree to
// well under a lease's length.
func (s *Store) AcquireLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	item := key(pkLease, name)
	item["holder"] = &types.AttributeValueMemberS{Value: holder}
	item["expiresAt"] = &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)}
	_, err := s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk) OR expiresAt < :now OR holder = :holder"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":now":    &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":holder": &types.AttributeValueMemberS{Value: holder},
		},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return true, nil
}

// RenewLease extends the lease with one conditional UpdateItem: only while
// holder has it and it has not expired.
func (s *Store) RenewLease(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	now := s.now()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 key(pkLease, name),
		UpdateExpression:    aws.String("SET expiresAt = :until"),
		ConditionExpression: aws.String("holder = :holder AND expiresAt >= :now"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":until":  &types.AttributeValueMemberN{Value: strconv.FormatInt(now.Add(ttl).UnixMilli(), 10)},
			":now":    &types.AttributeValueMemberN{Value: strconv.FormatInt(now.UnixMilli(), 10)},
			":holder": &types.AttributeValueMemberS{Value: holder},
		},
	})
	if isConditionFailed(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("renew lease %s: %w", name, err)
	}
	return true, nil
}

// ReleaseLease expires the lease if holder still has it (a conditional
// UpdateItem: a lease taken over by another holder is left alone).
func (s *Store) ReleaseLease(ctx context.Context, name, holder string) error {
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &s.table,
		Key:                 key(pkLease, name),
		UpdateExpression:    aws.String("SET expiresAt = :zero"),
		ConditionExpression: aws.String("holder = :holder"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":zero":   &types.AttributeValueMemberN{Value: "0"},
			":holder": &types.AttributeValueMemberS{Value: holder},
		},
	})
	if err != nil && !isConditionFailed(err) {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
