package lambdaapp

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/google/go-cmp/cmp"

	"github.com/fieldaudit/billing-audit/shared/config"
)

// fakeSecrets is a secrets.API whose answers come from a function field.
type fakeSecrets struct {
	get func(arn string) (string, error)
}

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, err := f.get(*in.SecretId)
	if err != nil {
		return nil, err
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: &v}, nil
}

func (fakeSecrets) PutSecretValue(context.Context, *secretsmanager.PutSecretValueInput, ...func(*secretsmanager.Options)) (*secretsmanager.PutSecretValueOutput, error) {
	panic("not used")
}

// fakeBudgetDB is a dynamo.BudgetAPI whose updates come from a function field.
type fakeBudgetDB struct {
	update func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error)
}

func (f fakeBudgetDB) UpdateItem(_ context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	return f.update(in)
}

func (fakeBudgetDB) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	panic("not used")
}

// The functions' Smartsheet client takes a slot of the token's budget in the
// audit table, at the configured rate, before each request; the item is
// keyed by a hash of the token, never the token.
func TestSmartsheetClientDrawsOnSharedBudget(t *testing.T) {
	const token = "tok-SECRET-abcdef"
	var (
		mu     sync.Mutex
		events []string
		update *dynamodb.UpdateItemInput
	)
	note := func(e string) { mu.Lock(); events = append(events, e); mu.Unlock() }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		note("smartsheet request")
		_, _ = w.Write([]byte(`{"id":1,"email":"auditor@example.com"}`))
	}))
	t.Cleanup(srv.Close)
	db := fakeBudgetDB{update: func(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
		note("budget update")
		update = in
		return &dynamodb.UpdateItemOutput{Attributes: map[string]types.AttributeValue{"general": in.ExpressionAttributeValues[":gnext"]}}, nil
	}}
	sm := fakeSecrets{get: func(string) (string, error) { return token, nil }}
	cfg, err := config.LoadFunction(env(map[string]string{
		config.EnvTable: "audit-table", config.EnvTokenSecretARN: "arn:token", "SMARTSHEET_BASE_URL": srv.URL,
		"SMARTSHEET_REQUESTS_PER_MINUTE": "120",
	}), config.EnvTable, config.EnvTokenSecretARN)
	if err != nil {
		t.Fatal(err)
	}
	c := coldStart{cfg: cfg, log: slog.New(slog.DiscardHandler)}

	client, err := c.smartsheetClient(t.Context(), sm, db)
	if err != nil {
		t.Fatalf("smartsheetClient() error = %v", err)
	}
	if _, err := client.Me(t.Context()); err != nil {
		t.Fatalf("Me() error = %v", err)
	}

	if diff := cmp.Diff([]string{"budget update", "smartsheet request"}, events); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	if update == nil {
		t.Fatal("no budget update")
	}
	if *update.TableName != "audit-table" {
		t.Errorf("budget table = %q, want audit-table", *update.TableName)
	}
	pk := update.Key["pk"].(*types.AttributeValueMemberS).Value
	if !strings.HasPrefix(pk, "BUDGET#") || strings.Contains(pk, "SECRET") {
		t.Errorf("budget key = %q, want BUDGET#<hash of the token>", pk)
	}
	// 120 a minute: burst 12, then one every 60 s / 108.
	next := func(k string) int64 {
		v, _ := strconv.ParseInt(update.ExpressionAttributeValues[k].(*types.AttributeValueMemberN).Value, 10, 64)
		return v
	}
	if got, want := next(":gnext")-next(":now"), int64(555_555_556); got != want {
		t.Errorf("budget interval = %d ns, want %d (120 a minute)", got, want)
	}
}
