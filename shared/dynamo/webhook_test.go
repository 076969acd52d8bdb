package dynamo_test

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/dynamo"
	"github.com/fieldaudit/billing-audit/shared/webhook"
	"github.com/google/go-cmp/cmp"
)

func (s *serialized) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, o ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return lock(s, s.api.(dynamo.WebhookAPI).DeleteItem, ctx, in, o)
}

// webhookStore returns a WebhookStore on a fresh table; every test client
// (the SDK's, or it serialized for moto) has DeleteItem.
func webhookStore(t *testing.T, api testAPI, now func() time.Time) (*dynamo.WebhookStore, string) {
	t.Helper()
	wapi, ok := api.(dynamo.WebhookAPI)
	if !ok {
		t.Fatalf("%T lacks the WebhookAPI methods", api)
	}
	table := mustTable(t, api)
	return dynamo.NewWebhookStore(wapi, table, dynamo.WebhookOptions{Now: now}), table
}

func TestWebhookNonces(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		s, table := webhookStore(t, api, nil)
		at := time.Now().UTC()
		if seen, err := s.Seen(ctx, "n1", at); err != nil || seen {
			t.Fatalf("Seen(n1) first = %v, %v; want false", seen, err)
		}
		if seen, err := s.Seen(ctx, "n1", at.Add(time.Minute)); err != nil || !seen {
			t.Fatalf("Seen(n1) again = %v, %v; want true", seen, err)
		}
		item := getRaw(t, api, table, "NONCE#n1", "NONCE")
		if ttl, ok := item["ttl"]; !ok || attrN(t, ttl) != at.Add(dynamo.DefaultNonceTTL).Unix() {
			t.Errorf("nonce ttl = %v, want %d", item["ttl"], at.Add(dynamo.DefaultNonceTTL).Unix())
		}
		// Past its ttl (not yet deleted by DynamoDB), a nonce is new again.
		if seen, err := s.Seen(ctx, "n1", at.Add(dynamo.DefaultNonceTTL+time.Minute)); err != nil || seen {
			t.Errorf("Seen(n1) after its ttl = %v, %v; want false", seen, err)
		}
		if err := s.Forget(ctx, "n1"); err != nil {
			t.Fatal(err)
		}
		if seen, err := s.Seen(ctx, "n1", at); err != nil || seen {
			t.Errorf("Seen(n1) after Forget = %v, %v; want false", seen, err)
		}
		// Concurrent deliveries of one nonce: exactly one is new.
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				if seen, err := s.Seen(ctx, "race", at); err == nil && !seen {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if fresh.Load() != 1 {
			t.Errorf("concurrent Seen(race): %d saw it first, want 1", fresh.Load())
		}
	})
}

func TestWebhookRecords(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		now := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
		s, table := webhookStore(t, api, func() time.Time { return now })
		t0 := now.Add(-time.Hour)
		rec := func(row, col int64, at time.Duration, user int64, ev string) webhook.Record {
			return webhook.Record{SheetID: 9, RowID: row, ColumnID: col, UserID: user, Time: t0.Add(at), EventType: ev}
		}
		recs := []webhook.Record{
			rec(1, 100, 0, 7, "updated"), rec(1, 100, time.Minute, 8, "updated"), rec(1, 100, 2*time.Minute, 7, "updated"),
			rec(1, 200, time.Minute, 7, "updated"), rec(2, 100, time.Minute, 7, "updated"), rec(1, 0, 3*time.Minute, 7, "deleted"),
			rec(1, 100, time.Minute, 8, "updated"), // twice in one callback
		}
		for i := 0; i < 30; i++ { // more than one BatchWriteItem
			recs = append(recs, rec(3, 100, time.Duration(i)*time.Second, 7, "updated"))
		}
		if err := s.PutRecords(ctx, recs); err != nil {
			t.Fatal(err)
		}
		if err := s.PutRecords(ctx, recs[:2]); err != nil { // a retried callback
			t.Fatal(err)
		}
		tests := []struct {
			name     string
			row, col int64
			from, to time.Time
			want     []webhook.Record
		}{
			{"one cell, open window", 1, 100, time.Time{}, time.Time{}, []webhook.Record{recs[0], recs[1], recs[2]}},
			{"from is exclusive", 1, 100, t0, time.Time{}, []webhook.Record{recs[1], recs[2]}},
			{"to is inclusive", 1, 100, t0, t0.Add(time.Minute), []webhook.Record{recs[1]}},
			{"another column", 1, 200, time.Time{}, time.Time{}, []webhook.Record{recs[3]}},
			{"the row's records", 1, 0, time.Time{}, time.Time{}, []webhook.Record{recs[5]}},
			{"nothing", 4, 100, time.Time{}, time.Time{}, nil},
		}
		for _, tt := range tests {
			got, err := s.Records(ctx, 9, tt.row, tt.col, tt.from, tt.to)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("%s: Records(9, %d, %d) differ (-want +got):\n%s", tt.name, tt.row, tt.col, diff)
			}
		}
		if got, _ := s.Records(ctx, 9, 3, 100, time.Time{}, time.Time{}); len(got) != 30 {
			t.Errorf("Records of row 3 = %d, want 30", len(got))
		}
		item := getRaw(t, api, table, "WH#9#1", "00000000000000000100#"+t0.Format("2006-01-02T15:04:05.000000000Z")+"#7#updated")
		if attrN(t, item["ttl"]) != now.Add(dynamo.DefaultRecordTTL).Unix() {
			t.Errorf("record ttl = %v, want %d", item["ttl"], now.Add(dynamo.DefaultRecordTTL).Unix())
		}
	})
}

func attrN(t *testing.T, av types.AttributeValue) int64 {
	t.Helper()
	v, ok := av.(*types.AttributeValueMemberN)
	if !ok {
		t.Fatalf("attribute %v is not a number", av)
	}
	i, err := strconv.ParseInt(v.Value, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return i
}
