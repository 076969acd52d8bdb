package dynamo

import (
	"context"
	"encoding/json"
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
)

// changeItem is a recorded change (the package doc's "change" item; the
// put also sets recordedBy, see putChange).
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
