package localchain_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	"github.com/fieldaudit/billing-audit/shared/local/chaos"
	"github.com/fieldaudit/billing-audit/shared/local/localchain"
)

// TestDynamoDBProxyFaults: each fault the chain's DynamoDB proxy makes reaches
// the SDK as DynamoDB's own answer does — the error types the adapter
// handles, a cancelled transaction with a reason per item — and a lost
// answer was applied upstream first.
func TestDynamoDBProxyFaults(t *testing.T) {
	var applied atomic.Int32
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		applied.Add(1)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		_, _ = w.Write([]byte(`{}`))
	}))
	defer upstream.Close()
	tests := []struct {
		kind    chaos.Kind
		op      string
		applied int32
		check   func(error) bool
	}{
		{chaos.Throttled, "PutItem", 0, func(err error) bool {
			var e *types.ProvisionedThroughputExceededException
			return errors.As(err, &e)
		}},
		{chaos.ServerError, "PutItem", 0, func(err error) bool {
			var e smithy.APIError
			return errors.As(err, &e) && e.ErrorCode() == "InternalServerError"
		}},
		{chaos.LostResponse, "PutItem", 1, func(err error) bool {
			var e smithy.APIError
			return errors.As(err, &e) && e.ErrorCode() == "InternalServerError"
		}},
		{chaos.TransactionConflict, "TransactWriteItems", 0, func(err error) bool {
			var e *types.TransactionCanceledException
			return errors.As(err, &e) && len(e.CancellationReasons) == 2 &&
				aws.ToString(e.CancellationReasons[0].Code) == "TransactionConflict" && aws.ToString(e.CancellationReasons[1].Code) == "None"
		}},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind), func(t *testing.T) {
			proxy, err := localchain.StartDynamoDBCounter(upstream.URL, false)
			if err != nil {
				t.Fatal(err)
			}
			defer proxy.Close()
			faults := proxy.Faults(1, 1, tt.kind)
			api := dynamodb.New(dynamodb.Options{
				Region: "us-east-1", BaseEndpoint: aws.String(proxy.URL()), RetryMaxAttempts: 1,
				Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""),
			})
			applied.Store(0)
			table := aws.String("t")
			key := map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}
			switch tt.op {
			case "PutItem":
				_, err = api.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: table, Item: key})
			default:
				_, err = api.TransactWriteItems(context.Background(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
					{Put: &types.Put{TableName: table, Item: key}}, {Delete: &types.Delete{TableName: table, Key: key}},
				}})
			}
			if err == nil || !tt.check(err) {
				t.Errorf("%s through a %s fault: error %v, not the one DynamoDB gives", tt.op, tt.kind, err)
			}
			if got := applied.Load(); got != tt.applied {
				t.Errorf("%s fault: %d requests reached DynamoDB, want %d", tt.kind, got, tt.applied)
			}
			if _, by := faults.Counts(); by[tt.kind] != 1 {
				t.Errorf("faults counted %v, want one %s", by, tt.kind)
			}
		})
	}
}
