package dynamo_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/fieldaudit/billing-audit/shared/aws/dynamo"
	"github.com/fieldaudit/billing-audit/shared/pipeline"
	"github.com/fieldaudit/billing-audit/shared/smartsheet"
	"github.com/fieldaudit/billing-audit/shared/webhook"
)

// keyRecorder is a DynamoDB client that answers every call with success and
// records the partition keys written and the calls that read: what an IAM
// policy on dynamodb:LeadingKeys would be asked to allow.
type keyRecorder struct {
	mu     sync.Mutex
	writes []string // "<operation> <pk>"
	reads  []string // "<operation> <pk>"
}

func (r *keyRecorder) note(to *[]string, op string, item map[string]types.AttributeValue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pk, _ := item["pk"].(*types.AttributeValueMemberS)
	if pk == nil {
		*to = append(*to, op+" <no pk>")
		return
	}
	*to = append(*to, op+" "+pk.Value)
}

func (r *keyRecorder) GetItem(_ context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	r.note(&r.reads, "GetItem", in.Key)
	return &dynamodb.GetItemOutput{}, nil
}

func (r *keyRecorder) Query(_ context.Context, _ *dynamodb.QueryInput, _ ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	r.note(&r.reads, "Query", nil)
	return &dynamodb.QueryOutput{}, nil
}

func (r *keyRecorder) BatchGetItem(_ context.Context, _ *dynamodb.BatchGetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	r.note(&r.reads, "BatchGetItem", nil)
	return &dynamodb.BatchGetItemOutput{}, nil
}

func (r *keyRecorder) PutItem(_ context.Context, in *dynamodb.PutItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	r.note(&r.writes, "PutItem", in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

func (r *keyRecorder) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	r.note(&r.writes, "UpdateItem", in.Key)
	return &dynamodb.UpdateItemOutput{}, nil
}

func (r *keyRecorder) DeleteItem(_ context.Context, in *dynamodb.DeleteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	r.note(&r.writes, "DeleteItem", in.Key)
	return &dynamodb.DeleteItemOutput{}, nil
}

func (r *keyRecorder) BatchWriteItem(_ context.Context, in *dynamodb.BatchWriteItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	for _, reqs := range in.RequestItems {
		for _, w := range reqs {
			switch {
			case w.PutRequest != nil:
				r.note(&r.writes, "BatchWriteItem", w.PutRequest.Item)
			case w.DeleteRequest != nil:
				r.note(&r.writes, "BatchWriteItem", w.DeleteRequest.Key)
			}
		}
	}
	return &dynamodb.BatchWriteItemOutput{}, nil
}

func (r *keyRecorder) TransactWriteItems(_ context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	for _, it := range in.TransactItems {
		switch {
		case it.Put != nil:
			r.note(&r.writes, "TransactWriteItems", it.Put.Item)
		case it.Update != nil:
			r.note(&r.writes, "TransactWriteItems", it.Update.Key)
		case it.Delete != nil:
			r.note(&r.writes, "TransactWriteItems", it.Delete.Key)
		case it.ConditionCheck != nil:
			r.note(&r.writes, "TransactWriteItems", it.ConditionCheck.Key)
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

var (
	_ dynamo.API        = (*keyRecorder)(nil)
	_ dynamo.WebhookAPI = (*keyRecorder)(nil)
)

// noRefreshes is a RefreshQueue that drops what it is sent.
type noRefreshes struct{}

func (noRefreshes) SendRefresh(context.Context, pipeline.Refresh) error { return nil }

// TestWebhookWritesOnlyItsOwnPartitions plays what the webhook function does
// to the table, wired as lambdaapp.NewWebhook wires it (the nonces and records
// in a WebhookStore, the status through a Store's PutMeta), and checks every
// partition it writes starts with one of WebhookKeyPrefixes, the prefixes
// template.yaml's WebhookRole allows (shared/local/localstack's template test
// checks that side), that every prefix is used, and that it reads nothing.
func TestWebhookWritesOnlyItsOwnPartitions(t *testing.T) {
	db := &keyRecorder{}
	records := dynamo.NewWebhookStore(db, "audit", dynamo.WebhookOptions{})
	sink := &pipeline.WebhookSink{Records: records, Queue: noRefreshes{}, Meta: dynamo.New(db, "audit", dynamo.Options{}),
		Logger: slog.New(slog.DiscardHandler)}
	ctx := context.Background()
	at := time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)
	steps := []struct {
		name string
		run  func() error
	}{
		{"a callback's nonce", func() error { _, err := records.Seen(ctx, "nonce-1", at); return err }},
		{"its events", func() error {
			return sink.Accept(ctx, webhook.Callback{WebhookID: 7, SheetID: 11, Time: at, Events: []webhook.Event{
				{ObjectType: "cell", EventType: "updated", RowID: 21, ColumnID: 31, UserID: 41, Time: at},
				{ObjectType: "row", EventType: "deleted", RowID: 22, UserID: 41, Time: at},
			}})
		}},
		{"a status change", func() error {
			return sink.Accept(ctx, webhook.Callback{WebhookID: 7, SheetID: 11, Time: at, NewStatus: smartsheet.WebhookDisabledScopeInaccessible})
		}},
		{"the nonce forgotten after a failure", func() error { return records.Forget(ctx, "nonce-1") }},
	}
	for _, s := range steps {
		if err := s.run(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}

	prefixes := dynamo.WebhookKeyPrefixes()
	used := map[string]bool{}
	for _, w := range db.writes {
		_, pk, _ := strings.Cut(w, " ")
		i := slices.IndexFunc(prefixes, func(p string) bool { return strings.HasPrefix(pk, p) })
		if i < 0 {
			t.Errorf("webhook wrote %s, outside WebhookKeyPrefixes() %q", w, prefixes)
			continue
		}
		used[prefixes[i]] = true
	}
	for _, p := range prefixes {
		if !used[p] {
			t.Errorf("WebhookKeyPrefixes() has %q, which the webhook never wrote (writes: %q): the role would allow more than it needs", p, db.writes)
		}
	}
	if len(db.reads) > 0 {
		t.Errorf("webhook read %q; its role allows no read", db.reads)
	}
}

// TestMetaKeepsWebhookStatusApart: a webhook's status is its own item, read
// back by Meta; every other setting stays in META.
func TestMetaKeepsWebhookStatusApart(t *testing.T) {
	tests := []struct {
		name   string
		key    string
		wantPK string
	}{
		{"webhook status", pipeline.WebhookStatusKey(7), "WEBHOOK#7"},
		{"a setting", "ledger-synced", "META"},
		{"a setting that merely mentions a webhook", "audit-columns:webhook-status/7", "META"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := &keyRecorder{}
			s := dynamo.New(db, "audit", dynamo.Options{})
			if err := s.PutMeta(context.Background(), tt.key, "v"); err != nil {
				t.Fatal(err)
			}
			if _, _, err := s.Meta(context.Background(), tt.key); err != nil {
				t.Fatal(err)
			}
			want := fmt.Sprintf("[PutItem %s] [GetItem %s]", tt.wantPK, tt.wantPK)
			if got := fmt.Sprintf("%s %s", db.writes, db.reads); got != want {
				t.Errorf("PutMeta(%q) then Meta = %s, want %s", tt.key, got, want)
			}
		})
	}
}

// TestWebhookStatusRoundTrip stores a status in a real table and finds it
// where the webhook role may write it.
func TestWebhookStatusRoundTrip(t *testing.T) {
	forEach(t, func(t *testing.T, api testAPI) {
		ctx := context.Background()
		table := mustTable(t, api)
		s := dynamo.New(api, table, dynamo.Options{})
		st := pipeline.WebhookStatus{WebhookID: 7, SheetID: 11, Status: smartsheet.WebhookDisabledCallbackFailed,
			At: time.Date(2026, 11, 25, 15, 0, 0, 0, time.UTC)}
		sink := &pipeline.WebhookSink{Meta: s, Logger: slog.New(slog.DiscardHandler)}
		if err := sink.Accept(ctx, webhook.Callback{WebhookID: st.WebhookID, SheetID: st.SheetID, Time: st.At, NewStatus: st.Status}); err != nil {
			t.Fatal(err)
		}
		got, ok, err := pipeline.LastWebhookStatus(ctx, s, 7)
		if err != nil || !ok || got != st {
			t.Errorf("LastWebhookStatus(7) = %+v, %v, %v, want %+v, true, nil", got, ok, err, st)
		}
		getRaw(t, api, table, "WEBHOOK#7", "STATUS")
	})
}
